"""code-server (VS Code in the browser) from npm, installed once per machine under
~/.cache/locus-tests/code-server-<version>/ with nothing downloaded outside the npm registry:
its packages are installed with their scripts off, then only the native modules the workbench
needs are built from source against Debian's Node headers, and Debian's ``rg`` is linked where
VS Code looks for it (its own package would fetch one from GitHub). code-server 4.100 is
VS Code 1.100 and wants Node 20."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.programs import required

VERSION = "4.100.3"
#: Built from source: code-server's password hashing (imported at start), VS Code's logger and
#: its watchdog. The terminal's node-pty is left out: the workbench tests open no terminal.
SERVER_NATIVE = ["argon2"]
VSCODE_NATIVE = ["@vscode/spdlog", "native-watchdog"]
QUIET = ["--no-audit", "--no-fund", "--loglevel=error"]


def _npm(args: list[str], cwd: Path) -> None:
    npm = required("npm", "npm")
    env = {**os.environ, "npm_config_nodedir": "/usr", "npm_config_build_from_source": "true"}
    done = subprocess.run(
        [npm, *args, *QUIET], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        pytest.fail(f"npm {' '.join(args)} in {cwd} failed:\n{done.stdout}\n{done.stderr}")


def installed() -> Path:
    """code-server's entry point (``out/node/entry.js``), installing it first if needed."""
    node = required("node", "nodejs")
    major = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
    if not major.startswith("v20."):
        pytest.fail(f"code-server {VERSION} needs Node 20; `node --version` says {major.strip()}")
    if not Path("/usr/include/node/node.h").exists():
        pytest.fail("Node's headers are missing (/usr/include/node): apt-get install nodejs")
    rg = required("rg", "ripgrep")
    required("make", "make")
    required("g++", "g++")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "locus-tests"
    target = cache / f"code-server-{VERSION}"
    package = target / "node_modules" / "code-server"
    if (target / "ready").exists():
        return package / "out" / "node" / "entry.js"
    staging = cache / f"code-server-{VERSION}.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (staging / "package.json").write_text('{"private": true}\n')
    _npm(["install", "--ignore-scripts", f"code-server@{VERSION}"], staging)
    _npm(["rebuild", *SERVER_NATIVE], staging)
    vscode = staging / "node_modules" / "code-server" / "lib" / "vscode"
    _npm(["install", "--ignore-scripts", "--omit=dev"], vscode)
    _npm(["rebuild", *VSCODE_NATIVE], vscode)
    # What code-server's postinstall does, minus the downloads: VS Code looks for its unpacked
    # modules (rg among them) in node_modules.asar.
    (vscode / "node_modules.asar").symlink_to("node_modules")
    ripgrep = vscode / "node_modules" / "@vscode" / "ripgrep" / "bin"
    ripgrep.mkdir(exist_ok=True)
    (ripgrep / "rg").symlink_to(rg)
    (staging / "ready").touch()
    try:
        staging.rename(target)
    except OSError:  # another run got there first
        shutil.rmtree(staging, ignore_errors=True)
    return package / "out" / "node" / "entry.js"
