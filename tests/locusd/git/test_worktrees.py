"""Worktrees on real git repositories: isolation from the user's checkout, naming, a fresh base
from the remote, run metadata and pruning that never loses work, submodules, LFS pointers,
errors."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from locusd.git import runmeta
from locusd.git.worktrees import Worktree, WorktreeError, Worktrees, branch_name, slugify
from locusd.repo_config import RepoConfig, RepoConfigError
from locusd.repo_config import load as load_repo_config


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def commit(repo: Path, name: str, text: str, message: str) -> str:
    (repo / name).write_text(text)
    sh(repo, "git", "add", name)
    sh(repo, "git", "commit", "-q", "-m", message)
    return sh(repo, "git", "rev-parse", "HEAD")


@pytest.fixture(autouse=True)
def identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commits anywhere (clones too) without the user's git config."""
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "Dev")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "dev@example.com")


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
    assert branch_name("local-20261124-105959", "Fix") == "locus/local-20261124-105959-fix"
    assert branch_name("v1.2_x", "Fix") == "locus/v1.2_x-fix"


@pytest.mark.parametrize("task_id", ["", "a b", "a/b", "../x", ".hidden", "x..y", "é", "x" * 101])
def test_unsafe_text_task_ids_are_refused(task_id: str, repo: Path, tmp_path: Path) -> None:
    with pytest.raises(WorktreeError, match="cannot name a branch"):
        branch_name(task_id, "Title")
    trees = Worktrees(repo, tmp_path / "wt")
    with pytest.raises(WorktreeError, match="cannot name a branch"):
        trees.create(task_id, "Title")
    assert not (tmp_path / "wt").exists()


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
    assert wt.path.name == "7-fix-the-greeting" and wt.branch == ""
    assert wt.base_commit == base
    assert (wt.path / "app.py").read_text() == "print('hi')\n"  # the commit, not the user's edit
    assert not (wt.path / "notes.txt").exists()
    assert sh(wt.path, "git", "rev-parse", "--abbrev-ref", "HEAD") == "HEAD", "detached"
    assert sh(repo, "git", "branch", "--list", "locus/*") == "", "no branch made"

    (wt.path / "app.py").write_text("print('fixed')\n")  # the agent works
    assert user_state(repo) == before
    assert [w.path for w in trees.list()] == [wt.path]


def test_remove_refuses_uncommitted_work_and_keeps_commits(repo: Path, tmp_path: Path) -> None:
    trees = Worktrees(repo, tmp_path / "worktrees")
    wt = trees.create(1, "Edit")
    (wt.path / "app.py").write_text("changed\n")
    with pytest.raises(WorktreeError, match="uncommitted changes"):
        trees.remove(wt)
    assert wt.path.exists()
    sh(wt.path, "git", "commit", "-qam", "agent work")  # on the detached HEAD: no branch has it
    made = sh(wt.path, "git", "rev-parse", "HEAD")
    trees.remove(wt)
    assert not wt.path.exists() and trees.list() == []
    # Committed work stays reachable, under the run's ref, not as a branch.
    assert sh(repo, "git", "rev-parse", "refs/locus/runs/1") == made
    assert sh(repo, "git", "branch", "--list", "locus/*") == ""


def test_detached_head_and_explicit_base(repo: Path, tmp_path: Path) -> None:
    first = sh(repo, "git", "rev-parse", "HEAD")
    (repo / "app.py").write_text("print('second')\n")
    sh(repo, "git", "commit", "-qam", "second")
    sh(repo, "git", "checkout", "-q", "--detach", first)
    trees = Worktrees(repo, tmp_path / "worktrees")
    wt = trees.create(2, "From detached")
    assert wt.base_commit == first and wt.warnings == ()
    assert sh(wt.path, "git", "rev-parse", "--abbrev-ref", "HEAD") == "HEAD"
    assert sh(repo, "git", "rev-parse", "--abbrev-ref", "HEAD") == "HEAD", "user stays detached"
    assert sh(repo, "git", "rev-parse", "HEAD") == first
    with pytest.raises(WorktreeError, match="is not a commit"):
        trees.create(3, "Nowhere", base="no-such-branch")


