#!/usr/bin/env bash
# Builds what a release ships, all from Cargo.lock, and says where it put it:
#   target/<profile>/token-broker   the production binary (no `dev-idp` feature), built
#                                   with `cargo auditable`: its dependency list is
#                                   embedded (section .dep-v0) for scanners to read
#   target/sbom/token-broker.cdx.json
#                                   CycloneDX 1.5 SBOM of the same build (cargo-cyclonedx)
#   target/debian/token-broker_<version>-1_<arch>.deb
#                                   the Debian package (cargo-deb; Cargo.toml
#                                   [package.metadata.deb], debian/)
# The tools are installed from crates.io first (scripts/ensure-cargo-tool.sh, pinned).
# PROFILE=packaging builds with [profile.packaging] instead of [profile.release] (no
# thin LTO); PROFILE=dev, what CI's package check (scripts/package.sh) uses, builds on
# the unoptimised build the tests already made (the same code and features, in
# target/debug) and packs it with cargo-deb's fast compression.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${PROFILE:-release}"
profile_dir="$profile"
deb_flags=()
if [[ $profile == dev ]]; then
    profile_dir=debug
    deb_flags=(--fast)
fi

bash scripts/ensure-cargo-tool.sh cargo-auditable 0.7.7
bash scripts/ensure-cargo-tool.sh cargo-cyclonedx 0.5.9
bash scripts/ensure-cargo-tool.sh cargo-deb 3.8.0

# The commit's time stamps the SBOM and the package's files (reproducible builds).
SOURCE_DATE_EPOCH="$(git log -1 --format=%ct 2>/dev/null || date +%s)"
export SOURCE_DATE_EPOCH

cargo auditable build --locked --no-default-features --profile "$profile"
bin="target/$profile_dir/token-broker"

# Man pages and completions, generated from the binary's own command line.
assets=target/deb-assets
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
"$bin" man --dir "$assets/man"
"$bin" completions bash > "$assets/completions/token-broker.bash"
"$bin" completions zsh > "$assets/completions/_token-broker"
"$bin" completions fish > "$assets/completions/token-broker.fish"

# The SBOM: every crate the production build for this host compiles, build
# dependencies included. cargo-cyclonedx writes it beside Cargo.toml.
cargo cyclonedx --format json --spec-version 1.5 --no-default-features \
    --override-filename token-broker.cdx --quiet
mkdir -p target/sbom
mv token-broker.cdx.json target/sbom/token-broker.cdx.json

rm -rf target/debian
cargo deb --no-build --locked --profile "$profile" "${deb_flags[@]}" --output target/debian/ --quiet

echo "release: binary  $bin ($("$bin" --version))"
echo "release: SBOM    target/sbom/token-broker.cdx.json"
echo "release: package $(ls target/debian/*.deb)"
