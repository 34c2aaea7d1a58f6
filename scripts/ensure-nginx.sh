#!/usr/bin/env bash
# Makes sure an nginx with ngx_http_auth_request_module is installed, for the
# tests that put a real nginx in front of the broker (tests/it/nginx.rs). The tests
# start their own nginx; the system service is never started. Idempotent.
set -euo pipefail

find_nginx() {
    command -v nginx 2>/dev/null || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } || true
}

nginx_bin="$(find_nginx)"
if [[ -z "$nginx_bin" ]]; then
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "ensure-nginx: nginx is missing and installing it needs root (apt-get)" >&2
        exit 1
    fi
    # Debian 12: the `nginx` package holds the binary, built with auth_request;
    # `nginx-light`/`nginx-core` only pull it in plus dynamic modules we don't need.
    # Debian's postinst starts the service unless policy-rc.d forbids it; a policy
    # that refuses every start is put in place only for this install.
    created_policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx
    if [[ -n "$created_policy" ]]; then
        rm -f /usr/sbin/policy-rc.d
        trap - EXIT
    fi
    nginx_bin="$(find_nginx)"
    if [[ -z "$nginx_bin" ]]; then
        echo "ensure-nginx: installed the nginx package but found no nginx binary" >&2
        exit 1
    fi
fi

if ! "$nginx_bin" -V 2>&1 | grep -q -o with-http_auth_request_module; then
    echo "ensure-nginx: $nginx_bin lacks ngx_http_auth_request_module (see '$nginx_bin -V')" >&2
    exit 1
fi
echo "ensure-nginx: $nginx_bin has ngx_http_auth_request_module"
