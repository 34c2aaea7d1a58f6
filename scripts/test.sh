#!/usr/bin/env bash
# Runs every test. Installs what the tests need on a fresh machine first; a missing
# dependency is a failure, never a silent skip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/oidc-provider-setup.sh
bash scripts/ensure-nginx.sh
bash scripts/ensure-caddy.sh
bash scripts/ensure-redis.sh
bash scripts/mcp-client-setup.sh
cargo test --locked --all-targets
