-- KEYS[1] grant, KEYS[2] its token set; ARGV[2] grant id, ARGV[3] now
-- Revokes the grant and deletes its refresh tokens in one step; returns the grant
-- as it now is (empty when unknown).
revoke(ARGV[2], ARGV[3])
return redis.call('HGETALL', KEYS[1])
