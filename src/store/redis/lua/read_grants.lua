-- ARGV[2..] grant ids
-- For each: {its fields (empty when gone), the latest rotated_at among its kept
-- refresh tokens as text ('' when none)}.
local out = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local latest = nil
  for _, hex in ipairs(redis.call('SMEMBERS', tokens_key(id))) do
    local at = tonumber(redis.call('HGET', refresh_key(hex), 'rotated_at') or '')
    if at and (latest == nil or at > latest) then latest = at end
  end
  out[#out + 1] = {redis.call('HGETALL', grant_key(id)), latest and string.format('%d', latest) or ''}
end
return out
