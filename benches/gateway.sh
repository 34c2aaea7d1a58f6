#!/usr/bin/env bash
# Gateway overhead, measured with wrk in one run against a release build on loopback
# (127.0.0.1 only): the demo's MCP server called directly against the same server
# called through the broker's gateway, both with a `tools/call` of `notes_read` and a
# bearer token:
#   1. direct:  client ─▶ demo /mcp (the demo broker verifies the token, exchanges it
#               for the notes API, and its MCP server answers)
#   2. gateway: client ─▶ gateway broker /mcp (verifies the client's token, checks the
#               tool rules on the JSON-RPC body, exchanges the token for one for the
#               demo's /mcp, streams the call through) ─▶ demo /mcp (as in 1)
# so the difference between the two is the gateway hop. Every token, exchange and
# verification is a cache hit after the warm-up. Prints requests/s, p50/p99, CPU per
# request of each process, and the overhead: gateway/direct for req/s (the median of
# per-round ratios) and the added p50/p99. Informational: exit 0 whatever the figures,
# non-zero only when something broke (a non-2xx answer, socket errors, a dead process).
#
# Usage: bash benches/gateway.sh          (see benches/README.md)
# Knobs (environment):
#   DURATION=3      seconds per round per case
#   ROUNDS=5        alternating rounds of cases 1 and 2 (order swapped every round)
#   WARMUP=2        seconds of warm-up per case
#   THREADS=2 CONNECTIONS=64   wrk load (sized for a 2-core machine)
#   WORKERS=<cores> gateway broker HTTP workers (the demo uses one per core)
#   NICE=-10        scheduling priority of the demo, the gateway broker and wrk as root; 0: none
#   BUILD=1 (0: use the existing target/release/token-broker)
#   KEEP=0 (1: keep the work directory with configs and logs)
# The demo's tokens live 5 minutes and the whole run must fit in them: with the
# defaults it takes under a minute after the build.
set -euo pipefail

started_at=$(date +%s)

DURATION=${DURATION:-3}
ROUNDS=${ROUNDS:-5}
WARMUP=${WARMUP:-2}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
CORES=$(nproc)
WORKERS=${WORKERS:-$CORES}
BUILD=${BUILD:-1}
KEEP=${KEEP:-0}
NICE=${NICE:--10}
[[ $(id -u) -eq 0 ]] || NICE=0
run=(nice -n "$NICE")

BENCH_NAME=gateway-bench
# shellcheck source=benches/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# --- the demo: its dev IdP, its broker and its MCP server at /mcp -------------------
demo_port=$(free_port)
idp_port=$(free_port)
while [[ $idp_port == "$demo_port" ]]; do idp_port=$(free_port); done
demo=http://127.0.0.1:$demo_port
idp_url=http://127.0.0.1:$idp_port
"${run[@]}" "$bin" demo --listen "127.0.0.1:$demo_port" --idp-listen "127.0.0.1:$idp_port" \
  >"$work/demo.out" 2>"$work/demo.err" &
demo_pid=$!
pids+=("$demo_pid")
ready=0
for _ in $(seq 150); do
  if [[ $(curl -s -o /dev/null -w '%{http_code}' "$demo/readyz" || true) == 200 ]]; then
    ready=1
    break
  fi
  alive "$demo_pid" || { cat "$work/demo.err" >&2; die "the demo exited"; }
  sleep 0.2
done
[[ $ready == 1 ]] || { tail -n 20 "$work/demo.err" >&2; die "the demo is not ready after 30 s"; }

# --- the gateway: a broker in front of the demo's /mcp ------------------------------
# Its resource hands the demo a token for the demo's own /mcp (exchanged at the dev
# IdP), never the client's; the tool rules are the demo's.
gw_port=$(free_port)
while [[ $gw_port == "$demo_port" || $gw_port == "$idp_port" ]]; do gw_port=$(free_port); done
gateway=http://127.0.0.1:$gw_port
cat >"$work/gateway.toml" <<EOF
[server]
listen = "127.0.0.1:$gw_port"
public_url = "$gateway"
workers = $WORKERS
shutdown_timeout = "2s"

