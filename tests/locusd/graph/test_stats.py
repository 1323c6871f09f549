"""The history part of the upload: per-path changes, co-change pairs and finished tasks' files,
read from a real repository (docs/graph.md, "History")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from locusd.git.repo import Repository
from locusd.graph.history import read_history, read_task_files
from locusd.graph.rank import HistoryIndex
from locusd.graph.snapshot import snapshot
from locusd.graph.stats import history_stats
from tests.locusd.git.test_worktrees import identity, sh

__all__ = ["identity"]  # the autouse fixture: commits without the user's git config


def change(repo: Path, message: str, *names: str) -> None:
    for name in names:
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as out:
            out.write(f"{message}\n")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "project"
    sh(tmp_path, "git", "init", "-q", "-b", "main", str(repo))
    change(repo, "start", "src/a.py", "src/b.py", "README.md")
    change(repo, "fix a and b", "src/a.py", "src/b.py")
    change(repo, "again a and b", "src/a.py", "src/b.py")
    change(repo, "only c", "src/c.py")
    return repo


def test_counts_times_and_pairs_changed_together_at_least_twice(repo: Path) -> None:
    history = HistoryIndex(read_history(Repository(repo)))
    stats = history_stats(history)
    assert stats.co_change == {("src/a.py", "src/b.py"): 3}  # README went with them once only
    assert {p: h.changes for p, h in stats.paths.items()} == {
        "src/a.py": 3,
        "src/b.py": 3,
        "README.md": 1,
        "src/c.py": 1,
    }
    newest = max(h.last_change for h in stats.paths.values())
    assert stats.paths["src/c.py"].last_change == newest
    assert history_stats(history, min_together=4).co_change == {}


def test_finished_tasks_are_the_commits_with_a_task_trailer_on_head_or_a_locus_branch(
    repo: Path,
) -> None:
    change(repo, "Fix the parser\n\nLocus-Task: 7", "src/a.py")
    sh(repo, "git", "checkout", "-q", "-b", "locus/r1-docs")
    change(repo, "Docs\n\nLocus-Task: 8", "docs/index.md")
    sh(repo, "git", "checkout", "-q", "main")
    sh(repo, "git", "checkout", "-q", "-b", "elsewhere")  # not a locus/ branch: not read
    change(repo, "Other\n\nLocus-Task: 9", "src/c.py")
    sh(repo, "git", "checkout", "-q", "main")
    # The repository's own text: only a whole positive number is a task id.
    change(repo, "Hostile\n\nLocus-Task: 10; rm -rf /", "src/b.py")
    change(repo, "Huge\n\nLocus-Task: 99999999999", "src/b.py")
    assert read_task_files(Repository(repo)) == {7: ("src/a.py",), 8: ("docs/index.md",)}


def test_the_upload_carries_history_and_tasks_and_never_a_message(
    repo: Path, tmp_path: Path
) -> None:
    change(repo, "Fix the parser canary-subject\n\ncanary-body\n\nLocus-Task: 7", "src/a.py")
    body = snapshot(repo, tmp_path / "state").payload.body
    assert b"canary" not in body
    doc = json.loads(body)
    files = {n["key"]: n["attrs"] for n in doc["nodes"] if n["kind"] == "file"}
    assert files["src/a.py"]["changes"] == 4
    edges = {(e["src"]["key"], e["dst"]["key"], e["kind"]): e.get("weight") for e in doc["edges"]}
    assert edges[("src/a.py", "src/b.py", "co_change")] == 3
    assert ("7", "src/a.py", "touched") in edges
