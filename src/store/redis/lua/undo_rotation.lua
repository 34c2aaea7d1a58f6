-- KEYS[1] presented token, KEYS[2] the successor the broker sent to rotate it into
-- ARGV[2] the successor's hex hash
--
-- A rotation whose answer never reached the broker (Redis paused or gone just after
-- running it, or before): the broker answered 503 — nothing changed, as the client
-- knows it — and never handed the successor to anyone, so the rotation is put back.
-- Otherwise the client presenting its token again after an outage longer than
-- refresh.reuse_grace would be taken for a replay, and lose its grant.
--
-- Does nothing unless the presented token still names that successor and the
-- successor is unspent: the rotation never ran, was undone already, or a retry (or a
-- replay) has acted on the token since. Replies 1 when it undid the rotation, else 0.
if redis.call('HGET', KEYS[1], 'successor') ~= ARGV[2] then return 0 end
if redis.call('HEXISTS', KEYS[2], 'rotated_at') == 1 then return 0 end
local grant = redis.call('HGET', KEYS[2], 'grant_id')
local replaced = redis.call('HGET', KEYS[2], 'replaces')
if replaced then
  -- The rotation was a retry: the successor it superseded is the live one again
  -- (it was kept as spent, rotated into itself).
  redis.call('HSET', KEYS[1], 'successor', replaced)
  local previous = refresh_key(replaced)
  if redis.call('HGET', previous, 'successor') == replaced then
    redis.call('HDEL', previous, 'rotated_at', 'successor')
  end
else
  redis.call('HDEL', KEYS[1], 'rotated_at', 'successor')
end
redis.call('DEL', KEYS[2])
if grant then redis.call('SREM', tokens_key(grant), ARGV[2]) end
return 1
