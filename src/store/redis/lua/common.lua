-- Prepended to every script. ARGV[1] is always the key prefix; the names below
-- must match keys.rs. Scripts reach keys they derive from stored values (a refresh
-- token's grant), so the store needs one Redis (with replicas or Sentinel), not a
-- Redis Cluster.
local prefix = ARGV[1]

local function grant_key(id) return prefix .. 'grant:' .. id end
local function tokens_key(id) return prefix .. 'grant_tokens:' .. id end
local function refresh_key(hex) return prefix .. 'refresh:' .. hex end

-- A grant that exists and is not revoked.
local function live(id)
  local g = grant_key(id)
  return redis.call('EXISTS', g) == 1 and redis.call('HEXISTS', g, 'revoked_at') == 0
end

-- Deletes every refresh token of the grant, then marks it revoked, keeping an
-- earlier revocation time (memory and sqlite do the same).
local function revoke(id, now)
  local tokens = tokens_key(id)
  for _, hex in ipairs(redis.call('SMEMBERS', tokens)) do
    redis.call('DEL', refresh_key(hex))
  end
  redis.call('DEL', tokens)
  local g = grant_key(id)
  if redis.call('EXISTS', g) == 1 then
    redis.call('HSETNX', g, 'revoked_at', now)
  end
end

-- A stored number; anything else fails the script (before it writes) with a
-- CORRUPT error, which the store reports as a corrupt record.
local function number(value, what)
  local n = tonumber(value)
  if n == nil then error({err = 'CORRUPT ' .. what .. ' is not a number'}) end
  return n
end

-- A flat HGETALL reply as a table.
local function as_table(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end


-- The admin listing's indexes (keys.rs): sorted sets of grant ids, all at score 0
-- so they read in id order (ZRANGEBYLEX).
local function grants_listed() return prefix .. 'grant_index:all' end
local function grant_index(field, value) return prefix .. 'grant_index:' .. field .. ':' .. value end

-- Adds (add = true) or removes the grant's listing index entries, from its stored
-- subject, client and resource (a value that is not a hash has none).
local function index_grant(id, add)
  local g = grant_key(id)
  local f = {}
  if redis.call('TYPE', g).ok == 'hash' then
    f = redis.call('HMGET', g, 'subject', 'client_id', 'resource')
  end
  local keys = {grants_listed()}
  if f[1] then keys[#keys + 1] = grant_index('subject', f[1]) end
  if f[2] then keys[#keys + 1] = grant_index('client', f[2]) end
  if f[3] then keys[#keys + 1] = grant_index('resource', f[3]) end
  for _, k in ipairs(keys) do
    if add then redis.call('ZADD', k, 0, id) else redis.call('ZREM', k, id) end
  end
end
