#!/usr/bin/env bash
# Makes sure a pinned cargo subcommand is installed, built from crates.io with `cargo
# install --locked` (no prebuilt binary is downloaded): `ensure-cargo-tool.sh CRATE
# VERSION`. Idempotent: a matching version (as `cargo install --list` records it) is
# left alone. The release tools of scripts/package.sh and scripts/release.sh are
# installed through it: cargo-auditable, cargo-cyclonedx and cargo-deb.
set -euo pipefail

crate="${1:?usage: ensure-cargo-tool.sh CRATE VERSION}"
version="${2:?usage: ensure-cargo-tool.sh CRATE VERSION}"

if cargo install --list | grep -qxF "$crate v$version:"; then
    exit 0
fi
echo "ensure-cargo-tool: installing $crate $version from crates.io" >&2
# As for cargo-deny: whatever a tool's own release profile says, no LTO and 16 codegen
# units; a tool run a few times a day gains nothing from a slower build on two cores.
CARGO_PROFILE_RELEASE_LTO=false \
CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install --locked "$crate" --version "$version"
