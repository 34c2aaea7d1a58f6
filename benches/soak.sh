#!/usr/bin/env bash
# Soak with faults: two brokers (`serve`) on one Redis behind the dev IdP, an MCP server
# behind their gateway, a concurrent mix of OAuth and MCP traffic over both brokers on
# loopback for SOAK_SECONDS, and faults on a schedule — Redis paused (SIGSTOP) and
# killed (SIGKILL, restarted on its append-only file), the dev IdP slowed, failing with
# 503 and 429 (Retry-After), timing out past upstream.timeout, one broker killed with
# SIGKILL and restarted. Then it checks that nothing acknowledged was lost, that
# refusals were documented ones inside the fault windows, recovery after each fault,
# memory and descriptors, and prints the report (JSON beside it: SOAK_REPORT).
# benches/soak/driver.py does the traffic, the faults and the checks; see the "Soak"
# section of benches/README.md for what is checked and the figures of a run.
#
# Usage: bash benches/soak.sh               (10 minutes after a release build)
#        SOAK_SECONDS=90 BUILD=0 BIN=target/debug/token-broker bash benches/soak.sh   (CI)
# Knobs (environment):
#   SOAK_SECONDS=600   length of the run (at least 60)
#   THREADS=8          client threads of the driver
#   SETTLE=5           seconds after a fault window in which refusals still count as its own
#   RSS_GROWTH_MB=40   largest RSS growth of a broker from after the warm-up to the end
#   FD_GROWTH=20       largest growth of a broker's open descriptors over the same time
#   SOAK_REPORT=target/soak-report.json   where the JSON report goes
#   BUILD=1 (0: use BIN or target/release/token-broker)  BIN=path  KEEP=0 (1: keep logs)
set -euo pipefail

SOAK_SECONDS=${SOAK_SECONDS:-600}
THREADS=${THREADS:-8}
SETTLE=${SETTLE:-5}
RSS_GROWTH_MB=${RSS_GROWTH_MB:-40}
FD_GROWTH=${FD_GROWTH:-20}
BUILD=${BUILD:-1}
KEEP=${KEEP:-0}
NEEDS_WRK=0
run=()

BENCH_NAME=soak
# shellcheck source=benches/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

(( SOAK_SECONDS >= 60 )) || die "SOAK_SECONDS must be at least 60"
bash "$repo/scripts/ensure-redis.sh" >&2
redis_server=$(command -v redis-server || echo /usr/bin/redis-server)
report=${SOAK_REPORT:-$repo/target/soak-report.json}
mkdir -p "$(dirname "$report")"

# The dev IdP: 1 h tokens, so no provider token expires during a run (a provider
# refresh cut off by a fault would meet the dev IdP's strict refresh-token reuse
# detection: that is the provider's rule, not the broker's, and outside this soak).
start_dev_idp 'access_token_ttl = "1h"'

# The MCP server behind the gateway.
mcp_port=$(free_port)
python3 "$benches/soak/driver.py" mcp "$mcp_port" >"$work/mcp.out" 2>"$work/mcp.err" &
pids+=("$!")
for _ in $(seq 100); do
  [[ $(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d '{"jsonrpc":"2.0","id":1,"method":"ping"}' "http://127.0.0.1:$mcp_port/mcp" || true) == 200 ]] && break
  sleep 0.1
done

# Ports for Redis and the two replicas, distinct.
declare -A taken=()
pick() {
  local p
  while :; do
    p=$(free_port)
    [[ -z ${taken[$p]:-} && $p != "$mcp_port" ]] && { taken[$p]=1; echo "$p"; return; }
  done
}
redis_port=$(pick)
port_a=$(pick)
port_b=$(pick)
broker_a=http://127.0.0.1:$port_a
broker_b=http://127.0.0.1:$port_b
mkdir -p "$work/redis"

