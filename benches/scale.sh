#!/usr/bin/env bash
# Memory and CPU at scale (issue #22), in one run against a release build on 127.0.0.1:
#   memory  a broker on the memory store filled to COUNT live login sessions, COUNT
#           grants and COUNT cached exchanges: RSS idle, after each fill, growth per item;
#   start   a sqlite store holding COUNT grants and COUNT registered clients: the time
#           from spawning `serve` to /readyz answering 200 (median of STARTS starts);
#   cpu     broker CPU per request (from /proc, around wrk runs) of /healthz, a
#           repeated-token /auth/verify, a token-exchange cache hit and a gateway
#           tools/call (to the soak's Python MCP server, and to nginx answering at once),
#           and the ratios to /healthz; beside them /healthz sent verify's request headers
#           (its 530-byte Authorization), which it ignores: what the request alone costs;
#   instr   the same four requests' instructions per request under callgrind;
#   syscalls the same requests' system calls per request, by name (strace -c), one
#           after another over one connection (not part of the default run).
# Informational: exit 0 whatever the figures, non-zero when something broke.
#
# Usage: bash benches/scale.sh          (see benches/README.md "Memory and CPU at scale")
# Knobs (environment):
#   PARTS="memory start cpu instr"   which parts run (also: syscalls)
#   COUNT=100000     sessions, grants, exchanges (and the sqlite store's grants and clients)
#   STARTS=7         starts timed for `start`
#   IDP_ALG=EdDSA    the dev IdP's signing algorithm (RS256 tokens are about 300 bytes
#                    longer and cost far more to mint)
#   DURATION=3 ROUNDS=3 THREADS=2 CONNECTIONS=64   the wrk runs of `cpu`
#   REQUESTS=2000 WARMUP_REQUESTS=300              the callgrind runs of `instr`
#   MEMORY_WRAP=""   a command the memory part's broker runs under, e.g.
#                    "heaptrack -o /tmp/broker" (RSS then includes the tool's own)
#   BUILD=1 (0: use the existing target/release/token-broker)  BIN=…  KEEP=0
#   FLOOR=0          1: also the floor cases (`/floor/*`), which only the scratch build
#                    of `benches/floor.sh` serves: run that script, not this knob
#   PERF=0           1: `perf record -e cpu-clock` samples the broker through each
#                    case's first timed run, kept as $work/perf.<case> (implies KEEP=1;
#                    read with `perf report -i …`): where the real CPU goes, kernel too;
#                    PERF_GRAPH="--call-graph dwarf,8192 -F 999" for call stacks (the
#                    release build has no frame pointers)
set -euo pipefail

started_at=$(date +%s)
PARTS=${PARTS:-memory start cpu instr}
COUNT=${COUNT:-100000}
STARTS=${STARTS:-7}
IDP_ALG=${IDP_ALG:-EdDSA}
DURATION=${DURATION:-3}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
REQUESTS=${REQUESTS:-2000}
WARMUP_REQUESTS=${WARMUP_REQUESTS:-300}
BUILD=${BUILD:-1}
KEEP=${KEEP:-0}
PERF=${PERF:-0}
FLOOR=${FLOOR:-0}
(( PERF == 0 )) || KEEP=1
run=()

