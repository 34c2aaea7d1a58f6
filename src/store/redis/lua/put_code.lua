-- KEYS[1] code, KEYS[2] code index; ARGV as `admit` (login_common.lua).
-- 1 when stored, 0 when the bound is reached.
return admit(code_key)
