-- wrk script shared by every measured case. It prints one machine-readable line:
--   BENCH requests=… duration_us=… mean_us=… p50_us=… p99_us=… non2xx=… sockerr=…
--         tokens=… sent=… responses=… window_us=…
--
-- Without BENCH_TOKENS the request is wrk's static one (URL and -H headers) and only
-- wrk's own counters are reported (tokens/sent/responses/window_us are 0).
--
-- With BENCH_TOKENS set, each request carries a different bearer token: thread i reads
-- "$BENCH_TOKENS.<i>" (one token a line, all distinct) and sends each token exactly
-- once, in order; a thread that has sent its last token stops sending (so no token is
-- ever repeated, and no request is a verified-token cache hit). Because wrk's run time
-- is fixed (-d) and threads may stop before it ends, the rate is measured by the
-- script itself: `responses` over `window_us`, the wall-clock time (CLOCK_MONOTONIC via
-- LuaJIT's ffi) from the first request sent to the last response received, across
-- all threads.
--
-- With BENCH_BODY set, every request is a POST of that form body
-- (application/x-www-form-urlencoded); with BENCH_TOKENS as well, each request's token
-- replaces "{token}" in the body instead of going into an Authorization header (which
-- then stays as given with -H).

local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local token_prefix = os.getenv("BENCH_TOKENS")
local body = os.getenv("BENCH_BODY")

if body then
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

if token_prefix then
  local ffi = require("ffi")
  ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clk_id, bench_timespec *tp);
  ]]
  local ts = ffi.new("bench_timespec")
  local CLOCK_MONOTONIC = 1
  local function now_us()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
    return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
  end

  function init(args)
    tokens, ntokens, sent, responses, first_us, last_us = {}, 0, 0, 0, 0, 0
    for line in io.lines(token_prefix .. "." .. id) do
      if #line > 0 then
        ntokens = ntokens + 1
        tokens[ntokens] = line
      end
    end
    if ntokens == 0 then
      error("no tokens in " .. token_prefix .. "." .. id)
    end
  end

  function request()
    if sent >= ntokens then
      -- out of tokens: stop this thread; the empty request writes nothing
      wrk.thread:stop()
      return ""
    end
    sent = sent + 1
    if sent == 1 then
      first_us = now_us()
    end
    if body then
      local token = tokens[sent]
      return wrk.format(nil, nil, nil, (body:gsub("{token}", function() return token end)))
    end
    -- wrk.format() without a headers argument uses wrk.headers (incl. the -H ones)
    wrk.headers["Authorization"] = "Bearer " .. tokens[sent]
    return wrk.format()
  end

  function response(status, headers, body)
    responses = responses + 1
    last_us = now_us()
  end
end

function done(summary, latency, requests)
  local tokens, sent, responses, first, last = 0, 0, 0, nil, nil
  for _, thread in ipairs(threads) do
    tokens = tokens + (thread:get("ntokens") or 0)
    sent = sent + (thread:get("sent") or 0)
    responses = responses + (thread:get("responses") or 0)
    local f, l = thread:get("first_us"), thread:get("last_us")
    if f and f > 0 and (first == nil or f < first) then first = f end
    if l and l > 0 and (last == nil or l > last) then last = l end
  end
  local window = (first and last) and (last - first) or 0
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d mean_us=%d p50_us=%d p99_us=%d non2xx=%d sockerr=%d "
      .. "tokens=%d sent=%d responses=%d window_us=%d\n",
    summary.requests, summary.duration, latency.mean,
    latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout,
    tokens, sent, responses, window))
end
