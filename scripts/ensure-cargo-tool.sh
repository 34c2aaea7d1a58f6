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
# Whatever a tool's own release profile says: unoptimised, no LTO, 16 codegen units,
# and one target directory for all of them (they share most dependencies). A tool run
# a few times per CI run gains nothing from an optimised build on two cores: measured
# cold, cargo-deb 40 s and cargo-cyclonedx 98 s this way, against 5 and 6 minutes
# optimised.
CARGO_TARGET_DIR="${CARGO_TOOLS_TARGET_DIR:-$(cd "$(dirname "$0")/.." && pwd)/target/cargo-tools}" \
CARGO_PROFILE_RELEASE_OPT_LEVEL=0 \
CARGO_PROFILE_RELEASE_LTO=false \
CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install --locked "$crate" --version "$version"
