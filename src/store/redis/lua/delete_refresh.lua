-- KEYS[1] refresh token; ARGV[2] its hex hash
-- Deletes one token; 1 when it existed.
local grant = redis.call('HGET', KEYS[1], 'grant_id')
if not grant then return 0 end
redis.call('SREM', tokens_key(grant), ARGV[2])
redis.call('DEL', KEYS[1])
return 1