BENCH_NAME=scale-bench
# shellcheck source=benches/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
db_dir=
# lib.sh's clean-up, and the sqlite store's directory on tmpfs.
trap 'cleanup; [[ -z $db_dir ]] || rm -rf "$db_dir"' EXIT
part() { [[ " $PARTS " == *" $1 "* ]]; }
fill() { python3 "$benches/scale/fill.py" "$@"; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
per_item() { awk -v a="$1" -v b="$2" -v n="$COUNT" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }'; }
stop_broker() {
  kill -TERM "$broker_pid" 2>/dev/null || true
  wait "$broker_pid" 2>/dev/null || true
}

start_dev_idp "signing_alg = \"$IDP_ALG\"
access_token_ttl = \"2h\""

# broker_toml PORT STORE-SECTION EXTRA: a broker with one resource for logins and
# grants (/mcp), one whose forward-auth exchanges (/api), a machine client and an
# exchange caller.
machine=scale-machine
machine_secret=scale-machine-secret-0123456789
caller=scale-caller
caller_secret=scale-caller-secret-0123456789
audience=https://notes.example/api
redirect=http://127.0.0.1:9/callback
broker_toml() {
  local port=$1 url=http://127.0.0.1:$1
  cat <<EOF
[server]
listen = "127.0.0.1:$port"
public_url = "$url"
shutdown_timeout = "2s"

[upstream]
issuer = "$idp_url"
client_id = "token-broker"
client_secret = "token-broker-secret"

# Room for the fill: a login session lives an hour, and the bounds and caches hold
# more than COUNT, so that nothing is refused or evicted while the figures are taken.
[sessions]
ttl = "1h"
max_sessions = $(( COUNT * 2 ))

[verify]
cache_capacity = $(( COUNT * 2 ))

[exchange]
cache_capacity = $(( COUNT * 2 ))

[registration]
rate_limit_per_minute = 100000
rate_limit_burst = 100000

[[resources]]
uri = "$url/mcp"
required_scopes = ["notes:read"]

[resources.rate_limit]
enabled = false

[[resources]]
uri = "$url/api"
required_scopes = ["notes:read"]
exchange_audience = "$audience"

[resources.rate_limit]
enabled = false

[[exchange.audiences]]
audience = "$audience"
scopes = ["notes:read"]

[[exchange.clients]]
client_id = "$caller"
client_secret = "$caller_secret"
audiences = ["$audience"]

[[clients]]
client_id = "$machine"
client_secret = "$machine_secret"
grant_types = ["client_credentials", "authorization_code"]
redirect_uris = ["$redirect"]
resources = ["$url/mcp"]
scopes = ["notes:read"]

$2

[log]
level = "warn"
${3:-}
EOF
}
urlencode() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
machine_basic="Authorization: Basic $(printf '%s:%s' "$machine" "$machine_secret" | base64 -w0)"
grant_body="grant_type=client_credentials&scope=notes%3Aread"

echo "token-broker scale benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "machine: $(nproc) cores ($(uname -m)), load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "release build; dev IdP $IDP_ALG; broker workers: one per core, log level warn; 127.0.0.1"

# --- memory ---------------------------------------------------------------------------
if part memory; then
  port=$(free_port)
  broker=http://127.0.0.1:$port
  broker_toml "$port" '[store]
backend = "memory"' >"$work/memory.toml"
  read -ra run <<<"${MEMORY_WRAP:-}"
  start_broker "$work/memory.toml" "$broker"
  run=()
  sleep 1
  rss_idle=$(rss_kb "$broker_pid")
  log "memory store at $broker: idle $(mb "$rss_idle") MB; $COUNT authorization requests"

  authorize="$broker/oauth/authorize?response_type=code&client_id=$machine"
  authorize+="&redirect_uri=$(urlencode "$redirect")&scope=notes%3Aread&state=af0ifjsldkj"
  authorize+="&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
  authorize+="&resource=$(urlencode "$broker/mcp")"
  sessions_took=$(fill get "$authorize" "$COUNT" 200)
  rss_sessions=$(rss_kb "$broker_pid")

  log "$COUNT client-credentials grants"
  grants_took=$(fill post "$broker/oauth/token" "$COUNT" 200 \
    "$grant_body&resource=$(urlencode "$broker/mcp")" "$machine_basic")
  rss_grants=$(rss_kb "$broker_pid")

  log "minting $COUNT subject tokens at the dev IdP ($IDP_ALG)"
  minted=$(fill mint "$idp_url/token" "$COUNT" "$broker/api" "$work/subjects")
  log "$COUNT forward-auth checks at $broker/api, each exchanging a new subject ($minted)"
  exchanges_took=$(fill verify "$broker/auth/verify" 200 "$work/subjects" \
    "X-Original-URI: /api" "X-Original-Method: GET")
  rss_exchanges=$(rss_kb "$broker_pid")
  idp_exchanges=$(curl -sf "$idp_url/_dev/calls" | python3 -c '
import json, sys
calls = json.load(sys.stdin)["calls"]
print(calls.get("token:urn:ietf:params:oauth:grant-type:token-exchange", {}).get("count", 0))')
  (( idp_exchanges == COUNT )) ||
    die "$idp_exchanges exchanges reached the dev IdP, not $COUNT: the cache did not fill as intended"
  stop_broker
  echo
  echo "memory store, RSS (VmRSS):"
  printf '  %-46s %8s MB\n' "idle (ready, nothing stored)" "$(mb "$rss_idle")"
  printf '  %-46s %8s MB  %+7.1f MB  %5s B/item  (%s)\n' "+ $COUNT login sessions (GET /oauth/authorize)" \
    "$(mb "$rss_sessions")" "$(mb $(( rss_sessions - rss_idle )))" "$(per_item "$rss_idle" "$rss_sessions")" "$sessions_took"
  printf '  %-46s %8s MB  %+7.1f MB  %5s B/item  (%s)\n' "+ $COUNT grants (client credentials)" \
    "$(mb "$rss_grants")" "$(mb $(( rss_grants - rss_sessions )))" "$(per_item "$rss_sessions" "$rss_grants")" "$grants_took"
  printf '  %-46s %8s MB  %+7.1f MB  %5s B/item  (%s)\n' "+ $COUNT cached exchanges (forward-auth)" \
    "$(mb "$rss_exchanges")" "$(mb $(( rss_exchanges - rss_grants )))" "$(per_item "$rss_grants" "$rss_exchanges")" "$exchanges_took"
  echo "  all three over idle: $(mb $(( rss_exchanges - rss_idle ))) MB   targets: idle <= 12 MB, growth <= 60 MB"
  echo "  subject tokens: $minted (bytes = mean length); $idp_exchanges exchanges reached the dev IdP"
fi

# --- start ----------------------------------------------------------------------------
if part start; then
  # On tmpfs: the store is filled through the broker's own API, and synchronous=FULL
  # on a disk would make the fill take as many fsyncs as rows.
  db_dir=$(mktemp -d /dev/shm/scale-bench.XXXXXX)
  port=$(free_port)
  broker=http://127.0.0.1:$port
  broker_toml "$port" "[store]
backend = \"sqlite\"
path = \"$db_dir/broker.db\"" >"$work/sqlite.toml"
  start_broker "$work/sqlite.toml" "$broker"
  log "sqlite store at $broker ($db_dir): $COUNT grants, $COUNT registrations"
  sqlite_grants_took=$(fill post "$broker/oauth/token" "$COUNT" 200 \
    "$grant_body&resource=$(urlencode "$broker/mcp")" "$machine_basic")
  sqlite_clients_took=$(fill register "$broker/oauth/register" "$COUNT")
  stop_broker
  db_bytes=$(du -cb "$db_dir"/broker.db* | tail -1 | cut -f1)
  log "$STARTS starts of a broker on it"
  mapfile -t start_ms < <(FILL_LOG=$work/starts.log fill ready "$broker/readyz" "$STARTS" "$bin" serve --config "$work/sqlite.toml")
  (( ${#start_ms[@]} == STARTS )) || { tail -n 20 "$work/starts.log" >&2; die "the timed starts failed"; }
  rm -rf "$db_dir"
  db_dir=
  echo
  echo "sqlite store with $COUNT grants and $COUNT registered clients ($(( db_bytes / 1048576 )) MB on tmpfs;" \
    "filled in ${sqlite_grants_took#*seconds=} s + ${sqlite_clients_took#*seconds=} s):"
  echo "  spawn to /readyz 200: median $(median "${start_ms[@]}") ms of $STARTS starts (${start_ms[*]} ms)   target < 200 ms"
fi

# --- cpu and instr: one broker with every measured path --------------------------------
if part cpu || part instr || part syscalls; then
  mcp_port=$(free_port)
  python3 "$benches/soak/driver.py" mcp "$mcp_port" >"$work/mcp.out" 2>"$work/mcp.err" &
  pids+=("$!")
  # The fast upstream: nginx answering every tool call with one fixed result, so the
  # gateway runs at the rate of the other cases (batched like them), and its CPU per
  # request is the hop's, not the wake-ups a slow server's pace forces on it.
  bash "$repo/scripts/ensure-nginx.sh" >&2 || die "nginx is required (scripts/ensure-nginx.sh)"
  fast_port=$(free_port)
  export TOKEN_BROKER_FLOOR_UPSTREAM="http://127.0.0.1:$fast_port/mcp"
  mkdir -p "$work/nginx"
  cat >"$work/nginx/nginx.conf" <<NGINX
daemon off;
master_process off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    keepalive_requests 10000000;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    server {
        listen 127.0.0.1:$fast_port;
        location = /mcp {
            default_type application/json;
            return 200 '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"1"}],"isError":false}}';
        }
    }
}
NGINX
  /usr/sbin/nginx -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" \
    </dev/null >/dev/null 2>&1 &
  pids+=("$!")
  port=$(free_port)
  broker=http://127.0.0.1:$port
  # gateway PATH UPSTREAM: a resource at PATH with an exchange and a tool rule, and the
  # gateway in front of UPSTREAM for it.
  gateway() {
    cat <<TOML
[[resources]]
uri = "$broker$1"
required_scopes = ["notes:read"]
exchange_audience = "$audience"

[resources.rate_limit]
enabled = false

[[resources.tools]]
name = "echo"
scopes = ["notes:read"]

[[gateway]]
path = "$1"
upstream = "$2"
timeout = "10s"
TOML
  }
  broker_toml "$port" '[store]
backend = "memory"' "$(gateway /gw "http://127.0.0.1:$mcp_port/mcp")

$(gateway /gwf "http://127.0.0.1:$fast_port/mcp")" >"$work/cpu.toml"
  # The cases' requests: curl arguments, checked once before measuring.
  token_for() {
    curl -sf -u demo-service:demo-service-secret -d grant_type=client_credentials \
      -d scope=notes:read --data-urlencode "resource=$1" "$idp_url/token" |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
  }
  verify_token=$(token_for "$broker/mcp") || die "no token from the dev IdP"
  gw_token=$(token_for "$broker/gw") || die "no token from the dev IdP"
  gwf_token=$(token_for "$broker/gwf") || die "no token from the dev IdP"
  subject=$(token_for "$broker/mcp") || die "no token from the dev IdP"
  exchange_form="grant_type=$(urlencode urn:ietf:params:oauth:grant-type:token-exchange)"
  exchange_form+="&subject_token_type=$(urlencode urn:ietf:params:oauth:token-type:access_token)"
  exchange_form+="&audience=$(urlencode "$audience")&subject_token=$subject"
  caller_basic="Authorization: Basic $(printf '%s:%s' "$caller" "$caller_secret" | base64 -w0)"
  # A token the broker issued (a machine client's grant), as MCP clients present: its
  # verification also reads the grant's standing. Minted after each broker starts (the
  # memory store's signing key is the process's own).
  broker_token() {
    curl -sf -H "$machine_basic" --data-raw "$grant_body&resource=$(urlencode "$broker/mcp")" \
      "$broker/oauth/token" | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
  }
  call_body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"n":1}}}'
  cases=(healthz healthz_token verify verify_grant exchange gateway gateway_fast)
  # The floors (benches/floor.sh) each beside its case.
  (( ! FLOOR )) || cases=(healthz healthz_token floor_verify_token floor_verify verify
    verify_grant floor_exchange exchange floor_hop floor_gateway gateway_fast)
  declare -A LABEL=(
    [healthz]="GET /healthz"
    [healthz_token]="GET /healthz, verify's headers"
    [verify]="GET /auth/verify, repeated token"
    [verify_grant]="GET /auth/verify, broker's token"
    [exchange]="token exchange, cache hit"
    [gateway]="gateway tools/call (Python server)"
    [gateway_fast]="gateway tools/call (nginx answer)"
    [floor_verify_token]="floor: verify, keyed by the token"
    [floor_verify]="floor: verify, keyed by its SHA-256"
    [floor_exchange]="floor: exchange hit"
    [floor_hop]="floor: hop, no check"
    [floor_gateway]="floor: gateway, SHA-256 lookup + hop"
  )
  declare -A TARGET=([verify]=1.25 [verify_grant]=1.25 [exchange]=1.6 [gateway]=3 [gateway_fast]=3
    [floor_verify_token]=1.25 [floor_verify]=1.25 [floor_exchange]=1.6 [floor_hop]=3
    [floor_gateway]=3)
fi

if part cpu; then
  start_broker "$work/cpu.toml" "$broker"
  grant_token=$(broker_token) || die "no token from the broker (see $work/broker.err)"
  log "broker for the CPU cases at $broker (MCP server on $mcp_port); tokens: the IdP's" \
    "${#verify_token} bytes, the broker's ${#grant_token}"
  for c in "${cases[@]}"; do
    case $c in
      healthz) curl -sf "$broker/healthz" >/dev/null ;;
      healthz_token) curl -sf -H "X-Original-URI: /mcp" -H "Authorization: Bearer $verify_token" \
        "$broker/healthz" >/dev/null ;;
      verify) curl -sf -H "X-Original-URI: /mcp" -H "Authorization: Bearer $verify_token" \
        "$broker/auth/verify" >/dev/null ;;
      verify_grant) curl -sf -H "X-Original-URI: /mcp" -H "Authorization: Bearer $grant_token" \
        "$broker/auth/verify" >/dev/null ;;
      exchange) curl -sf -H "$caller_basic" --data-raw "$exchange_form" "$broker/oauth/token" >/dev/null ;;
      gateway) curl -sf -H "Authorization: Bearer $gw_token" -H 'Content-Type: application/json' \
        -H 'Accept: application/json, text/event-stream' -d "$call_body" "$broker/gw" | grep -Eq '"isError": *false' ;;
      gateway_fast) curl -sf -H "Authorization: Bearer $gwf_token" -H 'Content-Type: application/json' \
        -H 'Accept: application/json, text/event-stream' -d "$call_body" "$broker/gwf" | grep -Eq '"isError": *false' ;;
      floor_verify) curl -sf -H "X-Original-URI: /mcp" -H "Authorization: Bearer $verify_token" \
        "$broker/floor/verify" >/dev/null ;;
      floor_verify_token) curl -sf -H "X-Original-URI: /mcp" -H "Authorization: Bearer $verify_token" \
        "$broker/floor/verify-token" >/dev/null ;;
      floor_exchange) curl -sf -H "$caller_basic" --data-raw "$exchange_form" "$broker/floor/exchange" |
        grep -q access_token ;;
      floor_hop) curl -sf -d "$call_body" "$broker/floor/hop" | grep -Eq '"isError": *false' ;;
      floor_gateway) curl -sf -H "Authorization: Bearer $gwf_token" -d "$call_body" \
        "$broker/floor/gateway" | grep -Eq '"isError": *false' ;;
    esac || die "the $c request failed (see $work/broker.err)"
  done
  cat >"$work/jsonrpc.lua" <<LUA
