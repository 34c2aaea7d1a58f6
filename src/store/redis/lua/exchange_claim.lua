-- KEYS[1] the published outcome, KEYS[2] the lock; ARGV[2] the claimant's owner
-- token, ARGV[3] the lock's life in milliseconds.
-- {'settled', sealed outcome} when a replica published one; {'won'} when the lock
-- was free and is now the claimant's; {'held'} when another replica holds it.
local done = redis.call('GET', KEYS[1])
if done then return {'settled', done} end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return {'won'} end
return {'held'}
