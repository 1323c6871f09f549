"""``locus graph show``: the exact body that would be sent (``--json``), a readable account
otherwise, and a clear error for a path that is not a repository."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from locusd.graph.index import state_file
from locusd.graph.snapshot import snapshot
from locusd.graph.upload import wire_body
from locusd.privacy import Scrubber
from tests.locusd.cliuser import LOCUS
from tests.locusd.git.test_worktrees import identity, sh

__all__ = ["identity"]  # the autouse fixture: commits without the user's git config


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LOCUS")}
    return environ | {"XDG_STATE_HOME": str(tmp_path / "xdg"), "XDG_CONFIG_HOME": str(tmp_path)}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "project"
    (repo / "lib").mkdir(parents=True)
    (repo / "lib" / "a.go").write_text("package lib\n")
    (repo / "go.mod").write_text("module x\nrequire example.com/dep v1.2.3\n")
    (repo / "Cargo.toml").write_text("[dependencies\n")
    sh(repo.parent, "git", "init", "-q", "-b", "main", str(repo))
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-q", "-m", "first")
    return repo


def locus(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([LOCUS, *args], env=env, capture_output=True, timeout=60, check=False)


def test_json_is_the_exact_body_and_dry_run_saves_nothing(
    repo: Path, env: dict[str, str], tmp_path: Path
) -> None:
    done = locus(env, "graph", "show", str(repo), "--json", "--dry-run")
    assert done.returncode == 0, done.stderr
    expected = snapshot(repo, tmp_path / "mine", save=False).payload
    assert done.stdout == wire_body(expected, Scrubber.for_checkout(repo, env)) + b"\n"
    assert json.loads(done.stdout) == json.loads(expected.body)  # nothing here to scrub
    assert json.loads(done.stdout)["nodes"]
    state = tmp_path / "xdg" / "locus"
    assert not state_file(state, repo).exists()
    assert locus(env, "graph", "show", str(repo), "--json").returncode == 0
    assert state_file(state, repo).exists()


def test_the_readable_account_names_what_is_sent_and_what_was_skipped(
    repo: Path, env: dict[str, str]
) -> None:
    done = locus(env, "graph", "show", str(repo))
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode()
    assert "go:example.com/dep" in text and "go test ./..." in text and "lib/a.go" in text
    assert "skipped Cargo.toml: not valid TOML" in text


def test_a_path_that_is_not_a_repository_is_a_clear_error(
    tmp_path: Path, env: dict[str, str]
) -> None:
    done = locus(env, "graph", "show", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and b"Traceback" not in done.stderr
    assert b"not inside a git repository" in done.stderr or b"does not exist" in done.stderr
