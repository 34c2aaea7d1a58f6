#!/usr/bin/env bash
# Token-exchange throughput (RFC 8693 at POST /oauth/token), measured with wrk in one
# run against a release build on loopback (127.0.0.1 only):
#   1. GET /healthz                                         (the baseline)
#   2. token exchange, one subject token repeated           (exchange-cache hit)
#   3. token exchange, a distinct subject token per request (cache miss: the dev IdP's
#      token endpoint is called, with LATENCY_MS of added latency)
# Prints requests/s, p50/p99 latency, broker CPU per request, the ratio hits/healthz
# against TARGET (PASS/FAIL), and from the dev IdP's call counters how many exchanges
# reached it during the hits (none expected) and during the misses (every one).
# Cases 1 and 2 alternate over ROUNDS rounds; case 3 sends every pre-minted token
# exactly once and stops when they run out. The verdict is informational: exit 0
# either way, non-zero only when something broke (a non-2xx answer, socket errors, a
# process that died, a miss that never reached the IdP).
#
# Usage: bash benches/exchange.sh          (see benches/README.md)
# Knobs (environment):
#   DURATION=3      seconds per round per case (1 and 2)
#   ROUNDS=5        alternating rounds of cases 1 and 2 (order swapped every round)
#   WARMUP=2        seconds of warm-up before cases 1 and 2
#   THREADS=2 CONNECTIONS=64   wrk load (sized for a 2-core machine)
#   WORKERS=<cores> broker HTTP workers
#   MINT_SECONDS=20 time spent minting subject tokens for case 3 at the dev IdP
#   MISS_SECONDS=10 longest run of case 3 (it stops earlier when the tokens run out)
#   LATENCY_MS=20   latency the dev IdP adds to its token endpoint during case 3
#   NICE=-10        scheduling priority of the broker, the dev IdP and wrk as root; 0: none
#   TARGET=0.7  BUILD=1 (0: use the existing target/release/token-broker)
#   KEEP=0 (1: keep the work directory with configs, logs and tokens)
set -euo pipefail

started_at=$(date +%s)

DURATION=${DURATION:-3}
ROUNDS=${ROUNDS:-5}
WARMUP=${WARMUP:-2}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
CORES=$(nproc)
WORKERS=${WORKERS:-$CORES}
MINT_SECONDS=${MINT_SECONDS:-20}
MISS_SECONDS=${MISS_SECONDS:-10}
LATENCY_MS=${LATENCY_MS:-20}
TARGET=${TARGET:-0.7}
BUILD=${BUILD:-1}
KEEP=${KEEP:-0}
NICE=${NICE:--10}
[[ $(id -u) -eq 0 ]] || NICE=0
run=(nice -n "$NICE")

BENCH_NAME=exchange-bench
# shellcheck source=benches/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Development IdP with 2 h tokens: neither subject nor exchanged tokens expire mid-run,
# so a cached exchange stays cached.
start_dev_idp 'access_token_ttl = "2h"'

# The broker: one resource needing notes:read (subject tokens are verified against
# it), one exchange audience, one caller allowed to exchange for it.
broker_port=$(free_port)
broker=http://127.0.0.1:$broker_port
resource=$broker/mcp
audience=https://notes.example/api
caller_id=bench-mcp
caller_secret=bench-mcp-secret-0123456789
cat >"$work/broker.toml" <<EOF
[server]
listen = "127.0.0.1:$broker_port"
public_url = "$broker"
workers = $WORKERS
shutdown_timeout = "2s"

[upstream]
issuer = "$idp_url"
client_id = "token-broker"
client_secret = "token-broker-secret"

[[resources]]
uri = "$resource"
required_scopes = ["notes:read"]

[[exchange.audiences]]
audience = "$audience"
scopes = ["notes:read"]

[[exchange.clients]]
client_id = "$caller_id"
client_secret = "$caller_secret"
audiences = ["$audience"]

# In memory, as in earlier runs: the figures measure the request path, not the store.
[store]
backend = "memory"

[log]
level = "warn"
EOF
start_broker "$work/broker.toml" "$broker"
log "dev IdP $idp_url, broker $broker ($WORKERS workers)"

urlencode() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
resource_form=$(urlencode "$resource")
caller_auth=(-H "Authorization: Basic $(printf '%s:%s' "$caller_id" "$caller_secret" | base64 -w0)")
# The exchange form without its subject token.
form="grant_type=$(urlencode urn:ietf:params:oauth:grant-type:token-exchange)"
form+="&subject_token_type=$(urlencode urn:ietf:params:oauth:token-type:access_token)"
form+="&audience=$(urlencode "$audience")&subject_token="

# Exchange calls the dev IdP has answered so far (its /_dev/calls counters).
idp_exchanges() {
  curl -sf "$idp_url/_dev/calls" | python3 -c '
import json, sys
calls = json.load(sys.stdin)["calls"]
print(calls.get("token:urn:ietf:params:oauth:grant-type:token-exchange", {}).get("count", 0))'
}

