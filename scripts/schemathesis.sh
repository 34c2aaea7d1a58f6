#!/usr/bin/env bash
# A property-based run of the admin API against its own OpenAPI document
# (src/http/admin_openapi.json) with schemathesis from PyPI: the demo broker (admin API
# on, its token printed), seeded with clients and grants by its own printed login and
# ID-JAG commands, then `st run` with the bearer header. Fails on any 5xx, a status
# the document does not list, a wrong content type or a body outside its schema.
#
# schemathesis is installed into target/schemathesis-venv (pinned; reused when
# present). Examples are bounded (ST_EXAMPLES, default 25 per operation) so a cold
# run stays about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."

version="4.32.5"
venv="target/schemathesis-venv"
if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$version"; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

cargo build --locked --quiet
bin="$PWD/target/debug/token-broker"
work="$(mktemp -d)"
demo_pid=""
cleanup() {
    if [[ -n "$demo_pid" ]]; then kill "$demo_pid" 2>/dev/null || true; wait "$demo_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

"$bin" demo --listen 127.0.0.1:0 --idp-listen 127.0.0.1:0 >"$work/demo.out" 2>"$work/demo.err" &
demo_pid=$!
for _ in $(seq 1 300); do
    grep -q '^Ctrl-C stops the demo' "$work/demo.out" 2>/dev/null && break
    kill -0 "$demo_pid" 2>/dev/null || { cat "$work/demo.err" >&2; exit 1; }
    sleep 0.1
done
grep -q '^Ctrl-C stops the demo' "$work/demo.out" || { echo "the demo did not start" >&2; exit 1; }

# The demo's own commands: its ID-JAG grant and its login (a client, a grant, a
# refresh), then the line that exports the admin URL and token.
sed -n '/^Enterprise-managed authorization/,/^Operate it/p' "$work/demo.out" \
    | grep -E '^  [^ #]' >"$work/seed.sh"
grep -E '^  export TOKEN_BROKER_ADMIN_URL=' "$work/demo.out" >>"$work/seed.sh"
# shellcheck disable=SC1091
source "$work/seed.sh" >/dev/null
for name in one two three; do
    curl -sf "$TOKEN_BROKER_ADMIN_URL/oauth/register" -H 'content-type: application/json' \
        -d "{\"client_name\":\"schemathesis $name\",\"redirect_uris\":[\"http://127.0.0.1:1/cb\"],\"token_endpoint_auth_method\":\"none\"}" >/dev/null
done
seeded="$(curl -sf "$TOKEN_BROKER_ADMIN_URL/admin/grants" -H "authorization: Bearer $TOKEN_BROKER_ADMIN_TOKEN")"
case "$seeded" in *'"grant_id"'*) ;; *) echo "seeding left no grant: $seeded" >&2; exit 1 ;; esac

# From the scratch directory: schemathesis keeps a cache where it runs.
root="$PWD"
cd "$work"
"$root/$venv/bin/st" run "$root/src/http/admin_openapi.json" \
    --url "$TOKEN_BROKER_ADMIN_URL" \
    --header "Authorization: Bearer $TOKEN_BROKER_ADMIN_TOKEN" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "${ST_EXAMPLES:-25}" \
    --seed 1 \
    --workers 2 \
    --no-color
