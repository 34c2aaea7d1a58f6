#!/usr/bin/env python3
"""Checks what scripts/release.sh produced, against Cargo.lock as cargo resolves it for
the production build (no `dev-idp` feature, this host's target):

  release-check.py sbom FILE       FILE is a CycloneDX JSON SBOM naming token-broker and
                                   every direct dependency at its locked version
  release-check.py auditable BIN   BIN carries cargo-auditable's dependency list (the
                                   zlib-compressed JSON of section .dep-v0, read with
                                   objcopy): token-broker and every direct dependency at
                                   its locked version; with --sbom FILE, every crate in
                                   it is also in the SBOM at the same version

Exits non-zero with the reasons on stderr; prints one line per check that holds.
"""

import json
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fail(message):
    print(f"release-check: {message}", file=sys.stderr)
    sys.exit(1)


def direct_dependencies():
    """(name, version) of the root's normal dependencies, resolved from Cargo.lock."""
    host = subprocess.run(
        ["rustc", "-vV"], check=True, capture_output=True, text=True
    ).stdout
    target = next(
        line.split(": ", 1)[1] for line in host.splitlines() if line.startswith("host: ")
    )
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--locked", "--format-version", "1",
             "--no-default-features", "--filter-platform", target],
            check=True, capture_output=True, text=True, cwd=ROOT,
        ).stdout
    )
    packages = {p["id"]: p for p in metadata["packages"]}
    root_id = metadata["resolve"]["root"]
    root = packages[root_id]
    node = next(n for n in metadata["resolve"]["nodes"] if n["id"] == root_id)
    direct = set()
    for dep in node["deps"]:
        if any(kind["kind"] is None for kind in dep["dep_kinds"]):
            package = packages[dep["pkg"]]
            direct.add((package["name"], package["version"]))
    if not direct:
        fail("cargo metadata names no direct dependency")
    return (root["name"], root["version"]), direct


def components(bom):
    """Every (name, version) among the SBOM's components, nested ones included."""
    found = set()
    stack = list(bom.get("components", []))
    while stack:
        component = stack.pop()
        found.add((component.get("name"), component.get("version")))
        stack.extend(component.get("components", []))
    return found


def read_sbom(path):
    try:
        bom = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        fail(f"{path} is not readable JSON: {error}")
    if bom.get("bomFormat") != "CycloneDX":
        fail(f"{path}: bomFormat is {bom.get('bomFormat')!r}, not CycloneDX")
    return bom


def check_sbom(path):
    (name, version), direct = direct_dependencies()
    bom = read_sbom(path)
    subject = bom.get("metadata", {}).get("component", {})
    if (subject.get("name"), subject.get("version")) != (name, version):
        fail(f"{path} describes {subject.get('name')} {subject.get('version')}, not {name} {version}")
    listed = components(bom)
    missing = sorted(direct - listed)
    if missing:
        fail(f"{path} lacks direct dependencies: {missing}")
    print(f"sbom: {path}: CycloneDX {bom.get('specVersion')} for {name} {version}, "
          f"{len(listed)} components, all {len(direct)} direct dependencies at their locked versions")


def embedded_dependencies(binary):
    """cargo-auditable's list: section .dep-v0, zlib-compressed JSON."""
    with tempfile.TemporaryDirectory() as work:
        section = Path(work) / "dep-v0"
        result = subprocess.run(
            ["objcopy", "--dump-section", f".dep-v0={section}", str(binary), str(Path(work) / "copy")],
            capture_output=True, text=True,
        )
        if result.returncode != 0 or not section.exists():
            fail(f"{binary} has no .dep-v0 section (not built by cargo auditable?): {result.stderr.strip()}")
        try:
            return json.loads(zlib.decompress(section.read_bytes()))
        except (zlib.error, ValueError) as error:
            fail(f"{binary}: .dep-v0 is not zlib-compressed JSON: {error}")


def check_auditable(binary, sbom_path):
    (name, version), direct = direct_dependencies()
    packages = embedded_dependencies(binary)["packages"]
    embedded = {(p["name"], p["version"]) for p in packages}
    roots = [(p["name"], p["version"]) for p in packages if p.get("root")]
    if roots != [(name, version)]:
        fail(f"{binary}: the embedded root is {roots}, not {name} {version}")
    missing = sorted(direct - embedded)
    if missing:
        fail(f"{binary}: the embedded list lacks direct dependencies: {missing}")
    print(f"auditable: {binary}: {len(embedded)} crates embedded, {name} {version} and "
          f"all {len(direct)} direct dependencies at their locked versions")
    if sbom_path:
        absent = sorted(embedded - components(read_sbom(sbom_path)) - {(name, version)})
        if absent:
            fail(f"{binary} holds crates the SBOM {sbom_path} does not list: {absent}")
        print(f"auditable: every crate in {binary} is in {sbom_path} at the same version")


def main(args):
    if len(args) == 2 and args[0] == "sbom":
        check_sbom(args[1])
    elif len(args) in (2, 4) and args[0] == "auditable" and (len(args) == 2 or args[2] == "--sbom"):
        check_auditable(args[1], args[3] if len(args) == 4 else None)
    else:
        fail("usage: release-check.py sbom FILE | auditable BIN [--sbom FILE]")


if __name__ == "__main__":
    main(sys.argv[1:])