# --- the repeated subject ---------------------------------------------------------
# A client-credentials token of the dev IdP's service client: RS256, aud = the resource.
subject=$(curl -sf -u demo-service:demo-service-secret \
  -d "grant_type=client_credentials&scope=notes%3Aread&resource=$resource_form" "$idp_url/token" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])') ||
  die "could not obtain a token from the dev IdP"
answer=$(curl -s "${caller_auth[@]}" --data-raw "$form$subject" "$broker/oauth/token")
python3 -c 'import json, sys; t = json.loads(sys.argv[1]); assert t.get("access_token") and t["access_token"] != sys.argv[2]' \
  "$answer" "$subject" 2>/dev/null || die "the exchange failed: $answer (see $work/broker.err)"
(( $(idp_exchanges) == 1 )) || die "the first exchange did not reach the dev IdP exactly once"

# --- cases 1 and 2 ----------------------------------------------------------------
declare -A REQ US TICKS WRK P50 P99 ERR
declare -a ROUND_RATIO=()
# add CASE: accumulates the last run into CASE's totals; p50/p99 are the worst round's.
add() {
  local c=$1 us=${2:-$R_duration_us} n=${3:-$R_requests}
  REQ[$c]=$(( ${REQ[$c]:-0} + n ))
  US[$c]=$(( ${US[$c]:-0} + us ))
  TICKS[$c]=$(( ${TICKS[$c]:-0} + R_ticks ))
  WRK[$c]=$(( ${WRK[$c]:-0} + R_wrk_ms ))
  ERR[$c]=$(( ${ERR[$c]:-0} + R_sockerr ))
  (( R_p50_us > ${P50[$c]:-0} )) && P50[$c]=$R_p50_us
  (( R_p99_us > ${P99[$c]:-0} )) && P99[$c]=$R_p99_us
  return 0
}

hit() { BENCH_BODY="$form$subject" run_wrk "$1" "$2" "$broker/oauth/token" "${caller_auth[@]}"; }

log "warm-up: /healthz and the repeated exchange (${WARMUP}s each)"
run_wrk warm-healthz "$WARMUP" "$broker/healthz"
hit warm-hits "$WARMUP"
hits_before=$(idp_exchanges)

measure_healthz() {
  run_wrk "healthz.$round" "$DURATION" "$broker/healthz"
  add healthz
  h=$(rate "$R_requests" "$R_duration_us")
}
measure_hits() {
  hit "hits.$round" "$DURATION"
  add hits
  x=$(rate "$R_requests" "$R_duration_us")
}
for round in $(seq "$ROUNDS"); do
  # ABBA order: a load burst at a round's start or end does not always hit the same case
  if (( round % 2 )); then
    log "round $round/$ROUNDS: /healthz then the repeated exchange, ${DURATION}s each"
    measure_healthz
    measure_hits
  else
    log "round $round/$ROUNDS: the repeated exchange then /healthz, ${DURATION}s each"
    measure_hits
    measure_healthz
  fi
  ROUND_RATIO+=("$(ratio "$x" "$h")")
done
hits_upstream=$(( $(idp_exchanges) - hits_before ))

# --- case 3 -----------------------------------------------------------------------
log "minting subject tokens for ${MINT_SECONDS}s (wrk -t2 -c16 against the dev IdP's /token)"
BENCH_MINT_OUT="$work/minted" BENCH_RESOURCE="$resource_form" \
  in_child "${run[@]}" wrk -t2 -c16 -d"${MINT_SECONDS}s" -s "$benches/wrk/mint.lua" "$idp_url/token" >"$work/mint.log" 2>&1 ||
  { cat "$work/mint.log" >&2; die "minting failed"; }
# Distinct tokens only, without the repeated one, dealt round-robin to one file per thread.
cat "$work"/minted.* | awk -v skip="$subject" 'NF && $0 != skip' | sort -u >"$work/fresh.all"
rm -f "$work"/minted.*
awk -v n="$THREADS" -v p="$work/fresh" '{ print > (p "." (NR - 1) % n) }' "$work/fresh.all"
fresh_count=$(wc -l <"$work/fresh.all")
(( fresh_count >= 1000 )) || die "only $fresh_count tokens minted (see $work/mint.log)"
log "minted $fresh_count distinct subject tokens"

curl -sf -H 'Content-Type: application/json' \
  -d "{\"endpoint\":\"token\",\"latency_ms\":$LATENCY_MS}" "$idp_url/_dev/faults" ||
  die "could not set the dev IdP's token latency"
misses_before=$(idp_exchanges)
log "token exchange, a distinct subject per request, the dev IdP's /token +${LATENCY_MS} ms (up to ${MISS_SECONDS}s)"
BENCH_TOKENS="$work/fresh" BENCH_BODY="$form{token}" \
  run_wrk misses "$MISS_SECONDS" "$broker/oauth/token" "${caller_auth[@]}"
