"""The repository facade on real repositories: remotes, refs and upstreams, config as git reads
it, worktree listing, history with trailers, the environment git gets (nothing of the daemon's
repository variables, no prompts), timeouts that kill the whole process group, and one git
process per question."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from locusd.git import programs
from locusd.git.cli import TimedOut
from locusd.git.commits import message
from locusd.git.remotes import remotes
from locusd.git.repo import Repository, RepositoryError
from locusd.git.worktrees import Worktrees
from tests.locusd.git.test_worktrees import commit, identity, sh

__all__ = ["identity"]  # the autouse fixture: commits without the user's git config


def make_repo(where: Path) -> Path:
    where.mkdir()
    sh(where, "git", "init", "-q", "-b", "main")
    commit(where, "app.py", "print('hi')\n", "first")
    return where


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "project")


@pytest.fixture
def other(tmp_path: Path) -> Path:
    """Another repository, for the daemon's environment to point at."""
    path = make_repo(tmp_path / "other")
    sh(path, "git", "remote", "add", "elsewhere", "https://example.com/other.git")
    return path


# -- opening -------------------------------------------------------------------------------------


def test_opening_finds_the_checkout_and_refuses_what_is_not_one(repo: Path, tmp_path: Path) -> None:
    (repo / "src").mkdir()
    opened = Repository(repo / "src")
    assert (opened.path, opened.git_dir, opened.common_dir) == (repo, repo / ".git", repo / ".git")
    (tmp_path / "plain").mkdir()
    with pytest.raises(RepositoryError, match="not inside a git repository: point Locus at a"):
        Repository(tmp_path / "plain")
    with pytest.raises(RepositoryError, match="not inside a git repository: no such directory"):
        Repository(tmp_path / "missing")
    sh(tmp_path, "git", "clone", "-q", "--bare", str(repo), "bare.git")
    with pytest.raises(RepositoryError, match="is a bare repository: point Locus at a checkout"):
        Repository(tmp_path / "bare.git")
    with pytest.raises(RepositoryError, match=r"inside a \.git directory"):
        Repository(repo / ".git" / "refs")


def test_a_linked_worktree_knows_its_common_dir(repo: Path, tmp_path: Path) -> None:
    sh(repo, "git", "worktree", "add", "-q", "-b", "side", str(tmp_path / "side"))
    side = Repository(tmp_path / "side")
    assert side.path == tmp_path / "side"
    assert side.common_dir == repo / ".git"
    assert side.git_dir == repo / ".git" / "worktrees" / "side"
    assert side.current_branch() == "side"


def test_init_makes_a_repository_on_the_branch_named(tmp_path: Path) -> None:
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "file.txt").write_text("x\n")
    made = Repository.init(tmp_path / "new", "trunk")
    assert made.path == tmp_path / "new"
    assert made.current_branch() == "trunk"
    assert made.resolve("HEAD") is None, "no commit yet"


# -- refs, config, remotes -----------------------------------------------------------------------


def test_refs_branches_and_ancestry(repo: Path) -> None:
    first = sh(repo, "git", "rev-parse", "HEAD")
    second = commit(repo, "b.txt", "b\n", "second")
    opened = Repository(repo)
    assert opened.resolve("HEAD") == second
    assert opened.resolve("HEAD~1") == first
    assert opened.resolve("main") == second
    assert opened.resolve("no-such-branch") is None
    assert opened.resolve("--all") is None, "a rev, never an option"
    assert opened.branch_exists("main") and not opened.branch_exists("side")
    assert opened.is_ancestor(first, second) and opened.is_ancestor(second, second)
    assert not opened.is_ancestor(second, first)
    sh(repo, "git", "checkout", "-q", "-b", "locus/7-x")
    assert opened.current_branch() == "locus/7-x"
    sh(repo, "git", "checkout", "-q", "--detach")
    assert opened.current_branch() is None


def test_upstream_and_its_remote(repo: Path, tmp_path: Path) -> None:
    sh(tmp_path, "git", "clone", "-q", "--bare", str(repo), "origin.git")
    user = tmp_path / "user"
    sh(tmp_path, "git", "clone", "-q", str(tmp_path / "origin.git"), str(user))
    opened = Repository(user)
    assert opened.upstream() == sh(user, "git", "rev-parse", "origin/main")
    assert opened.upstream_remote() == "origin"
    sh(user, "git", "checkout", "-q", "-b", "mine")
    assert opened.upstream() is None and opened.upstream_remote() is None
    sh(user, "git", "checkout", "-q", "--detach")
    assert opened.upstream() is None and opened.upstream_remote() is None


