-- KEYS[1] code; ARGV[2] now, ARGV[3] the redeemer's mark (hex).
-- The first redemption marks the code redeemed by ARGV[3] — it stays, with its
-- expiry, as a tombstone — and answers {'redeemed', {its fields}}; later ones answer
-- {'replayed', grant id}; an unknown or expired code {'invalid'}.
local c, now = KEYS[1], tonumber(ARGV[2])
local f = redis.call('HMGET', c, 'expires_at', 'redeemed', 'grant_id')
if gone(f[1], now) then return {'invalid'} end
if f[2] then return {'replayed', f[3]} end
redis.call('HSET', c, 'redeemed', ARGV[3])
return {'redeemed', redis.call('HGETALL', c)}
