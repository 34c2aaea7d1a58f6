-- ARGV[2..] grant ids
-- Indexes the grants that exist (grants stored before the indexes were kept, and
-- any a replica of an older version stores): the first listing's backfill.
local n = 0
for i = 2, #ARGV do
  if redis.call('EXISTS', grant_key(ARGV[i])) == 1 then
    index_grant(ARGV[i], true)
    n = n + 1
  end
end
return n
