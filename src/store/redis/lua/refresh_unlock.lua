-- KEYS[1] a grant's refresh lock; ARGV[2] the holder's owner token. Releases the
-- lock only while it is still the holder's: a lock that expired and was taken over
-- belongs to its new holder. 1 when released.
if redis.call('GET', KEYS[1]) == ARGV[2] then
  return redis.call('DEL', KEYS[1])
end
return 0