def test_remotes_are_read_as_git_uses_them(repo: Path) -> None:
    opened = Repository(repo)
    assert opened.remotes() == {}
    sh(repo, "git", "remote", "add", "origin", "gh:acme/app.git")
    sh(repo, "git", "config", "url.https://github.com/.insteadOf", "gh:")
    sh(repo, "git", "remote", "add", "backup", "ssh://git@example.com/app.git")
    sh(repo, "git", "config", "--add", "remote.backup.url", "https://mirror.example.com/app.git")
    assert opened.remotes() == {
        "origin": "https://github.com/acme/app.git",  # insteadOf applied
        "backup": "ssh://git@example.com/app.git",  # the first URL, as git remote get-url
    }


def test_a_local_path_remote_names_no_project_and_is_no_error(repo: Path, tmp_path: Path) -> None:
    """A clone of a clone (``origin`` a path) beside a hosted remote: the hosted one is what
    a cloud project can list; the path is passed over (it used to fail every project lookup)."""
    sh(repo, "git", "remote", "add", "origin", str(tmp_path / "upstream"))
    assert remotes(repo) == {}
    sh(repo, "git", "remote", "add", "hub", "git@github.com:acme/app.git")
    assert remotes(repo) == {"github.com/acme/app": "git@github.com:acme/app.git"}


def test_config_is_read_by_git(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened = Repository(repo)
    assert opened.config("locus.test") is None
    sh(repo, "git", "config", "user.name", "Ada")
    assert opened.config("user.name") == "Ada"
    # Also what only git itself knows of: configuration given in the environment.
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "user.name")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "Grace")
    assert opened.config("user.name") == "Grace"


# -- worktrees, history ------------------------------------------------------------------------


def test_worktree_listing(repo: Path, tmp_path: Path) -> None:
    head = sh(repo, "git", "rev-parse", "HEAD")
    opened = Repository(repo)
    opened.add_worktree(tmp_path / "a b", head)
    sh(tmp_path / "a b", "git", "checkout", "-q", "-b", "locus/1-a")
    sh(repo, "git", "worktree", "add", "-q", "--detach", str(tmp_path / "detached"))
    sh(repo, "git", "worktree", "lock", "--reason", "in use", str(tmp_path / "detached"))
    listed = opened.worktrees()
    assert [(w.path, w.branch, w.head, w.locked, w.main) for w in listed] == [
        (repo, "main", head, False, True),
        (tmp_path / "a b", "locus/1-a", head, False, False),
        (tmp_path / "detached", "", head, True, False),
    ]


def test_commits_since_a_base_with_their_trailers(repo: Path) -> None:
    base = sh(repo, "git", "rev-parse", "HEAD")
    one = commit(repo, "a.txt", "a\n", message("Fix the bug", "Why:\n\nit was wrong", 42))
    two = commit(repo, "b.txt", "b\n", "Other\n\nLocus-Task: 7\n\nnot a trailer: the last line")
    three = commit(repo, "c.txt", "c\n", "Run\n\nLocus-Task: local-1\nLocus-Run: r-9\n")
    found = Repository(repo).commits_since(base, "main")
    assert [c.sha for c in found] == [three, two, one], "newest first"
    assert found[2].message == message("Fix the bug", "Why:\n\nit was wrong", 42)
    assert found[2].trailers == (("Locus-Task", "42"),)
    assert found[2].has_trailer("Locus-Task", "42")
    assert found[2].has_trailer("locus-task", "42") and not found[2].has_trailer("Locus-Task", "4")
    assert found[1].trailers == (), "only the message's last paragraph holds trailers"
    assert found[0].trailers == (("Locus-Task", "local-1"), ("Locus-Run", "r-9"))
    assert Repository(repo).commits_since("main", "main") == []


def test_contains_patch(repo: Path) -> None:
    base = sh(repo, "git", "rev-parse", "HEAD")
    (repo / "app.py").write_text("print('bye')\n")
    (repo / "new.txt").write_text("new\n")
    opened = Repository(repo)
    patch = opened.diff_against(base)
    assert "new.txt" in patch and "bye" in patch
    assert not opened.contains_patch(base, patch)
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-q", "-m", "the change")
    assert opened.contains_patch("HEAD", patch)
    assert sh(repo, "git", "status", "--porcelain") == "", "the real index is untouched"


# -- the environment git gets ------------------------------------------------------------------


REPOSITORY_VARIABLES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR")