(( R_window_us > 0 && R_responses > 0 )) || die "misses: no responses measured (see $work/misses.log)"
add misses "$R_window_us" "$R_responses"
misses_sent=$R_sent
misses_responses=$R_responses
misses_window_us=$R_window_us
misses_upstream=$(( $(idp_exchanges) - misses_before ))
# Every answered request was a miss that reached the IdP; a request sent but cut off
# when wrk stopped may have reached it too.
(( misses_upstream >= misses_responses && misses_upstream <= misses_sent )) ||
  die "misses: $misses_responses answered, $misses_sent sent, but $misses_upstream exchanges reached the dev IdP"

# --- report ----------------------------------------------------------------------
declare -A RPS CPU WCPU
for c in healthz hits misses; do
  RPS[$c]=$(rate "${REQ[$c]}" "${US[$c]}")
  CPU[$c]=$(awk -v t="${TICKS[$c]}" -v hz="$clk_tck" -v n="${REQ[$c]}" \
    'BEGIN { printf "%.1f", (n > 0 ? t / hz * 1e6 / n : 0) }')
  WCPU[$c]=$(awk -v ms="${WRK[$c]}" -v n="${REQ[$c]}" 'BEGIN { printf "%.1f", (n > 0 ? ms * 1e3 / n : 0) }')
done
# The most the ratio could be on these shared cores if an exchange hit cost the broker
# no more than /healthz does: what is left is wrk's own cost of the larger request and
# answer (throughput ~ cores / CPU per request, broker and wrk together).
ceiling=$(awk -v bh="${CPU[healthz]}" -v wh="${WCPU[healthz]}" -v wx="${WCPU[hits]}" \
  'BEGIN { printf "%.2f", (bh + wx > 0 ? (bh + wh) / (bh + wx) : 0) }')
r_cpu=$(awk -v h="${CPU[healthz]}" -v x="${CPU[hits]}" 'BEGIN { printf "%.2f", (x > 0 ? h / x : 0) }')
r_pooled=$(ratio "${RPS[hits]}" "${RPS[healthz]}")
r_hits=$(median "${ROUND_RATIO[@]}")
r_misses=$(ratio "${RPS[misses]}" "${RPS[healthz]}")
verdict=$(awk -v r="$r_hits" -v t="$TARGET" 'BEGIN { print (r >= t ? "PASS" : "FAIL") }')

echo
echo "token-broker token-exchange benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "machine: $CORES cores ($(uname -m)), load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "broker: release build, $WORKERS workers, log level warn, 127.0.0.1; dev IdP on the same cores"
echo "wrk: $THREADS threads, $CONNECTIONS connections; wrk, the broker and the dev IdP share the $CORES cores"
echo "cases 1-2: $ROUNDS rounds of ${DURATION}s each, order alternating, after ${WARMUP}s warm-up;" \
  "req/s = all rounds pooled"
echo "priority: nice $NICE for the broker, the dev IdP and wrk"
echo
printf '%-44s %10s %9s %9s %15s %13s %8s\n' case 'req/s' 'p50 ms' 'p99 ms' 'broker CPU/req' 'wrk CPU/req' errors
for c in healthz hits misses; do
  case $c in
    healthz) label="1. GET /healthz" ;;
    hits) label="2. exchange, cache hit (same subject)" ;;
    misses) label="3. exchange, cache miss (IdP +${LATENCY_MS} ms)" ;;
  esac
  printf '%-44s %10s %9s %9s %15s %13s %8s\n' "$label" "${RPS[$c]}" "$(ms "${P50[$c]}")" \
    "$(ms "${P99[$c]}")" "${CPU[$c]} us" "${WCPU[$c]} us" "${ERR[$c]}"
done
echo "(p50/p99: the worst round's; errors: socket errors; every answer was 2xx)"
echo
echo "hits:   ${REQ[hits]} exchanges answered, $hits_upstream reached the dev IdP (the cache answered the rest)"
echo "misses: $fresh_count distinct subject tokens minted, $misses_sent sent, each at most once;" \
  "$misses_responses answered in $(ms "$misses_window_us") ms (first request to last answer);" \
  "$misses_upstream exchanges reached the dev IdP"
if (( misses_sent >= fresh_count )); then
  echo "        (the tokens ran out before ${MISS_SECONDS}s: MINT_SECONDS sets how many are minted)"
fi
echo
echo "ratio hits/healthz:   $r_hits   target >= $TARGET   $verdict"
echo "    (median of the rounds: ${ROUND_RATIO[*]}; pooled: $r_pooled)"
echo "ratio misses/healthz: $r_misses   (informational: bounded by the IdP's latency and signing)"
echo "broker CPU ratio healthz/hits: $r_cpu   (CPU per request, whatever wrk costs)"
echo "ceiling of hits/healthz here: $ceiling   (an exchange hit costing the broker no more than /healthz;"
echo "    what remains is wrk's own CPU for the larger request and answer, on the same cores)"
echo "script time: $(( $(date +%s) - started_at ))s"
