-- KEYS[1] one key's state (its theoretical arrival time, ms); ARGV[1] now (ms, the
-- broker's clock), ARGV[2] the rate's interval (ms), ARGV[3] its tolerance (ms).
-- domain::rate_limit::admit step for step (keep the two alike): {1, new state}
-- admits and stores the state until the clock reaches it (from then on the key is
-- as good as new, so Redis forgets it); {0, wait ms} refuses and changes nothing.
-- Not prefixed with common.lua: it needs no other key.
local now, interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then
  local n = tonumber(stored)
  if n == nil then error({err = 'CORRUPT a rate-limit state is not a number'}) end
  if n > now then tat = n end
end
if tat > now + tolerance then return {0, tat - tolerance - now} end
local next = tat + interval
redis.call('SET', KEYS[1], string.format('%d', next), 'PX', next - now)
return {1, next}
