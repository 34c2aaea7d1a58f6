-- KEYS[1] session, KEYS[2] session index; ARGV[2] now, ARGV[3] presented CSRF
-- token, ARGV[4] hex hash.
-- Deletes the session and answers {'ended', {its fields}} (a take of a session
-- without an upstream leg is refused by the caller, but the session is ended all
-- the same); {'unknown'} and {'csrf'} change nothing. One script, so of
-- concurrent takes on any number of replicas exactly one ends it.
local s, now = KEYS[1], tonumber(ARGV[2])
local f = redis.call('HMGET', s, 'expires_at', 'csrf')
if gone(f[1], now) then return {'unknown'} end
if not same(f[2], ARGV[3]) then return {'csrf'} end
local fields = redis.call('HGETALL', s)
redis.call('DEL', s)
redis.call('ZREM', KEYS[2], ARGV[4])
return {'ended', fields}
