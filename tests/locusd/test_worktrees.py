"""Worktrees on real git repositories: isolation from the user's checkout, naming, errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from locusd.git.worktrees import WorktreeError, Worktrees, branch_name, slugify
from locusd.repo_config import RepoConfig, RepoConfigError
from locusd.repo_config import load as load_repo_config


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


def test_bootstrap_copies_named_files_and_runs_setup(repo: Path, tmp_path: Path) -> None:
    (repo / ".env").write_text("SECRET=1\n")  # ignored: a checkout of the commit lacks it
    outside = tmp_path / "outside.txt"
    outside.write_text("not yours\n")
    (repo / "link.env").symlink_to(outside)
    config = RepoConfig.model_validate(
        {"copy": [".env", "*.env", "missing.txt"], "setup": "echo ready > .setup-done"}
    )
    trees = Worktrees(repo, tmp_path / "wt")
    wt = trees.create(1, "Boot")
    trees.bootstrap(wt, config)
    assert (wt.path / ".env").read_text() == "SECRET=1\n"
    assert not (wt.path / "link.env").exists(), "symlinks are not followed out of the checkout"
    assert (wt.path / ".setup-done").read_text() == "ready\n"
    assert not (repo / ".setup-done").exists()
    failing = RepoConfig.model_validate({"setup": "echo broken >&2; exit 3"})
    with pytest.raises(WorktreeError, match=r"exit code 3:\n.*broken"):
        trees.bootstrap(wt, failing)


def test_reuse_keeps_ignored_caches_and_resets_the_rest(repo: Path, tmp_path: Path) -> None:
    (repo / ".gitignore").write_text(".env\ncache/\n")
    sh(repo, "git", "commit", "-qam", "ignore cache")
    trees = Worktrees(repo, tmp_path / "wt")
    first = trees.create(1, "First")
    (first.path / "cache").mkdir()
    (first.path / "cache" / "built.o").write_text("warm\n")
    (first.path / "app.py").write_text("print('first task')\n")
    with pytest.raises(WorktreeError, match="uncommitted"):
        trees.reuse(first, 2, "Second")
    sh(first.path, "git", "commit", "-qam", "first task done")  # the work is committed
    (repo / "app.py").write_text("print('new base')\n")
    sh(repo, "git", "commit", "-qam", "new base")

    second = trees.reuse(first, 2, "Second")
    assert second.path == first.path and second.branch == "locus/2-second"
    assert second.base_commit == sh(repo, "git", "rev-parse", "HEAD")
    assert (second.path / "app.py").read_text() == "print('new base')\n"
    assert (second.path / "cache" / "built.o").read_text() == "warm\n", "build cache kept"
    assert not trees.is_dirty(second)
    assert sh(repo, "git", "branch", "--list", "locus/1-first"), "the first task's work stays"


def test_repo_config_errors_name_the_file_and_field(repo: Path) -> None:
    assert load_repo_config(repo) == RepoConfig()
    (repo / ".locus.toml").write_text('setup = "make"\ncopy = [".env"]\n[model]\nname = "x"\n')
    config = load_repo_config(repo)
    assert config.setup == "make" and config.copy_files == [".env"]
    (repo / ".locus.toml").write_text("setup = [1]\n")
    with pytest.raises(RepoConfigError, match=r"\.locus\.toml: setup"):
        load_repo_config(repo)
    (repo / ".locus.toml").write_text("setup = \n")
    with pytest.raises(RepoConfigError, match="not valid TOML"):
        load_repo_config(repo)
