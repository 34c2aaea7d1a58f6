-- KEYS[1] session, KEYS[2] session index; ARGV as `admit` (login_common.lua).
-- 1 when stored, 0 when the bound is reached.
return admit(login_key)
