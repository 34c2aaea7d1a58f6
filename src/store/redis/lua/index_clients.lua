-- KEYS[1] the client index; ARGV[2..] client ids
-- Indexes the clients that exist: the first listing's backfill.
local n = 0
for i = 2, #ARGV do
  if redis.call('EXISTS', prefix .. 'client:' .. ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[1], 0, ARGV[i])
    n = n + 1
  end
end
return n