def test_clear_errors(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(WorktreeError, match="not inside a git repository"):
        Worktrees(tmp_path / "plain", tmp_path / "wt")
    bare = tmp_path / "bare.git"
    sh(tmp_path, "git", "clone", "-q", "--bare", str(repo), str(bare))
    with pytest.raises(WorktreeError, match="bare repository"):
        Worktrees(bare, tmp_path / "wt")
    with pytest.raises(WorktreeError, match=r"inside a \.git directory"):
        Worktrees(repo / ".git", tmp_path / "wt")
    with pytest.raises(WorktreeError, match="inside the checkout"):
        Worktrees(repo, repo / ".locus-worktrees")
    trees = Worktrees(repo, tmp_path / "wt")
    trees.create(5, "Once")
    with pytest.raises(WorktreeError, match="already exists"):
        trees.create(5, "Once")


def test_bootstrap_copies_named_files_and_runs_setup(repo: Path, tmp_path: Path) -> None:
    (repo / ".env").write_text("SECRET=1\n")  # ignored: a checkout of the commit lacks it
    config = RepoConfig.model_validate(
        {"copy": [".env", "*.env", "missing.txt"], "setup": "echo ready > .setup-done"}
    )
    trees = Worktrees(repo, tmp_path / "wt")
    wt = trees.create(1, "Boot")
    trees.bootstrap(wt, config)
    assert (wt.path / ".env").read_text() == "SECRET=1\n"
    # (what copy refuses: tests/locusd/git/test_bootstrap_confined.py)
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

    done = sh(first.path, "git", "rev-parse", "HEAD")
    second = trees.reuse(first, 2, "Second")
    assert second.path == tmp_path / "wt" / "2-second" and second.branch == ""
    assert not first.path.exists(), "moved: named after its current run"
    assert second.base_commit == sh(repo, "git", "rev-parse", "HEAD")
    assert (second.path / "app.py").read_text() == "print('new base')\n"
    assert (second.path / "cache" / "built.o").read_text() == "warm\n", "build cache kept"
    assert not trees.is_dirty(second)
    # The first task's commit (on a detached HEAD, no branch) stays reachable: its run's ref.
    assert sh(repo, "git", "rev-parse", "refs/locus/runs/1") == done
    assert sh(repo, "git", "branch", "--list", "locus/*") == ""


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


def test_missing_git_is_a_clear_error(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(WorktreeError, match="git is not installed or not on PATH: install git"):
        Worktrees(repo, tmp_path / "wt")


# -- a fresh base ------------------------------------------------------------------------------


@pytest.fixture
def clones(repo: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The user's clone and a colleague's, both of a bare "origin" made from ``repo``."""
    origin = tmp_path / "origin.git"
    sh(tmp_path, "git", "clone", "-q", "--bare", str(repo), str(origin))
    user, other = tmp_path / "user", tmp_path / "other"
    for path in (user, other):
        sh(tmp_path, "git", "clone", "-q", str(origin), str(path))
    return user, other


def test_create_starts_from_the_upstream_when_it_is_ahead(
    clones: tuple[Path, Path], tmp_path: Path
) -> None:
    user, other = clones
    pushed = commit(other, "app.py", "print('upstream')\n", "colleague's change")
    sh(other, "git", "push", "-q", "origin", "main")
    (user / "app.py").write_text("print('user editing')\n")  # uncommitted: left out, said so
    before = user_state(user)
    trees = Worktrees(user, tmp_path / "wt")

    wt = trees.create("local-20261124-105959", "Fresh")
    assert wt.base_commit == pushed, "fetched, and started from the upstream, not stale HEAD"
    assert (wt.path / "app.py").read_text() == "print('upstream')\n"
    assert len(wt.warnings) == 1 and "uncommitted changes" in wt.warnings[0]
    assert user_state(user) == before, "the user's branch, index and files are untouched"

    # The user's own unpushed commit (now diverged from upstream) is what they asked for.
    mine = commit(user, "notes.txt", "mine\n", "local work")
    assert trees.create(8, "Diverged").base_commit == mine
    assert trees.create(9, "Explicit", base="origin/main").base_commit == pushed


def test_an_unreachable_remote_is_a_warning(repo: Path, tmp_path: Path) -> None:
    sh(repo, "git", "remote", "add", "origin", "http://127.0.0.1:1/nowhere.git")
    head = sh(repo, "git", "rev-parse", "HEAD")
    wt = Worktrees(repo, tmp_path / "wt").create(1, "Offline")
    assert wt.base_commit == head and wt.path.is_dir()
    assert len(wt.warnings) == 1 and "could not fetch origin" in wt.warnings[0]
    assert "starts from local refs" in wt.warnings[0]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def test_a_fetch_that_hangs_is_cut_off(repo: Path, tmp_path: Path, silent_server: int) -> None:
    sh(repo, "git", "remote", "add", "origin", f"http://127.0.0.1:{silent_server}/r.git")
    wt = Worktrees(repo, tmp_path / "wt", fetch_timeout=1).create(1, "Hanging")
    assert wt.base_commit == sh(repo, "git", "rev-parse", "HEAD")
    assert "no answer within 1 s" in wt.warnings[0]


# -- metadata, the pool, pruning -----------------------------------------------------------------


def test_metadata_lives_in_the_worktrees_git_dir(repo: Path, tmp_path: Path) -> None:
    trees = Worktrees(repo, tmp_path / "wt")
    wt = trees.create("local-1", "Meta")
    git_dir = Path(sh(wt.path, "git", "rev-parse", "--absolute-git-dir"))
    assert (git_dir / "locus.json").is_file()
    meta = trees.metadata(wt)
    assert meta is not None
    assert (meta.task_id, meta.title, meta.base_commit, meta.state) == (
        "local-1", "Meta", wt.base_commit, "running",
    )  # fmt: skip
    assert not trees.is_dirty(wt), "invisible to git status in the worktree"
    trees.set_state(wt, "review")
    assert trees.state(wt) == "review"
    with pytest.raises(WorktreeError, match="unknown worktree state 'merged'"):
        trees.set_state(wt, "merged")  # type: ignore[arg-type]
    # What an older Locus wrote for a free worktree ("reported") reads as today's "done".
    older = json.loads((git_dir / "locus.json").read_text())
    (git_dir / "locus.json").write_text(json.dumps({**older, "state": "reported"}))
    assert trees.state(wt) == "done"
    (git_dir / "locus.json").write_text("{not json")
    assert trees.state(wt) is None
    with pytest.raises(WorktreeError, match="no Locus metadata"):
        trees.set_state(wt, "done")


def make(trees: Worktrees, name: str, state: runmeta.WorktreeState) -> Worktree:
    wt = trees.create(name, name)
    trees.set_state(wt, state)
    return wt


def test_prune_never_deletes_work(repo: Path, tmp_path: Path) -> None:
    trees = Worktrees(repo, tmp_path / "wt")
    crashed = make(trees, "crashed", "running")  # the agent committed as it went, then died
    commit(crashed.path, "app.py", "half done\n", "wip")
    review = make(trees, "review", "review")
    (review.path / "app.py").write_text("proposed\n")
    committed = make(trees, "committed", "committed")
    commit(committed.path, "app.py", "accepted\n", "accepted")
    dirty = make(trees, "dirty", "done")
    (dirty.path / "scratch.txt").write_text("untracked work\n")
    unknown = make(trees, "unknown", "done")
    runmeta.admin_dir(unknown.path).joinpath("locus.json").unlink()
    oldest = make(trees, "oldest", "discarded")  # freed first
    older = make(trees, "older", "done")
    newest = make(trees, "newest", "done")
    gone = make(trees, "gone", "done")
    shutil.rmtree(gone.path)
    stray = tmp_path / "wt" / "stray"
    stray.mkdir()
    keep = [crashed, review, committed, dirty, unknown]
    contents = {wt.path: (wt.path / "app.py").read_text() for wt in keep}

    report = trees.prune(keep_pool=2)
    assert report.removed == (oldest.path,)
    assert report.pooled == (newest.path, older.path)
    assert len(report.vanished) == 1 and "gone" in report.vanished[0]
    reasons = {k.path: k.reason for k in report.kept}
    assert set(reasons) == {wt.path for wt in keep} | {stray}
    assert "crashed run" in reasons[crashed.path]
    assert "not yet accepted or rejected" in reasons[review.path]
    assert "not yet reported" in reasons[committed.path]
    assert "uncommitted changes" in reasons[dirty.path]
    assert "no readable Locus metadata" in reasons[unknown.path]
    assert "not a registered git worktree" in reasons[stray]
    for wt in keep:
        assert (wt.path / "app.py").read_text() == contents[wt.path]
    assert (dirty.path / "scratch.txt").exists() and stray.is_dir()
    assert sh(committed.path, "git", "log", "-1", "--format=%s") == "accepted"

    again = trees.prune(keep_pool=0)
    assert set(again.removed) == {newest.path, older.path} and again.pooled == ()
    assert {k.path for k in again.kept} == set(reasons)
    assert {w.path for w in trees.list()} == {wt.path for wt in keep}


def test_the_pool_hands_out_free_clean_worktrees_once(repo: Path, tmp_path: Path) -> None:
    trees = Worktrees(repo, tmp_path / "wt")
    assert trees.take_from_pool(1, "Nothing free") is None
    busy = make(trees, "busy", "review")
    dirty = make(trees, "dirty", "discarded")
    (dirty.path / "app.py").write_text("left behind\n")
    free = make(trees, "free", "done")
    assert trees.pooled() == [free]

    taken = trees.take_from_pool("local-2", "Second")
    assert taken is not None and taken.path == tmp_path / "wt" / "local-2-second"
    assert not free.path.exists(), "the pooled folder is renamed for its current run"
    assert taken.branch == ""
    assert trees.state(taken) == "running"
    meta = trees.metadata(taken)
    assert meta is not None and (meta.task_id, meta.title) == ("local-2", "Second")
    assert trees.pooled() == [] and trees.take_from_pool(3, "Third") is None
    assert trees.state(busy) == "review" and trees.is_dirty(dirty)


def test_the_pool_is_the_worktree_directory_s_own(repo: Path, tmp_path: Path) -> None:
    """A free worktree left under another worktree directory (the user changed
    ``worktree_dir``) is not taken: it could not be moved into this one."""
    elsewhere = make(Worktrees(repo, tmp_path / "old-wt"), "free", "done")
    trees = Worktrees(repo, tmp_path / "new-wt")
    assert trees.take_from_pool(2, "Second") is None
    assert elsewhere.path.is_dir() and trees.create(2, "Second").path.parent == trees.root


def test_two_runs_never_take_the_same_pooled_worktree(repo: Path, tmp_path: Path) -> None:
    free = make(Worktrees(repo, tmp_path / "wt"), "free", "done")
    start = threading.Barrier(2)

    def take(task: str) -> Worktree | None:
        trees = Worktrees(repo, tmp_path / "wt")  # as the daemon does: one instance per run
        start.wait()
        return trees.take_from_pool(task, "Race")

    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(take, ["a", "b"]))
    assert sorted(w is None for w in got) == [False, True]
    (taken,) = [w for w in got if w is not None]
    assert taken.path.name in ("a-race", "b-race") and not free.path.exists()


def test_a_failed_take_leaves_the_worktree_in_the_pool(repo: Path, tmp_path: Path) -> None:
    trees = Worktrees(repo, tmp_path / "wt")
    free = make(trees, "free", "discarded")
    (tmp_path / "wt" / "2-taken").mkdir()  # the new run's folder name is taken
    with pytest.raises(WorktreeError, match="2-taken already exists"):
        trees.take_from_pool(2, "Taken")
    assert trees.pooled() == [free] and trees.state(free) == "discarded"
    meta = trees.metadata(free)
    assert meta is not None and meta.task_id == "free"


def test_reuse_refuses_a_dirty_worktree(repo: Path, tmp_path: Path) -> None:
    trees = Worktrees(repo, tmp_path / "wt")
    wt = make(trees, "done", "done")
    (wt.path / "new.txt").write_text("untracked\n")
    with pytest.raises(WorktreeError, match="uncommitted changes: commit or discard them"):
        trees.reuse(wt, 2, "Next")
    assert (wt.path / "new.txt").exists()


# -- submodules and LFS --------------------------------------------------------------------------


def test_submodules_are_checked_out(repo: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    sh(lib, "git", "init", "-q", "-b", "main")
    commit(lib, "lib.py", "VALUE = 42\n", "lib")
    sh(
        repo,
        "git",
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        str(lib),
        "vendor/lib",
    )
    sh(repo, "git", "commit", "-q", "-m", "add lib")
    trees = Worktrees(repo, tmp_path / "wt")

    wt = trees.create(1, "With submodule")
    assert (wt.path / "vendor" / "lib" / "lib.py").read_text() == "VALUE = 42\n"
    assert wt.warnings == ()
    (wt.path / "vendor" / "lib" / "lib.py").write_text("VALUE = 0\n")
    with pytest.raises(WorktreeError, match="uncommitted changes"):
        trees.remove(wt)
    sh(wt.path / "vendor" / "lib", "git", "checkout", "-q", "lib.py")
    trees.remove(wt)
    assert not wt.path.exists()


LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    "size 12345\n"
)


def test_lfs_pointers_stay_pointers(repo: Path, tmp_path: Path) -> None:
    (repo / ".gitattributes").write_text("*.bin filter=lfs diff=lfs merge=lfs -text\n")
    (repo / "model.bin").write_text(LFS_POINTER)
    sh(repo, "git", "add", ".gitattributes", "model.bin")
    sh(repo, "git", "commit", "-q", "-m", "lfs")
    wt = Worktrees(repo, tmp_path / "wt").create(1, "Lfs")
    assert (wt.path / "model.bin").read_text() == LFS_POINTER
    assert any("LFS files are pointers" in w for w in wt.warnings)


# -- no branch litter: run refs, older Locus's branches, finding a run's worktree ---------------


def old_layout(
    trees: Worktrees, repo: Path, task_id: str, state: runmeta.WorktreeState
) -> Worktree:
    """A worktree as an older Locus made it: on a ``locus/<id>-<slug>`` branch."""
    path = trees.root / f"{task_id}-old"
    base = sh(repo, "git", "rev-parse", "HEAD")
    sh(repo, "git", "worktree", "add", "-q", "-b", f"locus/{task_id}-old", str(path), base)
    meta = runmeta.RunMeta(task_id, "old", base, runmeta.now(), state, runmeta.now())
    runmeta.write(runmeta.admin_dir(path), meta)
    return Worktree(path, f"locus/{task_id}-old", base)


def test_an_older_locus_branch_without_commits_goes_one_with_commits_stays(
    repo: Path, tmp_path: Path
) -> None:
    trees = Worktrees(repo, tmp_path / "wt")
    trees.root.mkdir()
    empty = old_layout(trees, repo, "old-1", "discarded")  # nothing of its own
    worked = old_layout(trees, repo, "old-2", "done")  # its accepted commit
    accepted = commit(worked.path, "app.py", "accepted\n", "accepted")
    assert {w.branch for w in trees.list()} == {empty.branch, worked.branch}

    taken = trees.take_from_pool("new-3", "New")  # the most recently freed: old-2
    assert taken is not None and taken.path.name == "new-3-new" and taken.branch == ""
    assert sh(repo, "git", "rev-parse", worked.branch) == accepted, "work stays on its branch"
    report = trees.prune(keep_pool=0)  # old-1 is removed: its empty branch goes with it
    assert report.removed == (empty.path,)
    assert sh(repo, "git", "branch", "--list", "locus/*") == worked.branch


def test_a_runs_worktree_is_found_by_metadata_folder_or_older_branch(
    repo: Path, tmp_path: Path
) -> None:
    trees = Worktrees(repo, tmp_path / "wt")
    made = trees.create("run-1", "Made")
    assert trees.of_run("run-1") == made
    # Killed between `git worktree add` and the metadata: its folder names the run.
    bare = tmp_path / "wt" / "run-2-bare"
    sh(repo, "git", "worktree", "add", "-q", "--detach", str(bare))
    found = trees.of_run("run-2")
    assert found is not None and found.path == bare
    old = old_layout(trees, repo, "run-3", "running")
    runmeta.admin_dir(old.path).joinpath("locus.json").unlink()
    assert trees.of_run("run-3") == Worktree(
        old.path, old.branch, sh(repo, "git", "rev-parse", "HEAD")
    )
    # A pooled worktree names its new run from the moment it is claimed, whatever its folder.
    trees.set_state(made, "done")
    taken = trees.take_from_pool("run-4", "Taken")
    assert taken is not None and trees.of_run("run-4") == taken and trees.of_run("run-1") is None
    assert trees.of_run("run-9") is None


def test_finish_keeps_the_work_under_the_runs_ref_and_resume_carries_it_on(
    repo: Path, tmp_path: Path
) -> None:
    trees = Worktrees(repo, tmp_path / "wt")
    wt = trees.create("r1", "Work")
    (wt.path / "app.py").write_text("print('changed')\n")
    (wt.path / "new.py").write_text("x = 1\n")  # untracked: part of the work too
    before = sh(wt.path, "git", "status", "--porcelain")
    trees.finish(wt, "r1", kept=True)
    assert trees.state(wt) == "review"
    assert sh(wt.path, "git", "status", "--porcelain") == before, "worktree and index untouched"
    assert sh(repo, "git", "show", "refs/locus/runs/r1:app.py") == "print('changed')"
    assert sh(repo, "git", "show", "refs/locus/runs/r1:new.py") == "x = 1"
    assert sh(repo, "git", "rev-parse", "refs/locus/runs/r1^") == wt.base_commit
    assert sh(repo, "git", "branch", "--list", "locus/*") == ""

    trees.resume(wt, "r2")  # a further round after a review: the ref follows the run
    refs = sh(repo, "git", "for-each-ref", "--format=%(refname)", "refs/locus/")
    assert refs == "refs/locus/runs/r2"
    meta = trees.metadata(wt)
    assert meta is not None and (meta.task_id, meta.state) == ("r2", "running")
    sh(wt.path, "git", "checkout", "-q", "--", "app.py")
    (wt.path / "new.py").unlink()
    trees.finish(wt, "r2", kept=False)  # ended without changes: nothing to keep
    assert sh(repo, "git", "for-each-ref", "refs/locus/") == ""
    assert trees.state(wt) == "discarded"


def test_worktrees_with_submodules_are_not_pooled(repo: Path, tmp_path: Path) -> None:
    """git cannot move them, and a pooled worktree is renamed for each run."""
    lib = tmp_path / "lib"
    lib.mkdir()
    sh(lib, "git", "init", "-q", "-b", "main")
    commit(lib, "lib.py", "VALUE = 42\n", "lib")
    sh(repo, "git", "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "lib")
    sh(repo, "git", "commit", "-q", "-m", "add lib")
    trees = Worktrees(repo, tmp_path / "wt")
    wt = make(trees, "with-lib", "done")
    assert trees.pooled() == [] and trees.take_from_pool("next", "Next") is None
    assert trees.prune(keep_pool=2).removed == (wt.path,)
