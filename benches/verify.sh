#!/usr/bin/env bash
# Forward-auth throughput: /healthz, /auth/verify with one repeated RS256 token, and
# /auth/verify with a fresh RS256 token per request, measured with wrk in one run
# against a release build on loopback; prints requests/s, p50/p99 latency and the
# ratios to /healthz. Target: repeated-token /auth/verify >= 0.8 x /healthz.
# The verdict is informational: exit 0 either way, non-zero only when something broke.
#
# Usage: bash benches/verify.sh
# Knobs (environment): DURATION=10 WARMUP=2 THREADS=2 CONNECTIONS=64 WORKERS=<cores>
#   TARGET=0.8 BUILD=1 (0: use the existing target/release/token-broker)
#   FRESH_TOKENS=<n> (mint exactly n tokens for the fresh case instead of sizing the
#   list from a probe) MINT_MAX_SECONDS=180 KEEP=0 (1: keep the work directory)
set -euo pipefail

started_at=$(date +%s)
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
benches=$repo/benches

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
CORES=$(nproc)
WORKERS=${WORKERS:-$CORES}
TARGET=${TARGET:-0.8}
BUILD=${BUILD:-1}
MINT_MAX_SECONDS=${MINT_MAX_SECONDS:-180}
FRESH_TOKENS=${FRESH_TOKENS:-}
KEEP=${KEEP:-0}

log() { printf '[verify-bench] %s\n' "$*" >&2; }
die() { log "error: $*"; [[ -z ${work:-} ]] || KEEP=1; exit 1; }

# --- tools -----------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
  log "wrk not found; installing it from Debian/Ubuntu packages"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  command -v apt-get >/dev/null 2>&1 || die "wrk is missing and apt-get is unavailable; install wrk"
  "${sudo_cmd[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq wrk >&2
fi
for tool in curl python3 awk; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done

if [[ $BUILD == 1 ]]; then
  log "cargo build --release"
  cargo build --release --quiet >&2
fi
bin=$repo/target/release/token-broker
[[ -x $bin ]] || die "$bin not found (run cargo build --release)"

# --- processes and clean-up ------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/verify-bench.XXXXXX")
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ $KEEP == 1 ]]; then
    log "work directory kept: $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Development IdP with 2 h tokens, on a port of its choosing.
printf 'access_token_ttl = "2h"\n' >"$work/idp.toml"
"$bin" dev-idp --listen 127.0.0.1:0 --config "$work/idp.toml" \
  >"$work/idp.out" 2>"$work/idp.err" &
pids+=($!)
idp_url=
for _ in $(seq 100); do
  idp_url=$(sed -n 's/^dev IdP (development only) at \(http[^ ]*\).*/\1/p' "$work/idp.out")
  [[ -n $idp_url ]] && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$work/idp.err" >&2; die "dev IdP exited"; }
  sleep 0.1
done
[[ -n $idp_url ]] || die "dev IdP did not start"

broker_port=$(free_port)
broker=http://127.0.0.1:$broker_port
resource=$broker/mcp
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

[log]
level = "warn"
EOF
"$bin" serve --config "$work/broker.toml" >"$work/broker.out" 2>"$work/broker.err" &
pids+=($!)
ready=0
for _ in $(seq 150); do
  if [[ $(curl -s -o /dev/null -w '%{http_code}' "$broker/readyz" || true) == 200 ]]; then
    ready=1
    break
  fi
  kill -0 "${pids[1]}" 2>/dev/null || { cat "$work/broker.err" >&2; die "broker exited"; }
  sleep 0.2
done
[[ $ready == 1 ]] || { cat "$work/broker.err" >&2; die "broker not ready after 30 s"; }
log "dev IdP $idp_url, broker $broker ($WORKERS workers)"

resource_form=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$resource")

