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
# Tools run a few times a day need neither fat LTO nor one codegen unit, which some of
# them ask for and which multiply their build on two cores.
CARGO_PROFILE_RELEASE_LTO=false \
CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install --locked "$crate" --version "$version"
