-- KEYS[1] session; ARGV[2] now, ARGV[3] presented CSRF token, ARGV[4] verifier,
-- ARGV[5] nonce, ARGV[6] remember (empty, `asked` or `for:<digest>`).
-- Stores the upstream leg once (a second approval keeps the first) and answers
-- {'approved', verifier, nonce, remember}; {'unknown'} or {'csrf'} change nothing.
local s, now = KEYS[1], tonumber(ARGV[2])
local f = redis.call('HMGET', KEYS[1], 'expires_at', 'csrf', 'verifier', 'nonce', 'remember')
if gone(f[1], now) then return {'unknown'} end
if not same(f[2], ARGV[3]) then return {'csrf'} end
if f[3] and f[4] then return {'approved', f[3], f[4], f[5] or ''} end
redis.call('HSET', s, 'verifier', ARGV[4], 'nonce', ARGV[5], 'remember', ARGV[6])
return {'approved', ARGV[4], ARGV[5], ARGV[6]}