def point_at(other: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a daemon started from a git hook in ``other`` would inherit."""
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    monkeypatch.setenv("GIT_INDEX_FILE", str(other / ".git" / "index"))
    monkeypatch.setenv("GIT_COMMON_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_OBJECT_DIRECTORY", str(other / ".git" / "objects"))
    monkeypatch.setenv("GIT_PREFIX", "sub/")


def test_the_daemons_repository_variables_never_redirect_git(
    repo: Path, other: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    head = sh(repo, "git", "rev-parse", "HEAD")
    point_at(other, monkeypatch)
    monkeypatch.chdir(other)  # and it runs in another checkout
    opened = Repository(repo)
    assert (opened.path, opened.common_dir) == (repo, repo / ".git")
    assert opened.resolve("HEAD") == head
    assert opened.remotes() == {}, "not the other repository's remote"
    other_index = (other / ".git" / "index").read_bytes()
    trees = Worktrees(repo, tmp_path / "wt")
    made = trees.create(1, "Env")
    assert (made.path / "app.py").is_file()
    assert [w.path for w in trees.list()] == [made.path]
    assert (other / ".git" / "index").read_bytes() == other_index, "the other index untouched"
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR",
                 "GIT_OBJECT_DIRECTORY", "GIT_PREFIX"):  # fmt: skip
        monkeypatch.delenv(name)
    assert sh(other, "git", "worktree", "list", "--porcelain").count("worktree ") == 1


def test_git_gets_no_prompts_no_lfs_downloads_and_no_repository_variables(
    repo: Path, other: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(other, monkeypatch)
    monkeypatch.setenv("TEST_KEPT", "yes")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-secret")
    monkeypatch.setenv("LOCUS_TOKEN", "secret")
    env = Repository(repo).output("-c", "alias.env=!env", "env")
    seen = dict(line.partition("=")[::2] for line in env.splitlines())
    assert seen["GIT_TERMINAL_PROMPT"] == "0"
    assert seen["GIT_LFS_SKIP_SMUDGE"] == "1"
    assert seen["TEST_KEPT"] == "yes", "the rest of the environment is kept"
    assert "ANTHROPIC_API_KEY" not in seen and "LOCUS_TOKEN" not in seen, "secrets are not"
    leaked = [v for v in (*REPOSITORY_VARIABLES, "GIT_OBJECT_DIRECTORY") if v in seen]
    assert leaked == []


def test_a_path_that_is_not_a_repository_is_never_the_daemons_cwd(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))
    (tmp_path / "plain").mkdir()
    with pytest.raises(RepositoryError, match="not inside a git repository"):
        Repository(tmp_path / "plain")


# -- timeouts ------------------------------------------------------------------------------------


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.timeout(120)
def test_a_timeout_kills_the_whole_process_group(repo: Path, tmp_path: Path) -> None:
    """A command that leaves a grandchild behind, re-parented away from it (as a shell's
    background job is) and not holding its output: killing the command alone, or its
    children as they are at that moment, leaves that grandchild running."""
    pid_file = tmp_path / "grandchild.pid"
    quiet = ">/dev/null 2>&1"  # so that nothing left running keeps the output pipe open
    hang = f"!(sleep 300 {quiet} & echo $! > '{pid_file}'); exec sleep 300 {quiet}"
    with pytest.raises(TimedOut, match="took over 1 s"):
        Repository(repo).run("-c", f"alias.hang={hang}", "hang", timeout=1)
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 30  # a wait for the kernel, not a speed threshold
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    survived = alive(grandchild)
    if survived:
        os.kill(grandchild, 9)
    assert not survived, "the grandchild outlived the timeout"


# -- cost: one git process per question (and its config listing) ----------------------------------------------------------


@pytest.fixture
def counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``git`` first on PATH that logs each run (its subcommand) and runs the real one."""
    real = subprocess.run(["which", "git"], capture_output=True, text=True).stdout.strip()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "git.log"
    wrapper = bin_dir / "git"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


LISTING = "config --list -z --show-scope"


def runs(log: Path) -> list[str]:
    """The subcommands run; a command that could run a program the config names comes right
    after the configuration listing that hardens it (locusd/git/programs.py), counted apart."""
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    calls = [line for line in lines if line != LISTING]
    listed = [line for line in calls if programs.needs_listing(line.split())]
    assert lines.count(LISTING) == len(listed), lines
    return [line.split()[0] for line in calls]


def test_opening_runs_no_git_and_each_question_runs_one(repo: Path, counted: Path) -> None:
    opened = Repository(repo)
    assert opened.current_branch() == "main"
    assert runs(counted) == [], "opening and reading HEAD run no process"
    opened.resolve("HEAD")
    opened.remotes()
    opened.worktrees()
    opened.config("user.name")
    opened.has_changes()
    assert runs(counted) == ["rev-parse", "remote", "worktree", "config", "status"]


def test_creating_a_worktree_runs_what_plain_git_would_and_four_cheap_calls(
    repo: Path, tmp_path: Path, counted: Path
) -> None:
    """The hot path of ``python -m bench.worktrees``: no process more than before GitPython
    (the status runs in parallel with the add; no branch is looked up, none is made)."""
    trees = Worktrees(repo, tmp_path / "wt")
    assert runs(counted) == []
    trees.create(1, "Count")
    assert sorted(runs(counted)) == sorted(
        ["remote", "rev-parse", "rev-parse", "--no-optional-locks", "worktree"]
    )
