#!/usr/bin/env bash
# Floors for the CPU targets (issue #22): builds a scratch copy of this checkout with
# benches/floor/floor.rs mounted as /floor/* (handlers that do the least each measured
# case must do: see that file), then runs scale.sh's `cpu` part on it with the floor
# cases beside the real ones. Each floor's ratio to /healthz says whether its target
# is within reach of any handler on this machine and HTTP stack; the gap from the
# floor to the real case is what the broker's own checks cost.
#
# The scratch copy is a `git worktree` of HEAD (uncommitted changes are not in it) in
# the bench's work directory, built into target/floor (seeded from target/release when
# that exists, so only this crate is compiled); the broker's own build is untouched.
# Informational, like scale.sh: exit 0 whatever the figures.
#
# Usage: bash benches/floor.sh   (knobs: scale.sh's DURATION, ROUNDS, PERF, …; PARTS=cpu
#        by default, "cpu instr" adds the instructions per request under callgrind)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { echo "[floor] $*" >&2; }
die() { log "error: $*"; exit 1; }

scratch=$(mktemp -d "${TMPDIR:-/tmp}/floor-src.XXXXXX")
trap 'git -C "$repo" worktree remove --force "$scratch" 2>/dev/null || rm -rf "$scratch"' EXIT
git -C "$repo" worktree add --detach --force "$scratch" HEAD >/dev/null 2>&1 ||
  die "git worktree add failed"
cp "$repo/benches/floor/floor.rs" "$scratch/src/http/floor.rs"
echo 'pub mod floor;' >>"$scratch/src/http/mod.rs"
# Mounted first, beside the extractors' configuration (the form limit the exchange's
# floor reads), on every surface.
anchor='        extractor_configs(cfg, limit);'
grep -qxF "$anchor" "$scratch/src/http/routes.rs" ||
  die "src/http/routes.rs no longer has the line the floor routes go after: $anchor"
python3 - "$scratch/src/http/routes.rs" "$anchor" <<'PY'
import sys
path, anchor = sys.argv[1:]
text = open(path).read()
open(path, "w").write(text.replace(anchor + "\n", anchor + "\n        super::floor::routes(cfg);\n", 1))
PY

target=$repo/target/floor
if [[ ! -d $target/release && -d $repo/target/release ]]; then
  log "seeding $target from target/release"
  mkdir -p "$target"
  cp -a "$repo/target/release" "$target/"
fi
log "cargo build --release (scratch copy with /floor/*)"
(cd "$scratch" && CARGO_TARGET_DIR=$target cargo build --release --quiet >&2) ||
  die "the scratch build failed"

BUILD=0 BIN=$target/release/token-broker FLOOR=1 PARTS=${PARTS:-cpu} bash "$repo/benches/scale.sh"
