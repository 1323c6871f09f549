"""Worktrees on real git repositories: isolation from the user's checkout, naming, errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from locusd.git.worktrees import WorktreeError, Worktrees, branch_name, slugify


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    sh(path, "git", "init", "-q", "-b", "main")
    sh(path, "git", "config", "user.email", "dev@example.com")
    sh(path, "git", "config", "user.name", "Dev")
    (path / "app.py").write_text("print('hi')\n")
    (path / ".gitignore").write_text(".env\n")
    sh(path, "git", "add", ".")
    sh(path, "git", "commit", "-q", "-m", "first")
    return path


def user_state(repo: Path) -> tuple[str, str, str]:
    """What must never change: current branch/HEAD, index + working tree status, file bytes."""
    return (
        sh(repo, "git", "rev-parse", "--abbrev-ref", "HEAD") + sh(repo, "git", "rev-parse", "HEAD"),
        sh(repo, "git", "status", "--porcelain", "--untracked-files=all"),
        (repo / "app.py").read_text(),
    )


def test_slugs_and_branch_names() -> None:
    assert slugify("Fix the login bug!") == "fix-the-login-bug"
    assert slugify("Ünïcödé — titles") == "unicode-titles"
    assert slugify("!!!") == "task"
    assert len(slugify("x" * 200)) == 40
    assert branch_name(42, "Add a cache") == "locus/42-add-a-cache"


def test_create_leaves_the_users_checkout_alone(repo: Path, tmp_path: Path) -> None:
    # The user is mid-work: a staged change, an unstaged change, an untracked file.
    (repo / "app.py").write_text("print('editing')\n")
    (repo / "notes.txt").write_text("todo\n")
    (repo / "staged.py").write_text("x = 1\n")
    sh(repo, "git", "add", "staged.py")
    before = user_state(repo)
    base = sh(repo, "git", "rev-parse", "HEAD")

    trees = Worktrees(repo, tmp_path / "worktrees")
    wt = trees.create(7, "Fix the greeting")
    assert wt.branch == "locus/7-fix-the-greeting"
    assert wt.base_commit == base
    assert (wt.path / "app.py").read_text() == "print('hi')\n"  # the commit, not the user's edit
    assert not (wt.path / "notes.txt").exists()
    assert sh(wt.path, "git", "rev-parse", "--abbrev-ref", "HEAD") == wt.branch

    (wt.path / "app.py").write_text("print('fixed')\n")  # the agent works
    assert user_state(repo) == before
    assert [w.branch for w in trees.list()] == [wt.branch]


def test_remove_refuses_uncommitted_work_and_keeps_the_branch(repo: Path, tmp_path: Path) -> None:
    trees = Worktrees(repo, tmp_path / "worktrees")
    wt = trees.create(1, "Edit")
    (wt.path / "app.py").write_text("changed\n")
    with pytest.raises(WorktreeError, match="uncommitted changes"):
        trees.remove(wt)
    assert wt.path.exists()
    sh(wt.path, "git", "commit", "-qam", "agent work")
    trees.remove(wt)
    assert not wt.path.exists() and trees.list() == []
    assert sh(repo, "git", "branch", "--list", wt.branch)  # committed work stays reachable


def test_detached_head_and_explicit_base(repo: Path, tmp_path: Path) -> None:
    first = sh(repo, "git", "rev-parse", "HEAD")
    (repo / "app.py").write_text("print('second')\n")
    sh(repo, "git", "commit", "-qam", "second")
    sh(repo, "git", "checkout", "-q", "--detach", first)
    trees = Worktrees(repo, tmp_path / "worktrees")
    assert trees.create(2, "From detached").base_commit == first
    with pytest.raises(WorktreeError, match="is not a commit"):
        trees.create(3, "Nowhere", base="no-such-branch")


def test_clear_errors(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(WorktreeError, match="not inside a git repository"):
        Worktrees(tmp_path / "plain", tmp_path / "wt")
    bare = tmp_path / "bare.git"
    sh(tmp_path, "git", "clone", "-q", "--bare", str(repo), str(bare))
    with pytest.raises(WorktreeError, match="bare repository"):
        Worktrees(bare, tmp_path / "wt")
    with pytest.raises(WorktreeError, match="inside the checkout"):
        Worktrees(repo, repo / ".locus-worktrees")
    trees = Worktrees(repo, tmp_path / "wt")
    trees.create(5, "Once")
    with pytest.raises(WorktreeError, match="already exists"):
        trees.create(5, "Once")
