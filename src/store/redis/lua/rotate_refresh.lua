-- KEYS[1] presented token, KEYS[2] successor
-- ARGV[2] now, ARGV[3] grace (seconds), ARGV[4] successor hex hash, ARGV[5] its
-- seconds to live, ARGV[6] its scopes, ARGV[7] issued_at, ARGV[8] expires_at,
-- ARGV[9] when the broker sent the call (its wall clock, Unix milliseconds)
--
-- One presentation of a refresh token, atomically: Redis runs one script at a
-- time, so two replicas presenting the same token cannot both see it unspent.
-- Replies {'unknown'}, {'expired'}, {'replayed', grant id} or
-- {'rotated', '0' | '1' (a retry), the presented token's fields before the change}.
local flat = redis.call('HGETALL', KEYS[1])
if #flat == 0 then return {'unknown'} end
local record = as_table(flat)
local grant = record.grant_id
if not live(grant) then return {'unknown'} end

-- How long the call waited before it ran (Redis paused, a backlog): Redis's clock
-- against the broker's when it sent it, whole seconds, at most a minute. The
-- presentation happens when it runs: the broker that sent it has long answered 503
-- ("nothing changed"), and its client presenting the token again must be within the
-- grace counted from this rotation, not from the request it gave up on.
local clock = redis.call('TIME')
local waited = math.floor((tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  - number(ARGV[9], 'sent')) / 1000)
waited = math.max(0, math.min(waited, 60))

-- domain::refresh::decide, transcribed; tests/decide.rs holds the two together.
local now = number(ARGV[2], 'now') + waited
local at = tostring(now)
local grace = number(ARGV[3], 'grace')
if now >= number(record.expires_at, 'expires_at') then return {'expired'} end
local retried = '0'
if record.rotated_at then
  if not record.successor then error({err = 'CORRUPT refresh token half rotated'}) end
  local successor_spent =
    redis.call('HEXISTS', refresh_key(record.successor), 'rotated_at') == 1
  if now < number(record.rotated_at, 'rotated_at') + grace and not successor_spent then
    -- A retry: the successor the retrying client never received is superseded, so
    -- one chain remains. It is kept as spent — rotated into itself, as
    -- Rotation::superseded — so that if the retry was a thief, the legitimate
    -- holder presenting it ends the grant.
    local lost = refresh_key(record.successor)
    if redis.call('EXISTS', lost) == 1 then
      redis.call('HSET', lost, 'rotated_at', at, 'successor', record.successor)
    end
    retried = '1'
  else
    revoke(grant, at)
    return {'replayed', grant}
  end
end

-- A retry keeps the first rotation time: the grace does not slide.
redis.call('HSET', KEYS[1], 'rotated_at', record.rotated_at or at, 'successor', ARGV[4])
-- The successor joins the presented token's grant, whatever the caller said.
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'grant_id', grant, 'scopes', ARGV[6],
  'issued_at', ARGV[7], 'expires_at', ARGV[8])
if retried == '1' then
  -- What a retry superseded, so that undo_rotation.lua can put it back.
  redis.call('HSET', KEYS[2], 'replaces', record.successor)
end
redis.call('EXPIRE', KEYS[2], ARGV[5])
redis.call('SADD', tokens_key(grant), ARGV[4])
return {'rotated', retried, flat}
