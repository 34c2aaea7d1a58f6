#!/usr/bin/env bash
# CI's release check: builds the binary, the SBOM and the Debian package as a release
# does (scripts/release.sh; in CI with PROFILE=dev, the default here: the unoptimised
# build of the same code and features, on what the tests already compiled, so the
# check costs about a minute rather than an optimised build's six; PROFILE=release or
# PROFILE=packaging checks an optimised package the same way), then checks them:
#   - the SBOM is CycloneDX JSON naming every direct dependency at its locked version;
#   - the installed binary carries its dependency list (cargo auditable), the same as
#     the SBOM's;
#   - the package installs (dpkg -i): its system user, the example configuration that
#     `check-config` accepts, the man pages and completions, a service unit that
#     `systemd-analyze verify` passes;
#   - the unit's ExecStart, run as its user (no systemd here: the state directory is
#     made as StateDirectory= would), serves /healthz and stops on SIGTERM;
#   - it removes (dpkg -r, conffiles kept) and purges cleanly.
# Needs root (dpkg) and installs systemd if systemd-analyze is missing. Leaves the
# machine as it found it, but for the system user, which Debian keeps on purge.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v systemd-analyze >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
fi

PROFILE="${PROFILE:-dev}" bash scripts/release.sh
sbom=target/sbom/token-broker.cdx.json
python3 scripts/release-check.py sbom "$sbom"
debs=(target/debian/token-broker_*.deb)
[[ ${#debs[@]} -eq 1 ]] || { echo "package: expected one .deb, found ${debs[*]}" >&2; exit 1; }
deb="${debs[0]}"

work="$(mktemp -d)"
pid=""
cleanup() {
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        wait "$pid" || true
    fi
    dpkg --purge token-broker >/dev/null 2>&1 || true
    rm -rf /var/lib/token-broker "$work"
}
trap cleanup EXIT
fail() {
    echo "package: $*" >&2
    exit 1
}

dpkg -i "$deb"
unit=""
for dir in /usr/lib/systemd/system /lib/systemd/system; do
    [[ -f "$dir/token-broker.service" ]] && unit="$dir/token-broker.service" && break
done
[[ -n "$unit" ]] || fail "no token-broker.service installed"
for file in /usr/bin/token-broker /etc/token-broker/config.toml \
    /usr/share/man/man1/token-broker.1.gz /usr/share/man/man1/token-broker-serve.1.gz \
    /usr/share/bash-completion/completions/token-broker \
    /usr/share/zsh/vendor-completions/_token-broker \
    /usr/share/fish/vendor_completions.d/token-broker.fish; do
    [[ -s "$file" ]] || fail "$file is not installed"
done
dpkg-query --showformat='${Conffiles}\n' --show token-broker | grep -q ' /etc/token-broker/config.toml ' ||
    fail "/etc/token-broker/config.toml is not a conffile"
getent passwd token-broker >/dev/null || fail "no system user token-broker"
[[ "$(stat -c '%U:%G %a' /etc/token-broker/upstream-client-secret)" == "root:token-broker 640" ]] ||
    fail "the secret file is $(stat -c '%U:%G %a' /etc/token-broker/upstream-client-secret)"
echo "package: installed $(token-broker --version)"

python3 scripts/release-check.py auditable /usr/bin/token-broker --sbom "$sbom"

# The example configuration, read as the service's user reads it.
as_user=(setpriv --reuid=token-broker --regid=token-broker --init-groups --reset-env --)
"${as_user[@]}" token-broker check-config --config /etc/token-broker/config.toml

# The unit as systemd would load it; any finding is a failure.
findings="$(systemd-analyze verify "$unit" 2>&1)" || fail "systemd-analyze verify: $findings"
[[ -z "$findings" ]] || fail "systemd-analyze verify: $findings"
echo "package: systemd-analyze verify $unit: clean"

# The service's command line, as its user, in its state directory. The provider is
# pointed at a closed loopback port and the port is picked by the kernel (both by
# environment overrides): the broker serves without its provider, not ready.
exec_start="$(sed -n 's/^ExecStart=//p' "$unit")"
[[ -n "$exec_start" ]] || fail "the unit has no ExecStart"
install -d -o token-broker -g token-broker -m 0700 /var/lib/token-broker
read -r -a command <<<"$exec_start"
(
    cd /var/lib/token-broker
    exec "${as_user[@]}" env TOKEN_BROKER__SERVER__LISTEN=127.0.0.1:0 \
        TOKEN_BROKER__UPSTREAM__ISSUER=http://127.0.0.1:9 "${command[@]}"
) 2>"$work/log" &
pid=$!
addr=""
for _ in $(seq 1 100); do
    addr="$(sed -n 's/.*"addr":"\([0-9.:]*\)".*"listening".*/\1/p; s/.*"message":"listening".*"addr":"\([0-9.:]*\)".*/\1/p' "$work/log" | head -1)"
    [[ -n "$addr" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/log" >&2; fail "the service exited at start"; }
    sleep 0.2
done
[[ -n "$addr" ]] || { cat "$work/log" >&2; fail "the service did not log listening"; }
health="$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "http://$addr/healthz")"
[[ "$health" == "200" ]] || fail "/healthz answered $health"
[[ "$(stat -c '%U %a' /var/lib/token-broker/token-broker.db)" == "token-broker 600" ]] ||
    fail "the store is not the service user's alone"
kill -TERM "$pid"
wait "$pid" || fail "the service did not stop cleanly on SIGTERM: $(tail -3 "$work/log")"
pid=""
echo "package: the unit's ExecStart served http://$addr/healthz as token-broker and stopped on SIGTERM"

dpkg -r token-broker
[[ ! -e /usr/bin/token-broker ]] || fail "dpkg -r left /usr/bin/token-broker"
[[ -f /etc/token-broker/config.toml ]] || fail "dpkg -r removed the conffile"
dpkg --purge token-broker
[[ ! -e /etc/token-broker ]] || fail "dpkg --purge left /etc/token-broker"
echo "package: removed and purged"
