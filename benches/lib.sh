# Helpers shared by the benchmark scripts (verify.sh, exchange.sh); sourced, not run.
# Before sourcing, the script sets BENCH_NAME (log prefix and work-directory name) and
# the knobs these functions read: THREADS, CONNECTIONS, BUILD, KEEP and the `run`
# array (the command prefix, e.g. `nice -n -10`); NEEDS_WRK=0 for a script without wrk. After sourcing it has $repo,
# $benches, $bin and $work, an EXIT trap that stops every process it started, and:
#   log, die                    messages on stderr (die keeps the work directory)
#   in_child CMD…               run CMD in the background and wait for it
#   alive PID, free_port
#   start_dev_idp TOML          dev IdP on a free port: sets idp_pid, idp_url
#   start_broker TOML_FILE URL  `serve` until URL/readyz answers 200: sets broker_pid
#   run_wrk NAME SECONDS URL [wrk args…]   one wrk run with wrk/report.lua (see there)
#   rate N US, ms US, ratio A B, median V…  figures for the report

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
benches=$repo/benches
cd "$repo"

log() { printf '[%s] %s\n' "$BENCH_NAME" "$*" >&2; }
die() { log "error: $*"; [[ -z ${work:-} ]] || KEEP=1; exit 1; }

# --- tools -----------------------------------------------------------------------
if [[ ${NEEDS_WRK:-1} == 1 ]] && ! command -v wrk >/dev/null 2>&1; then
  log "wrk not found; installing the Debian package"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  command -v apt-get >/dev/null 2>&1 || die "wrk is missing and apt-get is unavailable; install wrk"
  "${sudo_cmd[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq wrk >&2
fi
for tool in curl python3 awk sort; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done

if [[ $BUILD == 1 ]]; then
  log "cargo build --release"
  cargo build --release --quiet >&2 ||
    die "cargo build --release failed (BUILD=0 runs the existing target/release/token-broker)"
fi
bin=${BIN:-$repo/target/release/token-broker}
[[ -x $bin ]] || die "$bin not found (run cargo build --release)"