# --- helpers ---------------------------------------------------------------------
# mint SECONDS PREFIX: mint tokens for SECONDS with wrk, then spread them round-robin
# over PREFIX.0 .. PREFIX.(THREADS-1); prints how many were minted.
mint() {
  local seconds=$1 prefix=$2
  BENCH_MINT_OUT="$work/minted" BENCH_RESOURCE="$resource_form" \
    wrk -t2 -c16 -d"${seconds}s" -s "$benches/wrk/mint.lua" "$idp_url/token" >"$work/mint.log" 2>&1 \
    || { cat "$work/mint.log" >&2; die "minting failed"; }
  cat "$work"/minted.* | awk -v n="$THREADS" -v p="$prefix" 'NF { print > (p "." (NR - 1) % n) }'
  rm -f "$work"/minted.*
  cat "$prefix".* 2>/dev/null | wc -l
}

# CPU time (user + system, in clock ticks) the broker has used so far.
clk_tck=$(getconf CLK_TCK)
broker_ticks() { awk '{ print $14 + $15 }' "/proc/${pids[1]}/stat"; }

# run_wrk NAME SECONDS URL [wrk args…]: runs wrk with report.lua; sets R_<field>,
# R_rps and R_cpu_us (broker CPU microseconds per completed request).
run_wrk() {
  local name=$1 seconds=$2 url=$3
  shift 3
  local ticks_before
  ticks_before=$(broker_ticks)
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${seconds}s" --timeout 5s -s "$benches/wrk/report.lua" \
    "$@" "$url" >"$work/$name.log" 2>&1 || { cat "$work/$name.log" >&2; die "wrk failed ($name)"; }
  local line
  line=$(grep '^BENCH ' "$work/$name.log") || { cat "$work/$name.log" >&2; die "no BENCH line ($name)"; }
  local kv
  for kv in ${line#BENCH }; do
    printf -v "R_${kv%%=*}" '%s' "${kv#*=}"
  done
  R_rps=$(awk -v r="$R_requests" -v d="$R_duration_us" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
  R_cpu_us=$(awk -v a="$ticks_before" -v b="$(broker_ticks)" -v t="$clk_tck" -v n="$R_requests" \
    'BEGIN { printf "%.1f", (n > 0 ? (b - a) / t * 1e6 / n : 0) }')
}

declare -A RPS P50 P99 NON2XX SOCKERR CPU
record() {
  RPS[$1]=$R_rps
  CPU[$1]=$R_cpu_us
  P50[$1]=$R_p50_us
  P99[$1]=$R_p99_us
  NON2XX[$1]=$R_non2xx
  SOCKERR[$1]=$R_sockerr
}

verify_headers=(-H "X-Forwarded-Uri: /mcp")

# --- fresh tokens ----------------------------------------------------------------
# A first batch serves as the fresh-path warm-up and probe (it tells how many tokens
# DURATION seconds of fresh verification need) and gives the repeated-case token.
log "minting a probe batch of tokens (5 s)"
probe_count=$(mint 5 "$work/probe")
[[ $probe_count -gt 0 ]] || die "no tokens minted"
mint_rate=$(( probe_count / 5 > 0 ? probe_count / 5 : 1 ))
repeated_token=$(head -n1 "$work/probe.0")

log "fresh-token warm-up/probe (1 s, $probe_count tokens)"
BENCH_TOKENS="$work/probe" BENCH_STOP_WHEN_EXHAUSTED=1 \
  run_wrk probe 1 "$broker/auth/verify" "${verify_headers[@]}"
[[ $R_non2xx -eq 0 ]] || die "fresh-token probe got $R_non2xx non-2xx answers (see $work/broker.err)"
# wrk keeps every connection busy, so the fresh-verification rate is about
# connections / mean latency (Little's law); it holds even if the probe ran out early.
probe_rate=$(awk -v c="$CONNECTIONS" -v m="$R_mean_us" 'BEGIN { printf "%.0f", (m > 0 ? c * 1e6 / m : 0) }')
if [[ -n $FRESH_TOKENS ]]; then
  need=$FRESH_TOKENS
else
  need=$(( probe_rate * DURATION * 11 / 10 ))   # 10 % headroom (the probe errs high)
fi
mint_seconds=$(( (need + mint_rate - 1) / mint_rate + 1 ))
if (( mint_seconds > MINT_MAX_SECONDS )); then
  log "capping minting at ${MINT_MAX_SECONDS}s (would need ${mint_seconds}s)"
  mint_seconds=$MINT_MAX_SECONDS
fi
log "minting ~$need fresh tokens (${mint_seconds}s at ~${mint_rate}/s; probe: ~$probe_rate/s)"
fresh_count=$(mint "$mint_seconds" "$work/fresh")
# The fresh case must not outrun its list (a repeat is a cache hit): it runs DURATION
# seconds, or less when the list would last less at 1.3 x the probe's rate.
fresh_duration=$DURATION
if [[ -z $FRESH_TOKENS ]] && (( probe_rate > 0 )); then
  fit=$(( fresh_count * 10 / (probe_rate * 13) ))
  if (( fit < fresh_duration )); then
    fresh_duration=$(( fit > 3 ? fit : 3 ))
  fi
fi
log "minted $fresh_count fresh tokens"

# --- measurements (one run, back to back) ----------------------------------------
log "/healthz (${WARMUP}s warm-up, ${DURATION}s)"
run_wrk warm-healthz "$WARMUP" "$broker/healthz"
run_wrk healthz "$DURATION" "$broker/healthz"
record healthz

log "/auth/verify, repeated token (${WARMUP}s warm-up, ${DURATION}s)"
repeated_args=("${verify_headers[@]}" -H "Authorization: Bearer $repeated_token")
run_wrk warm-repeated "$WARMUP" "$broker/auth/verify" "${repeated_args[@]}"
run_wrk repeated "$DURATION" "$broker/auth/verify" "${repeated_args[@]}"
record repeated

log "/auth/verify, fresh token per request (${fresh_duration}s)"
BENCH_TOKENS="$work/fresh" run_wrk fresh "$fresh_duration" "$broker/auth/verify" "${verify_headers[@]}"
record fresh
fresh_used=$(( R_requests < R_tokens ? R_requests : R_tokens ))
fresh_reused=$R_reused

# --- report ----------------------------------------------------------------------
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
r_repeated=$(ratio "${RPS[repeated]}" "${RPS[healthz]}")
r_fresh=$(ratio "${RPS[fresh]}" "${RPS[healthz]}")
verdict=$(awk -v r="$r_repeated" -v t="$TARGET" 'BEGIN { print (r >= t ? "PASS" : "FAIL") }')

echo
echo "token-broker forward-auth benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $CORES cores ($(uname -m)), load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "broker: $WORKERS workers, log level warn; wrk: $THREADS threads, $CONNECTIONS connections," \
  "${DURATION}s per case (fresh: ${fresh_duration}s) after ${WARMUP}s warm-up; loopback; wrk shares the cores with the broker"
echo
printf '%-34s %10s %9s %9s %14s %8s %7s\n' case 'req/s' 'p50 ms' 'p99 ms' 'broker CPU/req' non-2xx errors
for c in healthz repeated fresh; do
  case $c in
    healthz) label="GET /healthz" ;;
    repeated) label="/auth/verify, repeated token" ;;
    fresh) label="/auth/verify, fresh RS256 token" ;;
  esac
  printf '%-34s %10s %9s %9s %14s %8s %7s\n' "$label" "${RPS[$c]}" "$(ms "${P50[$c]}")" \
    "$(ms "${P99[$c]}")" "${CPU[$c]} us" "${NON2XX[$c]}" "${SOCKERR[$c]}"
done
echo
echo "fresh tokens: $fresh_count minted, $fresh_used used once, $fresh_reused requests reused a token (cache hits);" \
  "fresh case ran ${fresh_duration}s"
if (( fresh_reused > 0 )); then
  echo "WARNING: the token list ran out; the fresh figure includes $fresh_reused cache hits and is too high"
fi
echo "ratio repeated/healthz: $r_repeated   target >= $TARGET   $verdict"
echo "ratio fresh/healthz:    $r_fresh   (informational)"
echo "broker CPU per request (user+system, from /proc): a load-independent view of the same costs"
echo "script time: $(( $(date +%s) - started_at ))s"

for c in healthz repeated fresh; do
  if (( NON2XX[$c] > 0 || SOCKERR[$c] > RPS[$c] / 100 )); then
    die "$c: ${NON2XX[$c]} non-2xx answers, ${SOCKERR[$c]} socket errors (see $work)"
  fi
done
