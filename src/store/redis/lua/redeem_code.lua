-- KEYS[1] code; ARGV[2] now.
-- The first redemption marks the code redeemed — it stays, with its expiry, as a
-- tombstone — and answers {'redeemed', {its fields}}; later ones answer
-- {'replayed', grant id}; an unknown or expired code {'invalid'}.
local c, now = KEYS[1], tonumber(ARGV[2])
local f = redis.call('HMGET', c, 'expires_at', 'redeemed', 'grant_id')
if gone(f[1], now) then return {'invalid'} end
if f[2] then return {'replayed', f[3]} end
redis.call('HSET', c, 'redeemed', '1')
return {'redeemed', redis.call('HGETALL', c)}