dofile("$benches/wrk/report.lua")
wrk.method = "POST"
wrk.body = '$call_body'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
LUA
  # wrk_case CASE NAME SECONDS
  wrk_case() {
    case $1 in
      healthz) run_wrk "$2" "$3" "$broker/healthz" ;;
      healthz_token) run_wrk "$2" "$3" "$broker/healthz" -H "X-Original-URI: /mcp" \
        -H "Authorization: Bearer $verify_token" ;;
      verify) run_wrk "$2" "$3" "$broker/auth/verify" -H "X-Original-URI: /mcp" \
        -H "Authorization: Bearer $verify_token" ;;
      verify_grant) run_wrk "$2" "$3" "$broker/auth/verify" -H "X-Original-URI: /mcp" \
        -H "Authorization: Bearer $grant_token" ;;
      exchange) BENCH_BODY=$exchange_form run_wrk "$2" "$3" "$broker/oauth/token" -H "$caller_basic" ;;
      gateway) run_wrk "$2" "$3" "$broker/gw" -s "$work/jsonrpc.lua" -H "Authorization: Bearer $gw_token" ;;
      gateway_fast) run_wrk "$2" "$3" "$broker/gwf" -s "$work/jsonrpc.lua" -H "Authorization: Bearer $gwf_token" ;;
      floor_verify) run_wrk "$2" "$3" "$broker/floor/verify" -H "X-Original-URI: /mcp" \
        -H "Authorization: Bearer $verify_token" ;;
      floor_verify_token) run_wrk "$2" "$3" "$broker/floor/verify-token" -H "X-Original-URI: /mcp" \
        -H "Authorization: Bearer $verify_token" ;;
      floor_exchange) BENCH_BODY=$exchange_form run_wrk "$2" "$3" "$broker/floor/exchange" -H "$caller_basic" ;;
      floor_hop) run_wrk "$2" "$3" "$broker/floor/hop" -s "$work/jsonrpc.lua" ;;
      floor_gateway) run_wrk "$2" "$3" "$broker/floor/gateway" -s "$work/jsonrpc.lua" \
        -H "Authorization: Bearer $gwf_token" ;;
    esac
  }
  declare -A REQ TICKS
  for c in "${cases[@]}"; do wrk_case "$c" "warm-$c" 1; done
  for round in $(seq "$ROUNDS"); do
    log "cpu round $round/$ROUNDS: ${cases[*]}, ${DURATION}s each"
    order=("${cases[@]}")
    (( round % 2 )) || order=($(printf '%s\n' "${cases[@]}" | tac))
    for c in "${order[@]}"; do
      sampler=
      if (( PERF && round == 1 )); then
        perf record -q -e cpu-clock -F 4999 ${PERF_GRAPH:--g} -p "$broker_pid" -o "$work/perf.$c" \
          -- sleep "$DURATION" >/dev/null 2>&1 &
        sampler=$!
      fi
      wrk_case "$c" "$c.$round" "$DURATION"
      [[ -z $sampler ]] || wait "$sampler" || true
      REQ[$c]=$(( ${REQ[$c]:-0} + R_requests ))
      TICKS[$c]=$(( ${TICKS[$c]:-0} + R_ticks ))
    done
  done
  stop_broker
  echo
  echo "broker CPU per request (user + system from /proc around wrk; $ROUNDS rounds of ${DURATION}s," \
    "wrk $THREADS threads $CONNECTIONS connections on the same cores — noisy on a shared machine):"
  per_req() { awk -v t="$1" -v hz="$clk_tck" -v n="$2" 'BEGIN { printf "%.1f", (n > 0 ? t / hz * 1e6 / n : 0) }'; }
  base=$(per_req "${TICKS[healthz]}" "${REQ[healthz]}")
  for c in "${cases[@]}"; do
    us=$(per_req "${TICKS[$c]}" "${REQ[$c]}")
    line=$(printf '  %-36s %9d req %8s us' "${LABEL[$c]}" "${REQ[$c]}" "$us")
    case $c in
      healthz) ;;
      healthz_token) line+=$(printf '   %5sx  (the request alone, no check)' "$(ratio "$us" "$base")") ;;
      *) line+=$(printf '   %5sx  target <= %sx' "$(ratio "$us" "$base")" "${TARGET[$c]}") ;;
    esac
    echo "$line"
  done
