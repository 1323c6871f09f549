"""The VS Code extension built and packaged as its README says, in a temp copy: ``npm ci`` from
the committed lockfile into a per-machine cache keyed by the lockfile's hash (under
~/.cache/locus-tests, never in the repository), then ``npm run build`` and ``npm run package``;
and its Node tests run with their ``# pass``/``# fail`` counts read back."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.locusd.cliuser import LOCUS
from tests.support.programs import required

ROOT = Path(__file__).parents[2]
SOURCE = ROOT / "editor-clients" / "vscode"
LOCUSD = str(Path(LOCUS).parent / "locusd")
SKIP = {"node_modules", "dist", "dist-test", "generated"}


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}", pytrace=False)
    return done.stdout


def cached_node_modules() -> Path:
    """node_modules for the lockfile, installed once per machine (npm ci, offline afterwards)."""
    npm = required("npm", "npm")
    key = hashlib.sha256((SOURCE / "package-lock.json").read_bytes()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "locus-tests"
    target = cache / f"vscode-{key}"
    if not (target / "node_modules" / ".package-lock.json").exists():
        staging = cache / f"vscode-{key}.{os.getpid()}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(SOURCE / name, staging / name)
        _run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], staging)
        try:
            staging.rename(target)
        except OSError:  # another run got there first
            shutil.rmtree(staging, ignore_errors=True)
    return target / "node_modules"


@dataclass
class Built:
    where: Path
    vsix: Path


def build(tmp: Path) -> Built:
    """Copy the sources, link the cached node_modules, build (types generated from
    docs/protocol.schema.json, type-checked, bundled) and package the .vsix."""
    required("node", "nodejs")
    npm = required("npm", "npm")
    where = tmp / "vscode"
    shutil.copytree(SOURCE, where, ignore=lambda _d, names: [n for n in names if n in SKIP])
    (where / "node_modules").symlink_to(cached_node_modules())
    env = {**os.environ, "LOCUS_PROTOCOL_SCHEMA": str(ROOT / "docs" / "protocol.schema.json")}
    _run([npm, "run", "--silent", "build"], where, env)
    _run([npm, "run", "--silent", "package"], where, env)
    return Built(where, where / "dist" / "locus-vscode.vsix")


def node_tests(where: Path, files: list[str], env: dict[str, str]) -> tuple[int, int, str]:
    """Run Node test files (node --test, TAP): (passed, failed, the output)."""
    done = subprocess.run(
        ["node", "--test", "--test-reporter=tap", *files],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = done.stdout + done.stderr
    counts = {k: int(v) for k, v in re.findall(r"^# (pass|fail|cancelled) (\d+)$", output, re.M)}
    passed, failed = counts.get("pass", 0), counts.get("fail", 0) + counts.get("cancelled", 0)
    if done.returncode != 0 and failed == 0:
        failed = 1  # node itself failed (a crash, a file that did not load)
    print(f"{passed} passed, {failed} failed")
    return passed, failed, output