[upstream]
issuer = "$idp_url"
client_id = "token-broker"
client_secret = "token-broker-secret"

[[resources]]
uri = "$gateway/mcp"
required_scopes = ["notes:read"]
exchange_audience = "$demo/mcp"

# One token at full speed is what a rate limit is for; this measures the path without.
[resources.rate_limit]
enabled = false

[[resources.tools]]
name = "notes_read"
scopes = ["notes:read"]

[[resources.tools]]
name = "notes_write"
scopes = ["notes:write"]

[[resources.tools]]
name = "health"
public = true

[[exchange.audiences]]
audience = "$demo/mcp"
scopes = ["notes:read", "notes:write"]

[[gateway]]
path = "/mcp"
upstream = "$demo/mcp"

# In memory, as in earlier runs: the figures measure the request path, not the store.
[store]
backend = "memory"

[log]
level = "warn"
EOF
start_broker "$work/gateway.toml" "$gateway"
gateway_pid=$broker_pid
log "demo $demo (dev IdP $idp_url), gateway $gateway ($WORKERS workers) in front of $demo/mcp"

# --- tokens and one call each way ---------------------------------------------------
# Client-credentials tokens of the dev IdP's service client, one per resource.
token_for() {
  curl -sf -u demo-service:demo-service-secret -d grant_type=client_credentials \
    -d scope=notes:read --data-urlencode "resource=$1" "$idp_url/token" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}
direct_token=$(token_for "$demo/mcp") || die "no token for $demo/mcp from the dev IdP"
gateway_token=$(token_for "$gateway/mcp") || die "no token for $gateway/mcp from the dev IdP"

body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes_read","arguments":{}}}'
mcp_headers=(-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream')
check_call() {
  local url=$1 token=$2 answer
  answer=$(curl -s "${mcp_headers[@]}" -H "Authorization: Bearer $token" -d "$body" "$url")
  python3 -c 'import json, sys; a = json.loads(sys.argv[1]); assert a["result"]["isError"] is False' \
    "$answer" 2>/dev/null || die "tools/call at $url failed: $answer (see $work/demo.err, $work/broker.err)"
}
check_call "$demo/mcp" "$direct_token"
check_call "$gateway/mcp" "$gateway_token"

# report.lua measures; this wrapper makes its requests JSON-RPC POSTs (report.lua's
# BENCH_BODY would send a form). wrk takes the last -s it is given.
cat >"$work/jsonrpc.lua" <<EOF
dofile("$benches/wrk/report.lua")
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
EOF

# --- measuring ----------------------------------------------------------------------
ticks_of() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
declare -A REQ US P50 P99 ERR DEMO_TICKS GW_TICKS
declare -a ROUND_RATIO=()
# call CASE NAME SECONDS: one wrk run of CASE, with both processes' CPU ticks.
call() {
  local c=$1 name=$2 seconds=$3 url token demo_before gw_before
  case $c in
    direct) url=$demo/mcp token=$direct_token ;;
    gateway) url=$gateway/mcp token=$gateway_token ;;
  esac
  alive "$demo_pid" || die "the demo died (see $work/demo.err)"
  demo_before=$(ticks_of "$demo_pid")
  gw_before=$(ticks_of "$gateway_pid")
  run_wrk "$name" "$seconds" "$url" -s "$work/jsonrpc.lua" -H "Authorization: Bearer $token"
  R_demo_ticks=$(( $(ticks_of "$demo_pid") - demo_before ))
  R_gw_ticks=$(( $(ticks_of "$gateway_pid") - gw_before ))
}
add() {
  local c=$1
  REQ[$c]=$(( ${REQ[$c]:-0} + R_requests ))
  US[$c]=$(( ${US[$c]:-0} + R_duration_us ))
  ERR[$c]=$(( ${ERR[$c]:-0} + R_sockerr ))
  DEMO_TICKS[$c]=$(( ${DEMO_TICKS[$c]:-0} + R_demo_ticks ))
  GW_TICKS[$c]=$(( ${GW_TICKS[$c]:-0} + R_gw_ticks ))
  (( R_p50_us > ${P50[$c]:-0} )) && P50[$c]=$R_p50_us
  (( R_p99_us > ${P99[$c]:-0} )) && P99[$c]=$R_p99_us
  return 0
}
# Median p50/p99 over the rounds as well (the worst round shows disturbances).
declare -A P50S P99S
measure() {
  call "$1" "$1.$round" "$DURATION"
  add "$1"
  P50S[$1]+="$R_p50_us "
  P99S[$1]+="$R_p99_us "
  rps=$(rate "$R_requests" "$R_duration_us")
}

