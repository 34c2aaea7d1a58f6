"""The broker's command line as the deployment checks use it (validate-manifests.py,
check-dockerfile.py): one failure type, `check-config` on a file with a chosen
environment, and the section of README.md a check reads its commands from."""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = Path(os.environ.get("TOKEN_BROKER_BIN", ROOT / "target/debug/token-broker"))


class CheckFailed(Exception):
    """A deployment file is wrong, or a tool it needs is missing: never a skip."""


def require_binary() -> Path:
    if not BINARY.is_file():
        raise CheckFailed(f"{BINARY} is missing: build it first (cargo build --locked)")
    return BINARY


def run(args: list, env: dict | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Runs a command to its end; a command that cannot start is a failure, not a skip."""
    try:
        return subprocess.run(
            [str(a) for a in args], env=env, input=stdin, capture_output=True, text=True,
            timeout=120, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise CheckFailed(f"cannot run {args[0]}: {error}") from error


def check_config(path: Path, env: dict, what: str) -> str:
    """`token-broker check-config --config PATH` with exactly `env` (and PATH); its output."""
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
    done = run([require_binary(), "check-config", "--config", path], env=full_env)
    if done.returncode != 0 or not done.stdout.startswith("ok"):
        raise CheckFailed(
            f"{what}: check-config refused it (exit {done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return done.stdout


def readme_section(title: str) -> str:
    """The text of README.md's `## title` section, up to the next `## ` heading."""
    readme = (ROOT / "README.md").read_text()
    marker = f"\n## {title}\n"
    if marker not in readme:
        raise CheckFailed(f"README.md lost its section \"{title}\"")
    return readme.split(marker, 1)[1].split("\n## ", 1)[0]


def code_block_after(text: str, lead: str, language: str = "sh") -> str:
    """The first ```language block after the line containing `lead` in `text`."""
    at = text.find(lead)
    if at < 0:
        raise CheckFailed(f"README.md lost the line \"{lead}\"")
    rest = text[at:].split(f"```{language}\n", 1)
    if len(rest) < 2:
        raise CheckFailed(f"README.md has no ```{language} block after \"{lead}\"")
    return rest[1].split("```", 1)[0]
