#!/usr/bin/env bash
# Installs the real MCP client fixture (fixtures/mcp-client: the MCP TypeScript SDK 1.x,
# its 2.x client package and playwright-core) with `npm ci` when node_modules is missing
# or older than package-lock.json, and Debian's chromium for the consent-page browser test when
# /usr/bin/chromium is missing. Idempotent; needs the npm registry and apt for the
# first run.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/fixtures/mcp-client"
stamp="$dir/node_modules/.package-lock.json"

die() {
    echo "mcp-client-setup: $*" >&2
    exit 1
}

command -v node >/dev/null 2>&1 || die "node is not on PATH"
if [[ ! -d "$dir/node_modules" || ! -f "$stamp" || "$dir/package-lock.json" -nt "$stamp" \
    || ! -d "$dir/node_modules/@modelcontextprotocol/sdk" || ! -d "$dir/node_modules/@modelcontextprotocol/client" \
    || ! -d "$dir/node_modules/playwright-core" ]]; then
    command -v npm >/dev/null 2>&1 || die "npm is not on PATH (needed for 'npm ci' in $dir)"
    echo "mcp-client-setup: npm ci in $dir" >&2
    (cd "$dir" && npm ci --no-audit --no-fund) || die "'npm ci' failed in $dir"
    touch "$stamp"
fi

if [[ ! -x /usr/bin/chromium ]]; then
    echo "mcp-client-setup: installing Debian chromium" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends chromium >/dev/null || die "cannot install chromium"
fi
/usr/bin/chromium --headless --no-sandbox --version >/dev/null 2>&1 || die "/usr/bin/chromium does not run"
echo "mcp-client-setup: ready ($(node --version), $(/usr/bin/chromium --version 2>/dev/null))"
