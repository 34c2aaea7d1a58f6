#!/usr/bin/env bash
# Instructions per forward-auth request, counted by callgrind in the broker process (all
# of its threads): the repeated-token GET /auth/verify on a resource without rate limits
# and on one with them (verify.sh's cases 2 and 4), REQUESTS of each sent one after
# another over one keep-alive connection after a warm-up. Instructions, not seconds: the
# same binary and inputs give the same counts whatever else the machine is doing, so an
# A/B of the limit check's cost needs no quiet machine.
#
# Usage: BUILD=0 bash benches/verify-callgrind.sh          (see benches/README.md)
# Knobs: REQUESTS=2000 WARMUP_REQUESTS=300 BUILD=1 BIN=… KEEP=0
#        OTLP=1: tracing on ([telemetry.otlp], every request sampled), the spans
#        exported to a sink on loopback that answers 200 (its cost is not counted; the
#        broker's exporter thread's is)
set -euo pipefail

REQUESTS=${REQUESTS:-2000}
WARMUP_REQUESTS=${WARMUP_REQUESTS:-300}
BUILD=${BUILD:-1}
KEEP=${KEEP:-0}
OTLP=${OTLP:-0}
run=()

BENCH_NAME=verify-callgrind
# shellcheck source=benches/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for tool in valgrind callgrind_control; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is required (Debian: valgrind)"
done

start_dev_idp 'access_token_ttl = "2h"'

broker_port=$(free_port)
broker=http://127.0.0.1:$broker_port
resource=$broker/mcp
cat >"$work/broker.toml" <<TOML
[server]
listen = "127.0.0.1:$broker_port"
public_url = "$broker"
workers = 1
shutdown_timeout = "2s"

[upstream]
issuer = "$idp_url"
client_id = "token-broker"
client_secret = "token-broker-secret"

[[resources]]
uri = "$resource"
required_scopes = ["notes:read"]

[resources.rate_limit]
enabled = false

[[resources]]
uri = "$broker/mcp-limited"
audiences = ["$resource"]
required_scopes = ["notes:read"]

[resources.rate_limit]
key = ["subject", "client"]
window = "1m"
upstream_token = 1000000

[store]
backend = "memory"

[log]
level = "warn"
TOML
if [[ $OTLP == 1 ]]; then
  otlp_port=$(free_port)
  python3 - "$otlp_port" <<'PY' &
import http.server, sys
class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
PY
  pids+=("$!")
  printf '\n[telemetry.otlp]\nendpoint = "http://127.0.0.1:%s"\n' "$otlp_port" >>"$work/broker.toml"
  log "tracing on: spans to the sink on port $otlp_port"
fi
start_under_callgrind "$work/broker.toml" "$broker"
log "broker under callgrind at $broker"

resource_form=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$resource")
token=$(curl -sf -u demo-service:demo-service-secret \
  -d "grant_type=client_credentials&scope=notes%3Aread&resource=$resource_form" "$idp_url/token" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])') ||
  die "could not obtain a token from the dev IdP"

# send PATH N: N forward-auth requests for PATH over one connection; each must be 200.
send() {
  python3 - "$broker_port" "$1" "$2" "$token" <<'PY'
import http.client, sys
port, path, n, token = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
conn = http.client.HTTPConnection("127.0.0.1", port)
headers = {"X-Original-Method": "POST", "X-Original-URI": path,
           "Authorization": "Bearer " + token}
def once():
    conn.request("GET", "/auth/verify", headers=headers)
    response = conn.getresponse()
    response.read()
    return response.status
for _ in range(n):
    try:
        status = once()
    except ConnectionError:
        # Under callgrind (a debug build, a busy machine) the broker's 5 s request
        # timeout can close the connection: one new connection, the request again.
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port)
        status = once()
    if status != 200:
        sys.exit(f"{path}: {status}")
PY
}

# measure NAME PATH: sets IR to the instructions per request of PATH.
measure() { callgrind_per_request "$1" "$REQUESTS" send "$2"; }

measure unlimited /mcp; unlimited=$IR
measure limited /mcp-limited; limited=$IR
printf '%-34s %12s\n' "case ($REQUESTS requests each)" "instr/request"
printf '%-34s %12d\n' "/auth/verify, limits off" "$unlimited"
printf '%-34s %12d\n' "/auth/verify, limits on (memory)" "$limited"
printf '%-34s %12d  (%s)\n' "the limit check" "$(( limited - unlimited ))" \
  "$(awk -v a="$limited" -v b="$unlimited" 'BEGIN { printf "+%.1f%%", (a / b - 1) * 100 }')"
