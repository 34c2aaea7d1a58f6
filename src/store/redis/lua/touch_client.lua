-- KEYS[1] client, KEYS[2] clients:unused, KEYS[3] clients:used
-- ARGV[2] time of use, ARGV[3] client id
-- Records a use; never moves last_used_at backwards. Unknown clients are ignored.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local at = ARGV[2]
local old = redis.call('HGET', KEYS[1], 'last_used_at')
if old and number(old, 'last_used_at') >= number(at, 'time of use') then return 1 end
redis.call('HSET', KEYS[1], 'last_used_at', at)
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], at, ARGV[3])
return 1
