-- KEYS[1] grant; ARGV[2] the sealed provider tokens
-- Replaces the provider's tokens of a live grant; a revoked or unknown grant keeps
-- what it has.
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('HEXISTS', KEYS[1], 'revoked_at') == 0 then
  redis.call('HSET', KEYS[1], 'upstream', ARGV[2])
end
return 0
