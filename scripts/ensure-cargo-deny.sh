#!/usr/bin/env bash
# Makes sure the pinned cargo-deny is installed, built from crates.io with `cargo
# install --locked` (no prebuilt binary is downloaded). Idempotent: a matching
# version on PATH is left alone.
set -euo pipefail

version="0.20.2"

if installed="$(cargo deny --version 2>/dev/null)" && [[ "$installed" == "cargo-deny $version" ]]; then
    exit 0
fi
echo "ensure-cargo-deny: installing cargo-deny $version from crates.io" >&2
# Its release profile asks for fat LTO and one codegen unit, which triples the build
# on two cores; a checker run a few times a day needs neither.
CARGO_PROFILE_RELEASE_LTO=false \
CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install --locked cargo-deny --version "$version"
