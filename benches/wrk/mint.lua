-- wrk script: mint client-credentials access tokens at the dev IdP's /token endpoint.
-- Each wrk thread appends the tokens it receives to "$BENCH_MINT_OUT.<thread index>".
-- Environment: BENCH_MINT_OUT (output prefix), BENCH_RESOURCE (form-encoded resource).

local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  out = assert(io.open(os.getenv("BENCH_MINT_OUT") .. "." .. id, "w"))
  wrk.method = "POST"
  wrk.body = "grant_type=client_credentials&scope=notes%3Aread&resource="
    .. os.getenv("BENCH_RESOURCE")
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  -- demo-service:demo-service-secret, the dev IdP's built-in service client
  wrk.headers["Authorization"] = "Basic ZGVtby1zZXJ2aWNlOmRlbW8tc2VydmljZS1zZWNyZXQ="
end

function response(status, headers, body)
  local token = status == 200 and body:match('"access_token":"([^"]+)"')
  if token then
    out:write(token, "\n")
  end
end
