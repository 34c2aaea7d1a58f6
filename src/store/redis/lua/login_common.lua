-- Prepended (after common.lua) to the login-state scripts; names match
-- login_state.rs. Sessions live under <p>login:<hex>, codes under <p>code:<hex>
-- (hex: the SHA-256 of the session id or code); <p>logins and <p>codes are sorted
-- sets of those hashes scored by expiry, which bound the numbers and drive the sweep.
local function login_key(hex) return prefix .. 'login:' .. hex end
local function code_key(hex) return prefix .. 'code:' .. hex end

-- Whether the stored expiry (a field's value, false when absent) has passed at now.
local function gone(expires_at, now)
  return not expires_at or number(expires_at, 'expires_at') <= now
end

-- Compares two strings in time that depends only on their lengths (CSRF tokens).
local function same(a, b)
  if not a or #a ~= #b then return false end
  local diff = 0
  for i = 1, #a do
    diff = bit.bor(diff, bit.bxor(string.byte(a, i), string.byte(b, i)))
  end
  return diff == 0
end

-- Deletes the records of `index` expired at now, and their index entries; how many.
local function drop_expired(index, key_of, now)
  local expired = redis.call('ZRANGEBYSCORE', index, '-inf', now)
  for _, hex in ipairs(expired) do redis.call('DEL', key_of(hex)) end
  redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
  return #expired
end

-- Stores a record (KEYS[1]) indexed in KEYS[2], unless ARGV[4] are held once the
-- expired ones are gone. ARGV[2] hex hash, ARGV[3] now, ARGV[5] seconds to live,
-- ARGV[6] expires_at, ARGV[7..] field, value, ...
local function admit(key_of)
  local index, now, max = KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4])
  if redis.call('ZCARD', index) >= max then
    drop_expired(index, key_of, now)
    if redis.call('ZCARD', index) >= max then return 0 end
  end
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], unpack(ARGV, 7))
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  redis.call('ZADD', index, ARGV[6], ARGV[2])
  return 1
end
