"""The index of a real checkout: committed paths minus .locusignore, manifests read from git's
objects (never through a symlink, never over the size cap), state kept atomically, and only
changed manifests read again when HEAD moves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from locusd.graph import structure
from locusd.graph.index import index_checkout, state_file
from locusd.graph.structure import MAX_MANIFEST_BYTES, Manifest
from tests.locusd.git.test_worktrees import identity, sh

__all__ = ["identity"]  # the autouse fixture: commits without the user's git config

OUTSIDE = "CANARY_OUTSIDE_e41f"


def commit_all(repo: Path, message: str = "change") -> None:
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "project"
    (repo / "src" / "app").mkdir(parents=True)
    (repo / "private").mkdir()
    (repo / "src" / "app" / "main.py").write_text("print('hi')\n")
    (repo / "pyproject.toml").write_text('[project]\nname = "p"\ndependencies = ["click"]\n')
    (repo / "private" / "package.json").write_text('{"dependencies": {"secret-dep": "1"}}')
    (repo / "private" / "plan.md").write_text("x\n")
    (repo / ".locusignore").write_text("private/\n")
    sh(repo.parent, "git", "init", "-q", "-b", "main", str(repo))
    commit_all(repo, "first")
    return repo


def manifests(structure_manifests: tuple[Manifest, ...]) -> dict[str, Manifest]:
    return {m.path: m for m in structure_manifests}


def test_index_lists_committed_paths_without_locusignored_ones(repo: Path, tmp_path: Path) -> None:
    (repo / "uncommitted.py").write_text("x = 1\n")
    indexed = index_checkout(repo, tmp_path / "state")
    assert indexed.structure.paths == (".locusignore", "pyproject.toml", "src/app/main.py")
    assert list(manifests(indexed.structure.manifests)) == ["pyproject.toml"]
    assert indexed.structure.modules == {"src/app": 1}
    assert indexed.head == sh(repo, "git", "rev-parse", "HEAD")
    saved = state_file(tmp_path / "state", repo).read_text()
    assert "private" not in saved and "secret-dep" not in saved


def test_a_symlinked_or_huge_manifest_is_not_read(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"dependencies": {OUTSIDE: "1"}}))
    (repo / "web").mkdir()
    (repo / "web" / "package.json").symlink_to(outside)
    (repo / "Cargo.toml").write_text("# pad\n" * (MAX_MANIFEST_BYTES // 6 + 1))
    commit_all(repo)
    indexed = index_checkout(repo, tmp_path / "state")
    skipped = {s.path: s.reason for s in indexed.structure.skipped}
    assert skipped == {
        "Cargo.toml": "larger than 256 KiB",
        "web/package.json": "a symbolic link or submodule, not read",
    }
    assert OUTSIDE not in repr(indexed)


def test_past_the_manifest_cap_manifests_are_not_read(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repository of thousands of manifests cannot make the index run thousands of git
    commands (the cap lowered so the test stays small)."""
    monkeypatch.setattr(structure, "MAX_MANIFESTS", 2)
    for name in ("a", "b", "c"):
        (repo / name).mkdir()
        (repo / name / "go.mod").write_text(f"module {name}\n")
    commit_all(repo)
    indexed = index_checkout(repo, tmp_path / "state")
    assert indexed.manifests_read == 2  # the top one first, then a/go.mod
    assert [(s.path, s.reason) for s in indexed.structure.skipped] == [
        ("b/go.mod", "past the first 2 manifests"),
        ("c/go.mod", "past the first 2 manifests"),
    ]


def test_only_changed_manifests_are_read_again_when_head_moves(repo: Path, tmp_path: Path) -> None:
    (repo / "go.mod").write_text("module x\nrequire example.com/a v1.0.0\n")
    commit_all(repo)
    state = tmp_path / "state"
    assert index_checkout(repo, state).manifests_read == 2
    assert index_checkout(repo, state).manifests_read == 0
    (repo / "go.mod").write_text("module x\nrequire example.com/b v1.0.0\n")
    (repo / "src" / "new.py").write_text("y = 2\n")
    commit_all(repo)
    again = index_checkout(repo, state)
    assert again.manifests_read == 1
    assert manifests(again.structure.manifests)["go.mod"].dependencies == {
        "runtime": ("example.com/b",)
    }
    assert "src/new.py" in again.structure.paths


def test_dry_run_leaves_the_state_alone_and_a_damaged_state_is_rebuilt(
    repo: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    index_checkout(repo, state, save=False)
    assert not state_file(state, repo).exists()
    state_file(state, repo).parent.mkdir(parents=True)
    state_file(state, repo).write_text('{"version": 1, "manifests": {"pyproject.toml": 3}')
    rebuilt = index_checkout(repo, state)
    assert rebuilt.manifests_read == 1
    assert json.loads(state_file(state, repo).read_text())["head"] == rebuilt.head


def test_a_repository_without_commits_indexes_empty(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    sh(tmp_path, "git", "init", "-q", str(empty))
    (empty / "a.py").write_text("")
    indexed = index_checkout(empty, tmp_path / "state")
    assert indexed.head is None and indexed.structure.paths == ()


def test_the_state_survives_kill_9_mid_write(repo: Path, tmp_path: Path) -> None:
    """An index SIGKILLed with half its new state written leaves the old state whole; the next
    index reads again only what changed."""
    state = tmp_path / "state"
    first = index_checkout(repo, state)
    (repo / "go.mod").write_text("module x\nrequire example.com/a v1.0.0\n")
    commit_all(repo)
    killed = subprocess.run(
        [sys.executable, "-c", "import sys; from pathlib import Path; "
         "from locusd.graph.index import index_checkout; "
         "index_checkout(Path(sys.argv[1]), Path(sys.argv[2]))", str(repo), str(state)],
        env={**os.environ, "LOCUS_CRASH_AT": "graph.state_writing"},
        cwd=Path(__file__).resolve().parents[3], check=False, timeout=60,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL
    assert json.loads(state_file(state, repo).read_text())["head"] == first.head
    again = index_checkout(repo, state)
    assert again.manifests_read == 1 and again.head != first.head