store_key=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
caller_id=soak-notes-mcp
caller_secret=soak-notes-mcp-secret-0123456789
audience=https://notes.example/api
upstream_timeout=2
reuse_grace=10
# replica_config PORT: one replica's configuration; both answer as broker a's URL (the
# issuer a load balancer would give them) and share Redis, its keys and the cookie key.
replica_config() {
  cat <<EOF
[server]
listen = "127.0.0.1:$1"
public_url = "$broker_a"
workers = 2
shutdown_timeout = "2s"

[upstream]
issuer = "$idp_url"
client_id = "token-broker"
client_secret = "token-broker-secret"
timeout = "${upstream_timeout}s"

[consent]
cookie_key = "the soak's cookie key, shared by both replicas"

[store]
backend = "redis"
url = "redis://127.0.0.1:$redis_port/"
key_prefix = "soak:"

[store.encryption]
key_id = "k1"
keys = { k1 = "$store_key" }

# Every login registers a client from 127.0.0.1.
[registration]
rate_limit_per_minute = 100000
rate_limit_burst = 10000

[refresh]
reuse_grace = "${reuse_grace}s"

# Small caches, so that they are full well before the end and their bounds, not the
# length of the run, decide the memory they take.
[verify]
cache_capacity = 2000

[exchange]
cache_capacity = 2000

[scope_cache]
capacity = 2000

[[resources]]
uri = "$broker_a/mcp"
required_scopes = ["notes:read"]
scopes_supported = ["notes:read", "notes:write"]

# Counted (in Redis), with budgets the soak does not reach (the final checks present
# hundreds of revoked tokens: those count as anonymous requests from 127.0.0.1).
[resources.rate_limit]
broker_token = 1000000
anonymous = 1000000

[[resources.tools]]
name = "echo"
scopes = ["notes:read"]

[[gateway]]
path = "/mcp"
upstream = "http://127.0.0.1:$mcp_port/mcp"
timeout = "10s"

[[exchange.audiences]]
audience = "$audience"
scopes = ["notes:read"]

[[exchange.clients]]
client_id = "$caller_id"
client_secret = "$caller_secret"
audiences = ["$audience"]

# The audit trail too: a failed soak's report names the client, and its rotations,
# reuses and revocations are in the brokers' logs with their times.
[log]
level = "warn,audit=info"
EOF
}
replica_config "$port_a" >"$work/broker-a.toml"
replica_config "$port_b" >"$work/broker-b.toml"
"$bin" check-config --config "$work/broker-a.toml" >/dev/null ||
  die "the replica configuration is refused: $("$bin" check-config --config "$work/broker-a.toml" 2>&1)"

build_line=$("$bin" --version 2>/dev/null || echo '?')
cat >"$work/soak.json" <<EOF
{
  "bin": "$bin", "build_line": "$build_line", "work": "$work",
  "redis_server": "$redis_server", "redis_port": $redis_port, "redis_dir": "$work/redis",
  "broker_a": "$broker_a", "broker_b": "$broker_b",
  "config_a": "$work/broker-a.toml", "config_b": "$work/broker-b.toml",
  "idp": "$idp_url", "mcp": "http://127.0.0.1:$mcp_port/mcp",
  "caller": ["$caller_id", "$caller_secret"], "audience": "$audience",
  "duration_s": $SOAK_SECONDS, "threads": $THREADS, "settle_s": $SETTLE,
  "warmup_s": $(( SOAK_SECONDS >= 300 ? 30 : 8 )), "tail_s": $(( SOAK_SECONDS >= 300 ? 30 : 8 )),
  "upstream_timeout_s": $upstream_timeout, "reuse_grace_s": $reuse_grace, "code_ttl_s": 60,
  "rss_growth_mb": $RSS_GROWTH_MB, "fd_growth": $FD_GROWTH,
  "report_json": "$report"
}
EOF

log "soak for ${SOAK_SECONDS}s with $bin ($build_line)"
rc=0
in_child python3 "$benches/soak/driver.py" run "$work/soak.json" || rc=$?
case $rc in
  0) log "passed; JSON report: $report" ;;
  1) KEEP=1; log "FAILED; JSON report: $report; logs: $work" ;;
  *) KEEP=1; log "the soak could not run (exit $rc); logs: $work" ;;
esac
exit "$rc"
