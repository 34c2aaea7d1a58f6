"""docker/Dockerfile checked without Docker (run by validate-manifests.sh): hadolint
finds nothing; the runtime stage's HEALTHCHECK is an exec-form call of the copied
binary whose subcommand and flags the broker's own `--help` lists, at the port
docker/broker.toml's management_listen opens and the image exposes; the state
directory is created owned by 65532, declared a VOLUME and holds the default
configuration's store; and that health command, run against a broker serving
docker/broker.toml, exits 0, and 1 once the broker has stopped."""

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from urllib.parse import urlparse

from broker_cli import ROOT, CheckFailed, check_config, require_binary, run

DOCKERFILE = ROOT / "docker/Dockerfile"
DEFAULT_CONFIG = ROOT / "docker/broker.toml"
STATE = "/var/lib/token-broker"
USER = "65532:65532"


def require(condition: bool, what: str) -> None:
    if not condition:
        raise CheckFailed(f"docker/Dockerfile: {what}")


def runtime_stage() -> list:
    """The last stage's instructions as (KEYWORD, arguments), continuations joined."""
    lines, pending = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    stages, current = [], []
    for line in lines:
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            current = []
            stages.append(current)
        current.append((keyword.upper(), rest.strip()))
    require(len(stages) >= 2, "expected a builder stage and a runtime stage")
    return stages[-1]


def only(stage: list, keyword: str) -> str:
    found = [rest for key, rest in stage if key == keyword]
    require(len(found) == 1, f"expected one {keyword} in the runtime stage, found {len(found)}")
    return found[0]


def exec_form(text: str, what: str) -> list:
    try:
        argv = json.loads(text)
    except json.JSONDecodeError:
        argv = None
    require(isinstance(argv, list) and argv, f"{what} is not in exec form (the image has no shell)")
    return argv


def healthcheck(stage: list) -> tuple:
    """The HEALTHCHECK's options and its command."""
    text = only(stage, "HEALTHCHECK")
    options, _, command = text.partition("CMD ")
    flags = dict(opt.lstrip("-").split("=", 1) for opt in shlex.split(options))
    for name in ("interval", "timeout", "retries"):
        require(name in flags, f"HEALTHCHECK has no --{name}")
    return flags, exec_form(command, "HEALTHCHECK CMD")


def static_checks() -> list:
    """Everything that needs only the files and `--help`; returns the health command."""
    done = run(["hadolint", DOCKERFILE])
    require(done.returncode == 0, f"hadolint:\n{done.stdout}{done.stderr}")
    stage = runtime_stage()
    entrypoint = exec_form(only(stage, "ENTRYPOINT"), "ENTRYPOINT")
    binary = entrypoint[0]
    _, command = healthcheck(stage)
    require(command[0] == binary, f"HEALTHCHECK runs {command[0]}, not the broker {binary}")
    subcommand, flags = command[1], [a for a in command[2:] if a.startswith("--")]

    cli = require_binary()
    listed = run([cli, "--help"]).stdout
    require(
        any(line.split()[:1] == [subcommand] for line in listed.splitlines()),
        f"HEALTHCHECK runs `{subcommand}`, which `token-broker --help` does not list:\n{listed}",
    )
    sub_help = run([cli, subcommand, "--help"]).stdout
    for flag in flags:
        require(flag in sub_help, f"`token-broker {subcommand} --help` has no {flag}:\n{sub_help}")

    config = tomllib.loads(DEFAULT_CONFIG.read_text())
    server = config.get("server", {})
    url = urlparse(command[command.index("--url") + 1]) if "--url" in command else None
    require(url is not None and url.hostname == "127.0.0.1" and url.path == "/healthz",
            "HEALTHCHECK does not ask http://127.0.0.1:PORT/healthz")
    management = server.get("management_listen", "")
    require(management.rsplit(":", 1)[-1] == str(url.port),
            f"HEALTHCHECK asks port {url.port}, docker/broker.toml's management_listen is `{management}`")
    exposed = set(" ".join(rest for key, rest in stage if key == "EXPOSE").split())
    for address in (server.get("listen", ""), management):
        require(address.rsplit(":", 1)[-1] in exposed, f"`{address}`'s port is not EXPOSEd ({exposed})")

    require(STATE in exec_form(only(stage, "VOLUME"), "VOLUME"), f"{STATE} is not a VOLUME")
    owned = [rest for key, rest in stage if key == "COPY" and f"--chown={USER}" in rest
             and rest.split()[-1] == STATE]
    require(len(owned) == 1, f"{STATE} is not created by a COPY --chown={USER}")
    require(only(stage, "USER") == USER, f"the image does not run as {USER}")
    store = config.get("store", {}).get("path", "")
    require(store.startswith(STATE + "/"), f"docker/broker.toml's store ({store}) is not in {STATE}")
    cmd = exec_form(only(stage, "CMD"), "CMD")
    config_path = cmd[cmd.index("--config") + 1]
    require(f"COPY docker/broker.toml {config_path}" in [f"{k} {r}" for k, r in stage],
            f"the image does not hold docker/broker.toml at {config_path}")
    print("check-dockerfile: hadolint clean; HEALTHCHECK, VOLUME, EXPOSE and USER agree with the broker")
    return command


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def probe(command: list, port: int) -> int:
    """The health command as the image runs it, at the test broker's port."""
    argv = [str(require_binary())] + command[1:]
    at = argv.index("--url") + 1
    argv[at] = argv[at].replace(f":{urlparse(argv[at]).port}/", f":{port}/", 1)
    return run(argv).returncode


def live_check(command: list) -> None:
    """docker/broker.toml served on loopback (ports and store path moved into a scratch
    directory): the health command exits 0 while it serves and 1 once it is gone."""
    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "TOKEN_BROKER_UPSTREAM_SECRET": "docker-check-secret",
            "TOKEN_BROKER__SERVER__LISTEN": "127.0.0.1:0",
            "TOKEN_BROKER__SERVER__MANAGEMENT_LISTEN": f"127.0.0.1:{port}",
            "TOKEN_BROKER__STORE__PATH": f"{scratch}/token-broker.db",
        }
        print(check_config(DEFAULT_CONFIG, env, "docker/broker.toml").rstrip())
        log = open(Path(scratch) / "serve.log", "w")
        server = subprocess.Popen(
            [str(require_binary()), "serve", "--config", str(DEFAULT_CONFIG)],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )
        try:
            deadline = time.monotonic() + 30
            while probe(command, port) != 0:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise CheckFailed("the health command never passed against a serving broker:\n"
                                      + (Path(scratch) / "serve.log").read_text())
                time.sleep(0.2)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=40)
            log.close()
        status = probe(command, port)
        require(status == 1, f"the health command exits {status}, not 1, with no broker listening")
    print("check-dockerfile: the HEALTHCHECK command exits 0 against a serving broker, 1 once it stopped")


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    try:
        live_check(static_checks())
    except CheckFailed as failure:
        sys.exit(f"check-dockerfile: FAILED: {failure}")
