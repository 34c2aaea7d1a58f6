"""deploy/kubernetes/ checked as CI can without a cluster (run by validate-manifests.sh,
inside the venv holding kubernetes-validate):

1. `kubectl kustomize deploy/kubernetes` renders; every YAML file there is either
   rendered by it or an `*.example.yaml`;
2. every object, and the Secrets README.md's commands create (run as printed, kubectl
   in client dry-run), validates strictly (no unknown field, no unknown kind or
   apiVersion) against the Kubernetes API schemas of K8S_VERSION; broken copies of the
   manifests are refused, so the validator cannot pass silently;
3. what the manifests promise holds: two replicas, the probes on the management port
   the ConfigMap's broker.toml opens, the security context, the disruption budget,
   Services and policies that select the pods and name their ports;
4. the ConfigMap's broker.toml passes `token-broker check-config` with the environment
   the Deployment gives the broker, its Secrets' values made by the README's commands.
"""

import base64
import copy
import os
import re
import sys
import tempfile
import tomllib
from pathlib import Path
from urllib.parse import urlparse

import yaml
from kubernetes_validate import utils as schemas

from broker_cli import ROOT, CheckFailed, check_config, code_block_after, readme_section, run

K8S_VERSION = os.environ.get("K8S_VERSION", "1.31.0")
DIRECTORY = ROOT / "deploy/kubernetes"
BROKER = {"app.kubernetes.io/name": "token-broker", "app.kubernetes.io/component": "broker"}
# The value `read` takes for the upstream client secret when README's commands run here.
TEST_CLIENT_SECRET = "client-secret-from-the-provider"