fi

# instr NAME N: N requests of case NAME, one after another over one connection.
send_case() {
  python3 - "$port" "$1" "$2" "$verify_token" "$gw_token" "$exchange_form" "$caller_basic" "$call_body" "$gwf_token" "$grant_token" <<'PY'
import http.client, sys
port, case, n, verify_token, gw_token, form, basic, body, gwf_token, grant_token = sys.argv[1:]
conn = http.client.HTTPConnection("127.0.0.1", int(port))
name, _, value = basic.partition(": ")
requests = {
    "healthz": ("GET", "/healthz", None, {}),
    "healthz_token": ("GET", "/healthz", None,
                      {"X-Original-URI": "/mcp", "Authorization": "Bearer " + verify_token}),
    "verify": ("GET", "/auth/verify", None,
               {"X-Original-URI": "/mcp", "Authorization": "Bearer " + verify_token}),
    "verify_grant": ("GET", "/auth/verify", None,
                     {"X-Original-URI": "/mcp", "Authorization": "Bearer " + grant_token}),
    "exchange": ("POST", "/oauth/token", form,
                 {"Content-Type": "application/x-www-form-urlencoded", name: value}),
    "gateway": ("POST", "/gw", body,
                {"Authorization": "Bearer " + gw_token, "Content-Type": "application/json",
                 "Accept": "application/json, text/event-stream"}),
    "gateway_fast": ("POST", "/gwf", body,
                     {"Authorization": "Bearer " + gwf_token, "Content-Type": "application/json",
                      "Accept": "application/json, text/event-stream"}),
    # The floors (benches/floor.sh): only its scratch build serves them.
    "floor_verify": ("GET", "/floor/verify", None,
                     {"X-Original-URI": "/mcp", "Authorization": "Bearer " + verify_token}),
    "floor_verify_token": ("GET", "/floor/verify-token", None,
                           {"X-Original-URI": "/mcp", "Authorization": "Bearer " + verify_token}),
    "floor_exchange": ("POST", "/floor/exchange", form,
                       {"Content-Type": "application/x-www-form-urlencoded", name: value}),
    "floor_hop": ("POST", "/floor/hop", body, {"Content-Type": "application/json"}),
    "floor_gateway": ("POST", "/floor/gateway", body,
                      {"Authorization": "Bearer " + gwf_token, "Content-Type": "application/json"}),
}
method, path, data, headers = requests[case]
for _ in range(int(n)):
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        sys.exit(f"{case}: {response.status}")
PY
}
if part instr; then
  start_under_callgrind "$work/cpu.toml" "$broker"
  grant_token=$(broker_token) || die "no token from the broker (see $work/broker.err)"
  log "broker under callgrind: $REQUESTS requests of each case after $WARMUP_REQUESTS"
  declare -A INSTR
  for c in "${cases[@]}"; do
    callgrind_per_request "$c" "$REQUESTS" send_case "$c"
    INSTR[$c]=$IR
  done
  stop_broker
  echo
  echo "instructions per request under callgrind (broker process, every thread; $REQUESTS sequential requests" \
    "after $WARMUP_REQUESTS; stable whatever the load):"
  for c in "${cases[@]}"; do
    line=$(printf '  %-36s %9d' "${LABEL[$c]}" "${INSTR[$c]}")
    [[ $c == healthz ]] || line+=$(printf '   %5sx' "$(ratio "${INSTR[$c]}" "${INSTR[healthz]}")")
    echo "$line"
  done
