-- KEYS[1] the published outcome, KEYS[2] the lock; ARGV[2] the holder's owner
-- token, ARGV[3] the sealed outcome ('' for none), ARGV[4] its life in milliseconds.
-- Publishes, then releases the lock only while it is still the holder's: a lock that
-- expired and was taken over belongs to its new holder.
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
if redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('DEL', KEYS[2])
end
return 1
