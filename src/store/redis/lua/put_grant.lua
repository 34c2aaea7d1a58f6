-- KEYS[1] grant; ARGV[2] grant id, ARGV[3..] field, value, ...
-- Replaces the grant's fields (its refresh tokens stay, as sqlite's upsert) and
-- moves its listing index entries with them, in one step: a reader of an index never
-- sees a grant under a subject, client or resource it no longer has.
index_grant(ARGV[2], false)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('SADD', prefix .. 'grants', ARGV[2])
index_grant(ARGV[2], true)
return 1