# --- processes and clean-up ------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/$BENCH_NAME.XXXXXX")
pids=()
child=
# in_child CMD…: runs CMD (wrk) in the background and waits for it, so a
# signal to this script interrupts the wait and the EXIT trap stops CMD at once.
in_child() {
  local rc=0
  "$@" &
  child=$!
  wait "$child" || rc=$?
  child=
  return "$rc"
}
cleanup() {
  local pid
  [[ -z $child ]] || kill -TERM "$child" 2>/dev/null || true
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
trap 'exit 130' INT TERM HUP

alive() { kill -0 "$1" 2>/dev/null; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_dev_idp TOML: the development IdP on a port of its choosing, configured by TOML.
start_dev_idp() {
  printf '%s\n' "$1" >"$work/idp.toml"
  "${run[@]}" "$bin" dev-idp --listen 127.0.0.1:0 --config "$work/idp.toml" \
    >"$work/idp.out" 2>"$work/idp.err" &
  idp_pid=$!
  pids+=("$idp_pid")
  idp_url=
  for _ in $(seq 100); do
    idp_url=$(sed -n 's/^dev IdP (development only) at \(http[^ ]*\).*/\1/p' "$work/idp.out")
    [[ -n $idp_url ]] && break
    alive "$idp_pid" || { cat "$work/idp.err" >&2; die "dev IdP exited"; }
    sleep 0.1
  done
  [[ -n $idp_url ]] || die "dev IdP did not start"
}

# start_broker TOML_FILE URL: `token-broker serve`, waiting (30 s at most) until it is ready.
start_broker() {
  local config=$1 url=$2 ready=0
  "${run[@]}" "$bin" serve --config "$config" >"$work/broker.out" 2>"$work/broker.err" &
  broker_pid=$!
  pids+=("$broker_pid")
  for _ in $(seq 150); do
    if [[ $(curl -s -o /dev/null -w '%{http_code}' "$url/readyz" || true) == 200 ]]; then
      ready=1
      break
    fi
    alive "$broker_pid" || { cat "$work/broker.err" >&2; die "broker exited"; }
    sleep 0.2
  done
  [[ $ready == 1 ]] || { cat "$work/broker.err" >&2; die "broker not ready after 30 s"; }
}

# start_under_callgrind CONFIG URL: `serve` as start_broker does, under callgrind with
# instrumentation off until the measured requests (start-up is not counted); each dump
# is its own file, $work/callgrind.<pid>.<n>. Valgrind starts slowly: up to 5 minutes.
start_under_callgrind() {
  command -v valgrind >/dev/null 2>&1 || die "valgrind is required (Debian: valgrind)"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/callgrind.%p" \
    "$bin" serve --config "$1" >"$work/broker.out" 2>"$work/broker.err" &
  broker_pid=$!
  pids+=("$broker_pid")
  for _ in $(seq 600); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$2/readyz" || true) == 200 ]] && return 0
    alive "$broker_pid" || { cat "$work/broker.err" >&2; die "broker exited"; }
    sleep 0.5
  done
  die "the broker under callgrind was not ready after 5 minutes"
}

# callgrind_per_request NAME N SEND...: runs SEND (a command that makes requests) with
# WARMUP_REQUESTS, counters zeroed, then with N; sets IR to the broker's instructions
# (every thread) per request of the N, from the dump named NAME.
callgrind_per_request() {
  local name=$1 n=$2 total
  shift 2
  callgrind_control -i on "$broker_pid" >/dev/null 2>&1
  "$@" "$WARMUP_REQUESTS" || die "$name failed under callgrind"
  callgrind_control -z "$broker_pid" >/dev/null 2>&1
  "$@" "$n" || die "$name failed under callgrind"
  callgrind_control -d "$name" "$broker_pid" >/dev/null 2>&1
  callgrind_control -i off "$broker_pid" >/dev/null 2>&1
  # Each dump is its own file (callgrind.<pid>.<n>), named by its trigger inside.
  total=$(grep -l -x "desc: Trigger: dump $name" "$work"/callgrind.*.* 2>/dev/null |
    xargs -r sed -n 's/^summary: //p' | head -1 || true)
  [[ -n $total ]] || die "no callgrind dump for $name (see $work)"
  IR=$(( total / n ))
}

# --- measuring -------------------------------------------------------------------
clk_tck=$(getconf CLK_TCK)
# CPU time (user + system, in clock ticks) the broker has used so far.
broker_ticks() { awk '{ print $14 + $15 }' "/proc/$broker_pid/stat"; }

# Sets CHILDREN_MS: the CPU time (user + system, in ms) of this script's children that
# have been waited for, from `times`' second line. Called as a command, not in $(…): a
# subshell would count only its own children.
children_ms() {
  times >"$work/times"
  CHILDREN_MS=$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); t += p[1] * 60 + p[2] }; printf "%d", t * 1000 }' "$work/times")
}

# run_wrk NAME SECONDS URL [wrk args…]: runs wrk with report.lua and sets R_<field> from
# its BENCH line, plus R_ticks (broker CPU ticks used during the run) and R_wrk_ms (the
# CPU wrk itself used: it shares the cores with the broker).
run_wrk() {
  local name=$1 seconds=$2 url=$3
  shift 3
  local before line kv wrk_before
  alive "$broker_pid" || die "the broker died (see $work/broker.err)"
  before=$(broker_ticks)
  children_ms
  wrk_before=$CHILDREN_MS
  in_child "${run[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${seconds}s" --timeout 5s -s "$benches/wrk/report.lua" \
    "$@" "$url" >"$work/$name.log" 2>&1 || { cat "$work/$name.log" >&2; die "wrk failed ($name)"; }
  R_ticks=$(( $(broker_ticks) - before ))
  children_ms
  R_wrk_ms=$(( CHILDREN_MS - wrk_before ))
  line=$(grep '^BENCH ' "$work/$name.log") || { cat "$work/$name.log" >&2; die "no BENCH line ($name)"; }
  for kv in ${line#BENCH }; do
    printf -v "R_${kv%%=*}" '%s' "${kv#*=}"
  done
  if (( R_non2xx > 0 )); then
    die "$name: $R_non2xx non-2xx answers (see $work/$name.log and $work/broker.err)"
  fi
  if (( R_sockerr * 100 > R_requests )); then
    die "$name: $R_sockerr socket errors in $R_requests requests (see $work/$name.log)"
  fi
}

rate() { awk -v n="$1" -v us="$2" 'BEGIN { printf "%.0f", (us > 0 ? n / (us / 1e6) : 0) }'; }
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
# median V…: the median of the values (robust to one disturbed round).
median() {
  printf '%s\n' "$@" | sort -n |
    awk '{ v[NR] = $1 } END { printf "%.2f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
