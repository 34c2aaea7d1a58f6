-- KEYS[1] session index, KEYS[2] code index; ARGV[2] now.
-- Drops sessions and codes expired at now (Redis's TTLs usually did already; the
-- broker's clock decides) and answers how many of each went.
local now = tonumber(ARGV[2])
return {drop_expired(KEYS[1], login_key, now), drop_expired(KEYS[2], code_key, now)}
