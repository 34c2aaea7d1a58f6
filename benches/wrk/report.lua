-- wrk script shared by every measured case. It prints one machine-readable line:
--   BENCH requests=… duration_us=… mean_us=… p50_us=… p99_us=… non2xx=… sockerr=… tokens=… reused=…
--
-- With BENCH_TOKENS set, each request carries a different bearer token: thread i reads
-- "$BENCH_TOKENS.<i>" (one token a line) and sends each token once, in order. Should a
-- thread run out it starts over, and every such repeat is counted in `reused` (a
-- repeat hits the broker's verified-token cache, so it is not a fresh verification).
-- With BENCH_STOP_WHEN_EXHAUSTED=1 a thread that runs out stops instead (used by the
-- probe, whose mean latency then describes fresh verifications only).
-- Without BENCH_TOKENS the request is wrk's static one (URL and -H headers).

local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local token_prefix = os.getenv("BENCH_TOKENS")
local stop_when_exhausted = os.getenv("BENCH_STOP_WHEN_EXHAUSTED") == "1"

if token_prefix then
  function init(args)
    tokens, ntokens, sent, reused = {}, 0, 0, 0
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
    sent = sent + 1
    if sent > ntokens then
      if stop_when_exhausted then
        wrk.thread:stop()
      else
        reused = reused + 1
      end
    end
    -- wrk.format() without a headers argument uses wrk.headers (incl. the -H ones)
    wrk.headers["Authorization"] = "Bearer " .. tokens[(sent - 1) % ntokens + 1]
    return wrk.format()
  end
end

function done(summary, latency, requests)
  local tokens, reused = 0, 0
  for _, thread in ipairs(threads) do
    tokens = tokens + (thread:get("ntokens") or 0)
    reused = reused + (thread:get("reused") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d mean_us=%d p50_us=%d p99_us=%d non2xx=%d sockerr=%d tokens=%d reused=%d\n",
    summary.requests, summary.duration, latency.mean,
    latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout,
    tokens, reused))
end
