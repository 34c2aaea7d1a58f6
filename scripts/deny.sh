#!/usr/bin/env bash
# The dependency policy in deny.toml, checked offline: advisories (from the dated
# snapshot in deny/advisory-db), licences, bans (duplicates) and sources.
# Installs cargo-deny first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-cargo-deny.sh

snapshot=deny/advisory-db
date="$(sed -n 's/^date = "\(.*\)"$/\1/p' "$snapshot/SNAPSHOT")"
[[ -n "$date" ]] || { echo "deny: $snapshot/SNAPSHOT has no date" >&2; exit 1; }

# cargo-deny reads an advisory database from `db-path`/advisory-db-<hash of its URL>
# and judges its age by `.git/FETCH_HEAD`: the snapshot is laid out there with that
# file dated to the snapshot, so `maximum-db-staleness` counts from the snapshot's
# date, not from this run.
dbs=target/advisory-dbs
db="$dbs/advisory-db-3157b0e258782691"
rm -rf "$db"
# A repository of its own (empty: no commit), so that git run inside it (cargo-deny
# run by hand, online, fetches and resets its database) stops here: a bare `.git`
# directory is not a repository to git, which would walk up to this checkout and
# reset it, uncommitted work and all.
git init --quiet "$db"
[[ "$(git -C "$db" rev-parse --show-toplevel)" == "$(cd "$db" && pwd -P)" ]] || {
  echo "deny: git in $db reaches another repository; refusing to lay the snapshot out there" >&2
  exit 1
}
cp -R "$snapshot/crates" "$db/crates"
touch -d "$date" "$db/.git/FETCH_HEAD"

# cargo-deny reads the whole lock file's manifests, other platforms' crates included,
# which a build never downloads; fetching them is the one network step (crates.io).
cargo fetch --locked --quiet
echo "deny: advisory database snapshot of $date" >&2
cargo deny --locked --offline check "$@"
