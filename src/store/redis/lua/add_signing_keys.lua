-- KEYS[1] = the signing keys hash; ARGV[2..] = kid, record, kid, record, ...
-- Stores the keys only when none is stored yet, so of replicas starting together on
-- an empty Redis exactly one set is kept. Returns 1 when these were stored.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 1