def render() -> list:
    done = run(["kubectl", "kustomize", DIRECTORY])
    if done.returncode != 0:
        raise CheckFailed(f"kubectl kustomize {DIRECTORY} failed:\n{done.stderr}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def examples() -> list:
    """The `*.example.yaml` objects; any other YAML file must be in kustomization.yaml."""
    kustomization = yaml.safe_load((DIRECTORY / "kustomization.yaml").read_text())
    listed = set(kustomization.get("resources", []))
    docs = []
    for path in sorted(DIRECTORY.glob("*.y*ml")):
        if path.name.endswith(".example.yaml"):
            docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        elif path.name != "kustomization.yaml" and path.name not in listed:
            raise CheckFailed(f"{path.name} is neither in kustomization.yaml nor an *.example.yaml")
    if not docs:
        raise CheckFailed("no *.example.yaml in deploy/kubernetes (the Ingress example)")
    return docs


def readme_secrets() -> list:
    """The objects README.md's Kubernetes commands create, run as printed with kubectl in
    client dry-run (nothing contacts a cluster) and the client secret typed on stdin."""
    block = code_block_after(readme_section("Kubernetes"), "Create the namespace and the Secrets")
    if "kubectl" not in block:
        raise CheckFailed("the README's Secrets block runs no kubectl")
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "objects.yaml"
        script = (
            f'kubectl() {{ command kubectl "$@" --dry-run=client -o yaml >>"{out}"; echo --- >>"{out}"; }}\n'
            + block
        )
        env = {**os.environ, "HOME": scratch, "KUBECONFIG": str(Path(scratch) / "none")}
        done = run(["bash", "-euo", "pipefail", "-c", script], env=env, stdin=TEST_CLIENT_SECRET + "\n")
        if done.returncode != 0:
            raise CheckFailed(f"README's Secrets commands failed:\n{done.stderr}")
        objects = [doc for doc in yaml.safe_load_all(out.read_text()) if doc]
    for obj in objects:
        # Client dry-run prints `creationTimestamp: null`, which no server would.
        obj.get("metadata", {}).pop("creationTimestamp", None)
    return objects


def name(doc: dict) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def schema_errors(doc: dict) -> str | None:
    """Why `doc` is not a valid object of Kubernetes K8S_VERSION (strict), or None."""
    try:
        schemas.validate(doc, K8S_VERSION, strict=True)
    except schemas.ValidationError as error:
        return f"{'.'.join(str(p) for p in error.path)}: {error.message}"
    except (schemas.SchemaNotFoundError, schemas.VersionNotSupportedError) as error:
        return error.message
    except Exception as error:  # a malformed document: no kind, no apiVersion
        return f"{type(error).__name__}: {error}"
    return None


def validate_all(docs: list) -> None:
    problems = [f"{name(d)}: {e}" for d in docs if (e := schema_errors(d))]
    if problems:
        raise CheckFailed("not valid Kubernetes " + K8S_VERSION + ":\n  " + "\n  ".join(problems))
    print(f"validate-manifests: {len(docs)} objects valid against Kubernetes {K8S_VERSION} (strict)")


def broken_copies(deployment: dict) -> list:
    """Mistakes the validator must refuse: a misspelled field deep in the pod, one at the
    top of the spec, a wrong type, an unknown apiVersion and kind."""
    def edited(change):
        doc = copy.deepcopy(deployment)
        change(doc)
        return doc
    container = lambda d: d["spec"]["template"]["spec"]["containers"][0]  # noqa: E731
    return [
        ("a misspelled securityContext field", edited(
            lambda d: container(d)["securityContext"].update(readOnlyRootFileSystem=True))),
        ("a misspelled spec field", edited(lambda d: d["spec"].update(replica=2))),
        ("a probe port of the wrong type", edited(
            lambda d: container(d)["livenessProbe"]["httpGet"].update(port=[9090]))),
        ("an unknown apiVersion", edited(lambda d: d.update(apiVersion="apps/v2"))),
        ("an unknown kind", edited(lambda d: d.update(kind="Deploymnet"))),
    ]


def validator_refuses_broken_manifests(deployment: dict) -> None:
    for what, doc in broken_copies(deployment):
        if schema_errors(doc) is None:
            raise CheckFailed(f"the validator accepted a Deployment with {what}: it checks nothing")
    print("validate-manifests: the validator refuses each of 5 broken copies of the Deployment")


def one(docs: list, kind: str, labels: dict) -> dict:
    found = [
        d for d in docs if d["kind"] == kind
        and labels.items() <= d.get("spec", {}).get("selector", {}).get("matchLabels", {}).items()
    ]
    if len(found) != 1:
        raise CheckFailed(f"expected one {kind} selecting {labels}, found {len(found)}")
    return found[0]


def require(condition: bool, what: str) -> None:
    if not condition:
        raise CheckFailed(what)


def port_of(address: str) -> int:
    require(":" in address, f"`{address}` is not HOST:PORT")
    return int(address.rsplit(":", 1)[1])


def the_container(deployment: dict) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    require(len(containers) == 1, f"{name(deployment)}: expected one container")
    return containers[0]


def configuration(deployment: dict, docs: list) -> str:
    """The broker.toml the container's `--config` names, from the ConfigMap mounted there."""
    container, pod = the_container(deployment), deployment["spec"]["template"]["spec"]
    args = container.get("args", [])
    require("--config" in args, "the broker container has no --config argument")
    path = Path(args[args.index("--config") + 1])
    mounts = [m for m in container.get("volumeMounts", []) if Path(m["mountPath"]) == path.parent]
    require(len(mounts) == 1, f"nothing is mounted at {path.parent} for --config {path}")
    volume = next(v for v in pod["volumes"] if v["name"] == mounts[0]["name"])
    require("configMap" in volume, f"{path.parent} is not a ConfigMap")
    key = next(
        (i["key"] for i in volume["configMap"].get("items", []) if i["path"] == path.name), path.name
    )
    maps = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == volume["configMap"]["name"]]
    require(len(maps) == 1 and key in maps[0].get("data", {}), f"no ConfigMap key {key} for {path}")
    return maps[0]["data"][key]


