#!/usr/bin/env bash
# Installs the oidc-provider test rig (fixtures/oidc-provider): runs `npm ci` there
# when node_modules is missing or older than package-lock.json, then checks that the
# bundled Node (npm package `node@22`, oidc-provider 9 needs Node >= 22) runs.
# Idempotent. Needs npm on PATH and the npm registry reachable for the first install.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/fixtures/oidc-provider"
node_bin="$dir/node_modules/.bin/node"
# npm writes this after every successful install; it is our "installed at" stamp.
stamp="$dir/node_modules/.package-lock.json"

die() {
    echo "oidc-provider-setup: $*" >&2
    exit 1
}

[[ -f "$dir/package-lock.json" ]] || die "missing $dir/package-lock.json"

if [[ ! -d "$dir/node_modules" || ! -f "$stamp" || "$dir/package-lock.json" -nt "$stamp" \
    || ! -x "$node_bin" || ! -d "$dir/node_modules/oidc-provider" ]]; then
    command -v npm >/dev/null 2>&1 || die "npm is not on PATH (needed for 'npm ci' in $dir)"
    echo "oidc-provider-setup: npm ci in $dir" >&2
    (cd "$dir" && npm ci --no-audit --no-fund) || die "'npm ci' failed in $dir"
    touch "$stamp"
fi

[[ -x "$node_bin" ]] || die "$node_bin is missing after npm ci (did the node package's install script run?)"
version="$("$node_bin" --version 2>/dev/null)" || die "$node_bin does not run"
major="${version#v}"
major="${major%%.*}"
if [[ ! "$major" =~ ^[0-9]+$ ]] || (( major < 22 )); then
    die "$node_bin reports '$version'; oidc-provider 9 needs Node v22 or later"
fi
echo "oidc-provider-setup: ready ($node_bin $version)"
