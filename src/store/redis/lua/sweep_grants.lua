-- KEYS[1] the set of grant ids; ARGV[2] now, ARGV[3] revoked_before,
-- ARGV[4] idle_before, ARGV[5..] the grant ids to look at
-- Per grant: drops its expired (and already vanished) refresh tokens, then the
-- grant itself (and its listing index entries) when revoked before revoked_before,
-- or live, created before idle_before and left without a token; a grant that stays
-- unindexed is indexed, so one an older replica stored is listed after a sweep.
-- Returns how many grants went. A record
-- with unreadable times is left alone: one bad record must not stop every sweep.
local now = tonumber(ARGV[2])
local revoked_before = tonumber(ARGV[3])
local idle_before = tonumber(ARGV[4])
local gone = 0
for i = 5, #ARGV do
  local id = ARGV[i]
  local tokens = tokens_key(id)
  local holding = false
  for _, hex in ipairs(redis.call('SMEMBERS', tokens)) do
    local stored = redis.call('EXISTS', refresh_key(hex)) == 1
    local expires_at = tonumber(redis.call('HGET', refresh_key(hex), 'expires_at') or '')
    if not stored then
      redis.call('SREM', tokens, hex)
    elseif expires_at == nil then
      holding = true
    elseif expires_at <= now then
      redis.call('DEL', refresh_key(hex))
      redis.call('SREM', tokens, hex)
    else
      holding = true
    end
  end
  local g = grant_key(id)
  local dead
  if redis.call('EXISTS', g) == 0 then
    dead = false
    redis.call('SREM', KEYS[1], id)
    redis.call('ZREM', grants_listed(), id)
  else
    local revoked_at = redis.call('HGET', g, 'revoked_at')
    if revoked_at then
      local at = tonumber(revoked_at)
      dead = at ~= nil and at < revoked_before
    else
      local created_at = tonumber(redis.call('HGET', g, 'created_at') or '')
      dead = created_at ~= nil and created_at < idle_before and not holding
    end
  end
  if dead then
    index_grant(id, false)
    redis.call('DEL', g, tokens)
    redis.call('SREM', KEYS[1], id)
    gone = gone + 1
  elseif redis.call('EXISTS', g) == 1 and not redis.call('ZSCORE', grants_listed(), id) then
    -- Stored without its index entries (by an older replica): put_grant.lua keeps
    -- them all or none, so one look at the full index tells.
    index_grant(id, true)
  end
end
return gone