def pod_promises(deployment: dict, config: dict) -> None:
    spec, pod = deployment["spec"], deployment["spec"]["template"]["spec"]
    require(spec.get("replicas", 1) >= 2, "the broker runs fewer than two replicas")
    sc = pod.get("securityContext", {})
    require(
        sc.get("runAsNonRoot") is True and sc.get("runAsUser") == 65532
        and sc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
        "the pod is not runAsNonRoot, runAsUser 65532, seccompProfile RuntimeDefault",
    )
    require(
        any(c.get("topologyKey") == "kubernetes.io/hostname" for c in pod.get("topologySpreadConstraints", [])),
        "the replicas are not spread across nodes",
    )
    container = the_container(deployment)
    sc = container.get("securityContext", {})
    for key, value in {
        "runAsNonRoot": True, "runAsUser": 65532, "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
    }.items():
        require(sc.get(key) == value, f"the broker container's securityContext.{key} is not {value}")
    require(sc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities are not dropped: ALL")
    resources = container.get("resources", {})
    for part in ("requests", "limits"):
        require({"cpu", "memory"} <= set(resources.get(part, {})), f"no cpu and memory {part}")
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    server = config.get("server", {})
    require(ports.get("http") == port_of(server.get("listen", "")), "port `http` is not server.listen's")
    require(
        ports.get("management") == port_of(server.get("management_listen", "")),
        "port `management` is not server.management_listen's",
    )
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container.get(probe, {}).get("httpGet", {})
        require(
            get.get("path") == path and get.get("port") in ("management", ports["management"]),
            f"{probe} is not an httpGet of {path} on the management port",
        )


def selected(docs: list, selector: dict) -> list:
    """The Deployments whose pods carry every label of `selector`."""
    return [
        d for d in docs if d["kind"] == "Deployment"
        and selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
    ]


def port_names(deployment: dict) -> set:
    return {p["name"] for p in the_container(deployment).get("ports", [])}


def wiring(docs: list, extra: list) -> None:
    """Services, policies and the budget select the pods and name ports they have; the
    management port is a Service of its own that no Ingress routes to."""
    services = {}
    for service in (d for d in docs if d["kind"] == "Service"):
        pods = selected(docs, service["spec"]["selector"])
        require(len(pods) == 1, f"{name(service)} selects {len(pods)} Deployments")
        targets = {p["targetPort"] for p in service["spec"]["ports"]}
        require(targets <= port_names(pods[0]), f"{name(service)} targets ports {targets - port_names(pods[0])} its pods lack")
        require(not {"http", "management"} <= targets, f"{name(service)} mixes the public and management ports")
        services[service["metadata"]["name"]] = targets
    require(any(t == {"management"} for t in services.values()), "no Service for the management port")
    for policy in (d for d in docs if d["kind"] == "NetworkPolicy"):
        pods = selected(docs, policy["spec"]["podSelector"]["matchLabels"])
        require(len(pods) == 1, f"{name(policy)} selects {len(pods)} Deployments")
        named = {p["port"] for rule in policy["spec"].get("ingress", []) for p in rule.get("ports", [])}
        require(named <= port_names(pods[0]), f"{name(policy)} names ports its pods lack: {named}")
    budget = one(docs, "PodDisruptionBudget", BROKER)
    require(budget["spec"].get("minAvailable") == 1, "the PodDisruptionBudget is not minAvailable: 1")
    for ingress in (d for d in extra if d["kind"] == "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                require(
                    services.get(backend["name"]) == {"http"} and backend["port"].get("name") == "http",
                    f"{name(ingress)} routes to {backend}, not the public port",
                )


def environment(deployment: dict, secrets: list) -> dict:
    """The container's environment, its Secret references read from `secrets`."""
    env, namespace = {}, deployment["metadata"].get("namespace")
    for var in the_container(deployment).get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
            continue
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        require(ref is not None, f"{var['name']}: neither a value nor a secretKeyRef")
        found = [s for s in secrets if s["metadata"]["name"] == ref["name"] and s["metadata"].get("namespace") == namespace]
        require(len(found) == 1, f"{var['name']} reads Secret {namespace}/{ref['name']}, which README's commands do not create")
        data = found[0].get("data", {})
        require(ref["key"] in data, f"{var['name']} reads key {ref['key']} that Secret {ref['name']} lacks")
        env[var["name"]] = base64.b64decode(data[ref["key"]]).decode()
    return env


def redis_reachable(docs: list, broker_env: dict, secrets: list, url_variable: str) -> None:
    """With the in-cluster Redis: the broker's URL names its Service and its password."""
    redis = selected(docs, {"app.kubernetes.io/component": "redis"})
    if not redis:
        return
    url = urlparse(broker_env[url_variable])
    service_names = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    require(url.hostname in service_names and url.port == 6379, f"{url_variable} does not name the Redis Service on 6379")
    require(url.password == environment(redis[0], secrets).get("REDIS_PASSWORD"), f"{url_variable} does not carry Redis's password")


def main() -> None:
    docs, extra, secrets = render(), examples(), readme_secrets()
    validate_all(docs + extra + secrets)
    deployment = one(docs, "Deployment", BROKER)
    validator_refuses_broken_manifests(deployment)
    text = configuration(deployment, docs)
    config = tomllib.loads(text)
    pod_promises(deployment, config)
    wiring(docs, extra)
    env = environment(deployment, secrets)
    referenced = set(re.findall(r'"env:([A-Za-z_][A-Za-z0-9_]*)"', text))
    require(referenced <= env.keys(), f"broker.toml reads {referenced - env.keys()}, which the Deployment does not set")
    store_url = config.get("store", {}).get("url", "")
    if store_url.startswith("env:"):
        redis_reachable(docs, env, secrets, store_url.removeprefix("env:"))
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "broker.toml"
        path.write_text(text)
        print(check_config(path, env, "the ConfigMap's broker.toml").rstrip())
    print("validate-manifests: deploy/kubernetes is valid and its broker.toml is accepted")


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    try:
        main()
    except CheckFailed as failure:
        sys.exit(f"validate-manifests: FAILED: {failure}")