log "warm-up: ${WARMUP}s each way"
call direct warm-direct "$WARMUP"
call gateway warm-gateway "$WARMUP"
for round in $(seq "$ROUNDS"); do
  # ABBA order: a load burst at a round's start or end does not always hit one case.
  if (( round % 2 )); then
    log "round $round/$ROUNDS: direct then gateway, ${DURATION}s each"
    measure direct; d=$rps
    measure gateway; g=$rps
  else
    log "round $round/$ROUNDS: gateway then direct, ${DURATION}s each"
    measure gateway; g=$rps
    measure direct; d=$rps
  fi
  ROUND_RATIO+=("$(ratio "$g" "$d")")
done

# --- report -------------------------------------------------------------------------
per_req() {
  awk -v t="$1" -v hz="$clk_tck" -v n="$2" 'BEGIN { printf "%.1f", (n > 0 ? t / hz * 1e6 / n : 0) }'
}
declare -A RPS M50 M99
for c in direct gateway; do
  RPS[$c]=$(rate "${REQ[$c]}" "${US[$c]}")
  # shellcheck disable=SC2086 # one value per word
  M50[$c]=$(median ${P50S[$c]})
  # shellcheck disable=SC2086
  M99[$c]=$(median ${P99S[$c]})
done
r_median=$(median "${ROUND_RATIO[@]}")
r_pooled=$(ratio "${RPS[gateway]}" "${RPS[direct]}")
added() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.2f", (a - b) / 1000 }'; }

echo
echo "token-broker gateway benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "machine: $CORES cores ($(uname -m)), load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "demo: release build, one worker per core, its own log (info, every request);" \
  "gateway broker: $WORKERS workers, log level warn; 127.0.0.1"
echo "wrk: $THREADS threads, $CONNECTIONS connections, POST tools/call notes_read with a bearer token;" \
  "wrk, the demo and the gateway share the $CORES cores"
echo "$ROUNDS rounds of ${DURATION}s per case, order alternating, after ${WARMUP}s warm-up; req/s = all rounds pooled"
echo "priority: nice $NICE"
echo
printf '%-34s %9s %9s %9s %10s %10s %14s %17s %7s\n' case 'req/s' 'p50 ms' 'p99 ms' 'p50 med' 'p99 med' \
  'demo CPU/req' 'gateway CPU/req' errors
for c in direct gateway; do
  case $c in
    direct) label="1. demo MCP server directly" ;;
    gateway) label="2. through the gateway" ;;
  esac
  printf '%-34s %9s %9s %9s %10s %10s %14s %17s %7s\n' "$label" "${RPS[$c]}" "$(ms "${P50[$c]}")" \
    "$(ms "${P99[$c]}")" "$(ms "${M50[$c]}")" "$(ms "${M99[$c]}")" \
    "$(per_req "${DEMO_TICKS[$c]}" "${REQ[$c]}") us" "$(per_req "${GW_TICKS[$c]}" "${REQ[$c]}") us" "${ERR[$c]}"
done
echo "(p50/p99 ms: the worst round's; med: the median round's; CPU: user + system per request;" \
  "errors: socket errors; every answer was 2xx)"
echo
echo "overhead: req/s gateway/direct = $r_median (median of the rounds: ${ROUND_RATIO[*]}; pooled: $r_pooled)"
echo "          latency added by the gateway hop: p50 $(added "${M50[gateway]}" "${M50[direct]}") ms," \
  "p99 $(added "${M99[gateway]}" "${M99[direct]}") ms (median rounds)"
echo "script time: $(( $(date +%s) - started_at ))s"
