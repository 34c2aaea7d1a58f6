-- KEYS[1] refresh token; ARGV[2] its hex hash, ARGV[3] grant id, ARGV[4] seconds to
-- live, ARGV[5..] field, value, ...
-- Stores the token when its grant is live (else drops it, as memory and sqlite do),
-- replacing any token stored under the same hash.
local grant = ARGV[3]
if not live(grant) then return 0 end
local previous = redis.call('HGET', KEYS[1], 'grant_id')
if previous then redis.call('SREM', tokens_key(previous), ARGV[2]) end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('SADD', tokens_key(grant), ARGV[2])
return 1
