#!/usr/bin/env bash
# Makes sure Caddy is installed, for the test that puts a real Caddy in front of the
# broker (tests/it/caddy.rs, running docker/Caddyfile). The test starts its own Caddy;
# the system service is never started. Idempotent.
set -euo pipefail

if command -v caddy >/dev/null 2>&1; then
    exit 0
fi
if [[ "$(id -u)" -ne 0 ]]; then
    echo "ensure-caddy: caddy is missing and installing it needs root (apt-get)" >&2
    exit 1
fi
# Debian's postinst starts the service unless policy-rc.d forbids it; a policy that
# refuses every start is put in place only for this install.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends caddy
command -v caddy >/dev/null
