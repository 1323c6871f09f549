"""The real ACP agents the tests drive, from npm, pinned by the committed lockfile in
``tests/support/acp-agents/``: Claude Code's adapter (``@zed-industries/claude-agent-acp``),
Codex's (``@zed-industries/codex-acp``, a native binary from npm), Gemini CLI (``--acp``) and
the TypeScript ACP SDK. Installed once per machine with ``npm ci`` into
``~/.cache/locus-tests/acp-agents-<hash of the lockfile>`` (offline afterwards); a missing Node
fails the test that needs it, saying how to install it (never a skip)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.programs import required

SOURCE = Path(__file__).parent / "acp-agents"
#: The Claude adapter needs Node 20 (Debian's 18 is too old).
NODE_MAJOR = 20


@dataclass(frozen=True)
class AcpAgents:
    """Where the installed agents are (``node_modules`` and each one's program)."""

    node_modules: Path

    @property
    def claude(self) -> Path:
        return self.node_modules / ".bin" / "claude-agent-acp"

    @property
    def codex(self) -> Path:
        return self.node_modules / ".bin" / "codex-acp"

    @property
    def gemini(self) -> Path:
        return self.node_modules / ".bin" / "gemini"

    @property
    def typescript_sdk(self) -> Path:
        return self.node_modules / "@agentclientprotocol" / "sdk"


def node_major() -> int:
    node = required("node", "nodejs")
    said = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    try:
        return int(said.lstrip("v").split(".")[0])
    except ValueError:
        pytest.fail(f"`node --version` said {said!r}", pytrace=False)


def installed() -> AcpAgents:
    """The pinned agents, installing them first if this machine has not yet."""
    if node_major() < NODE_MAJOR:
        pytest.fail(
            f"the ACP agents need Node {NODE_MAJOR} or newer: install it (e.g. from"
            " NodeSource's Debian packages); scripts/test.sh does",
            pytrace=False,
        )
    npm = required("npm", "npm")
    key = hashlib.sha256((SOURCE / "package-lock.json").read_bytes()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "locus-tests"
    target = cache / f"acp-agents-{key}"
    if not (target / "ready").exists():
        staging = cache / f"acp-agents-{key}.{os.getpid()}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(SOURCE / name, staging / name)
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=staging, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        if done.returncode != 0:
            pytest.fail(f"npm ci of the ACP agents failed:\n{done.stdout}\n{done.stderr}")
        (staging / "ready").touch()
        try:
            staging.rename(target)
        except OSError:  # another run got there first
            shutil.rmtree(staging, ignore_errors=True)
    return AcpAgents(target / "node_modules")
