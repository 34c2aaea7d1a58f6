#!/usr/bin/env bash
# Makes sure `redis-server` is installed, built with TLS, for the tests of the Redis
# store (src/store/redis/tests/, tests/it/redis_tls.rs). Each test module starts its
# own redis-server on a free loopback port (TLS ones with certificates the test makes)
# and stops it when done; the system service is never started. Idempotent.
set -euo pipefail

find_redis() {
    command -v redis-server 2>/dev/null \
        || { [[ -x /usr/bin/redis-server ]] && echo /usr/bin/redis-server; } \
        || true
}

redis_bin="$(find_redis)"
if [[ -z "$redis_bin" ]]; then
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "ensure-redis: redis-server is missing and installing it needs root (apt-get)" >&2
        exit 1
    fi
    # Debian's postinst starts the service unless policy-rc.d forbids it; a policy
    # that refuses every start is put in place only for this install.
    created_policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update
    # redis-tools (redis-cli) comes along as a dependency; nothing else is needed.
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server
    if [[ -n "$created_policy" ]]; then
        rm -f /usr/sbin/policy-rc.d
        trap - EXIT
    fi
    redis_bin="$(find_redis)"
    if [[ -z "$redis_bin" ]]; then
        echo "ensure-redis: installed the redis-server package but found no redis-server binary" >&2
        exit 1
    fi
fi

# The TLS tests start `redis-server --tls-port`: Debian builds TLS in, linked to
# libssl; a build without it would fail them with a less clear message.
if command -v ldd >/dev/null && ! ldd "$redis_bin" | grep -q 'libssl'; then
    echo "ensure-redis: $redis_bin is built without TLS (no libssl); the TLS tests need it" >&2
    exit 1
fi

echo "ensure-redis: $("$redis_bin" --version) (TLS)"
