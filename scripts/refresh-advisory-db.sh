#!/usr/bin/env bash
# Replaces the advisory database snapshot in deny/advisory-db with the current RustSec
# database (CC0), where the network reaches it: its crates/ advisories, its licence
# and SNAPSHOT (commit and date). Updates the date README.md states. Commit the result.
# With no network, bring a copy of the repository some other way and pass its path:
#   bash scripts/refresh-advisory-db.sh /path/to/advisory-db
set -euo pipefail
cd "$(dirname "$0")/.."

url="https://github.com/rustsec/advisory-db"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [[ $# -ge 1 ]]; then
    source_repo="$1"
else
    git clone --quiet --depth 1 "$url" "$work/advisory-db"
    source_repo="$work/advisory-db"
fi
commit="$(git -C "$source_repo" log -1 --format=%H)"
date="$(git -C "$source_repo" log -1 --format=%cI)"

snapshot=deny/advisory-db
rm -rf "$snapshot"
mkdir -p "$snapshot"
git -C "$source_repo" archive "$commit" crates LICENSE.txt | tar -x -C "$snapshot"
printf 'commit = "%s"\ndate = "%s"\n' "$commit" "$date" >"$snapshot/SNAPSHOT"
day="${date%%T*}"
sed -i -E "s/(advisory database snapshot is of )[0-9]{4}-[0-9]{2}-[0-9]{2}/\1$day/" README.md
grep -q "snapshot is of $day" README.md \
    || { echo "refresh-advisory-db: README.md's snapshot line not found" >&2; exit 1; }
echo "advisory database snapshot: $commit of $date ($(find "$snapshot/crates" -name '*.md' | wc -l) advisories)"
