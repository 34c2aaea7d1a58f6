-- KEYS[1] refresh token
-- The token's fields when it exists and its grant is live; empty otherwise.
local grant = redis.call('HGET', KEYS[1], 'grant_id')
if not grant or not live(grant) then return {} end
return redis.call('HGETALL', KEYS[1])