fi

if part syscalls; then
  command -v strace >/dev/null 2>&1 || die "strace is required (Debian: strace)"
  start_broker "$work/cpu.toml" "$broker"
  grant_token=$(broker_token) || die "no token from the broker (see $work/broker.err)"
  log "broker's system calls: $REQUESTS requests of each case after $WARMUP_REQUESTS"
  echo
  echo "system calls per request (strace -c -f on the broker, $REQUESTS sequential requests over" \
    "one connection after $WARMUP_REQUESTS: no batching, so every request wakes the broker):"
  for c in "${cases[@]}"; do
    send_case "$c" "$WARMUP_REQUESTS" || die "$c failed before strace"
    strace -c -f -q -p "$broker_pid" -o "$work/strace.$c" &
    tracer=$!
    sleep 1
    send_case "$c" "$REQUESTS" || die "$c failed under strace"
    kill -INT "$tracer"
    wait "$tracer" || true
    # strace -c: "% time seconds usecs/call calls errors syscall"; errors may be empty.
    awk -v n="$REQUESTS" -v label="${LABEL[$c]}" '
      $1 ~ /^[0-9.]+$/ && NF >= 5 { calls[$NF] = $4; errs[$NF] = (NF == 6 ? $5 : 0) }
      END {
        line = sprintf("  %-36s %5.1f:", label, calls["total"] / n)
        for (s in calls) if (s != "total" && calls[s] / n >= 0.05) line = line sprintf(" %s %.2f", s, calls[s] / n) (errs[s] > 0 ? sprintf(" (%.2f failed)", errs[s] / n) : "")
        print line
      }' "$work/strace.$c"
  done
  stop_broker
fi

echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg); script time: $(( $(date +%s) - started_at ))s"
