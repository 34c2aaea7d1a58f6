-- KEYS[1] code; ARGV[2] the redeemer's mark (hex).
--
-- A redemption whose tokens were never handed out — its answer lost (Redis paused or
-- gone just after running it), or the tokens not issued after it — is put back: the
-- broker answered 503, so the client will present the code again, and must not be
-- taken for a replay that revokes its grant.
--
-- Does nothing unless ARGV[2] is what spent the code: the redemption never ran, was
-- put back already, or the code has expired and gone. Replies 1 when it put the
-- redemption back, else 0.
if redis.call('HGET', KEYS[1], 'redeemed') ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], 'redeemed')
return 1
