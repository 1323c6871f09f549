"""``.worktreeinclude`` on real git repositories: the ignored files it names are copied into a
run's worktree next to ``.locus.toml``'s ``copy``; a tracked or not-ignored file never is, nor
anything through a symlink or a hard link, nor over a file the run's base commit tracks; a
hostile ``.worktreeinclude`` (a symlink, a FIFO, a directory, huge, patterns reaching out) is
refused with a warning and the run goes on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from locusd.git.worktreeinclude import FILENAME, MAX_FILES, MAX_PATTERN_BYTES
from locusd.git.worktrees import Worktree, Worktrees
from locusd.repo_config import RepoConfig
from tests.locusd.agentkit import anthropic, call, git, make_config, result_text, run, tool_results
from tests.support.anthropic_server import AnthropicServer

pytestmark = pytest.mark.timeout(60)  # a FIFO that blocked would hang here


def commit(path: Path, message: str) -> None:
    git(path, "add", "-A")
    git(path, "-c", "user.name=D", "-c", "user.email=d@x", "commit", "-q", "-m", message)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "app.py").write_text("print('hi')\n")
    (path / ".gitignore").write_text("*.env\n.env\nconfig/\nbuild/\n")
    commit(path, "first")
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    (path / "id_rsa").write_text("PRIVATE KEY\n")
    (path / "patterns").write_text("*\n")
    return path


def bootstrap(checkout: Path, tmp_path: Path, **copy: list[str]) -> tuple[Worktree, list[str]]:
    worktrees = Worktrees(checkout, tmp_path / "worktrees")
    worktree = worktrees.create(1, "include")
    return worktree, worktrees.bootstrap(worktree, RepoConfig.model_validate(copy))


def test_ignored_files_it_names_are_copied_and_nothing_else(checkout: Path, tmp_path: Path) -> None:
    (checkout / FILENAME).write_text(
        "# files the agent needs\n.env\nconfig/\n*.env\n!local.env\nnotes.txt\napp.py\n"
    )
    (checkout / ".env").write_text("A=1\n")
    (checkout / "config" / "deep").mkdir(parents=True)
    (checkout / "config" / "deep" / "db.yml").write_text("db: x\n")
    (checkout / "prod.env").write_text("P=1\n")
    (checkout / "local.env").write_text("L=1\n")  # negated
    (checkout / "build").mkdir()
    (checkout / "build" / "out.bin").write_text("x")  # ignored, not named
    (checkout / "notes.txt").write_text("untracked, not ignored\n")
    (checkout / "app.py").write_text("print('uncommitted edit')\n")  # tracked
    worktree, warnings = bootstrap(checkout, tmp_path)
    assert warnings == []
    copied = sorted(
        str(p.relative_to(worktree.path))
        for p in worktree.path.rglob("*")
        if p.is_file() and ".git" not in p.parts
    )
    assert copied == [".env", ".gitignore", "app.py", "config/deep/db.yml", "prod.env"]
    assert (worktree.path / ".env").read_text() == "A=1\n"
    assert (worktree.path / "app.py").read_text() == "print('hi')\n"
    assert git(worktree.path, "status", "--porcelain") == ""  # nothing in the run's diff


def test_it_adds_to_the_copy_list(checkout: Path, tmp_path: Path) -> None:
    (checkout / FILENAME).write_text(".env\n")
    (checkout / ".env").write_text("A=1\n")
    (checkout / "config").mkdir()
    (checkout / "config" / "db.env").write_text("B=2\n")
    worktree, warnings = bootstrap(checkout, tmp_path, copy=["config/db.env", ".env"])
    assert warnings == []
    assert (worktree.path / ".env").read_text() == "A=1\n"
    assert (worktree.path / "config" / "db.env").read_text() == "B=2\n"


def test_no_file_no_copy(checkout: Path, tmp_path: Path) -> None:
    (checkout / ".env").write_text("A=1\n")
    worktree, warnings = bootstrap(checkout, tmp_path)
    assert warnings == [] and not (worktree.path / ".env").exists()


def test_symlinks_and_hard_links_are_never_followed(
    checkout: Path, tmp_path: Path, outside: Path
) -> None:
    (checkout / FILENAME).write_text(".env\nconfig/\nkey.env\n")
    (checkout / ".env").symlink_to(outside / "id_rsa")
    (checkout / "config").symlink_to(outside, target_is_directory=True)
    os.link(outside / "id_rsa", checkout / "key.env")
    worktree, warnings = bootstrap(checkout, tmp_path)
    assert not os.path.lexists(worktree.path / ".env")
    assert not os.path.lexists(worktree.path / "config")
    assert not os.path.lexists(worktree.path / "key.env")
    assert all("PRIVATE" not in p.read_text() for p in worktree.path.rglob("*") if p.is_file())
    text = "\n".join(warnings)
    assert ".env cannot be copied from the checkout" in text and "symlink" in text
    assert "key.env cannot be copied from the checkout" in text and "hard links" in text


def test_a_path_the_base_commit_tracks_is_not_overwritten(checkout: Path, tmp_path: Path) -> None:
    git(checkout, "switch", "-q", "-c", "other")
    (checkout / "settings.env").write_text("TRACKED=1\n")
    git(checkout, "add", "-f", "settings.env")
    commit(checkout, "track it")
    git(checkout, "switch", "-q", "main")
    (checkout / "settings.env").write_text("SECRET=1\n")  # ignored and untracked on main
    (checkout / FILENAME).write_text("*.env\n")
    worktrees = Worktrees(checkout, tmp_path / "worktrees")
    worktree = worktrees.create(1, "include", "other")
    warnings = worktrees.bootstrap(worktree, RepoConfig())
    assert (worktree.path / "settings.env").read_text() == "TRACKED=1\n"
    assert any("settings.env not copied: the run's base commit tracks it" in w for w in warnings)


@pytest.mark.parametrize("patterns", ["../outside/*\n", "/*\n../*\n", f"{'../' * 30}*\n"])
def test_patterns_cannot_reach_out_of_the_checkout(
    checkout: Path, tmp_path: Path, outside: Path, patterns: str
) -> None:
    (checkout / FILENAME).write_text(patterns)
    worktree, _ = bootstrap(checkout, tmp_path)
    assert not (worktree.path / "id_rsa").exists()
    assert not (worktree.path / "outside").exists()


def test_a_symlinked_worktreeinclude_is_not_used(
    checkout: Path, tmp_path: Path, outside: Path
) -> None:
    (checkout / FILENAME).symlink_to(outside / "patterns")
    (checkout / ".env").write_text("A=1\n")
    worktree, warnings = bootstrap(checkout, tmp_path)
    assert not (worktree.path / ".env").exists()
    assert warnings and warnings[0].startswith(f"{FILENAME} not used:") and "symlink" in warnings[0]


@pytest.mark.parametrize("kind", ["fifo", "directory", "huge", "binary"])
def test_a_worktreeinclude_that_is_not_a_small_file_is_not_used(
    checkout: Path, tmp_path: Path, kind: str
) -> None:
    include = checkout / FILENAME
    (checkout / ".env").write_text("A=1\n")
    if kind == "fifo":
        os.mkfifo(include)  # no writer: a plain open would block forever
    elif kind == "directory":
        include.mkdir()
    elif kind == "huge":
        include.write_text(".env\n" + "#" * MAX_PATTERN_BYTES)
    else:
        include.write_bytes(b"\xff\xfe\x00\x01.env\x00\n")
    worktree, warnings = bootstrap(checkout, tmp_path)
    if kind == "binary":  # patterns git reads as such: nothing matches, nothing breaks
        assert warnings == [] and not (worktree.path / ".env").exists()
        return
    assert not (worktree.path / ".env").exists()
    assert len(warnings) == 1 and warnings[0].startswith(f"{FILENAME} not used:")


def test_at_most_max_files_are_copied(checkout: Path, tmp_path: Path) -> None:
    many = checkout / "config"
    many.mkdir()
    for n in range(MAX_FILES + 5):
        (many / f"{n:05}.env").write_text("x")
    (checkout / FILENAME).write_text("config/\n")
    worktree, warnings = bootstrap(checkout, tmp_path)
    assert len(list((worktree.path / "config").iterdir())) == MAX_FILES
    assert len(warnings) == 1 and f"at most {MAX_FILES} files" in warnings[0]


async def test_a_run_has_the_files_and_leaves_them_out_of_its_diff(
    checkout: Path, tmp_path: Path
) -> None:
    (checkout / FILENAME).write_text(".env\n")
    (checkout / ".env").write_text("TOKEN=from-the-checkout\n")
    script = [call("read_file", path=".env"), call("ask_user", question="ok?")]
    phases: list[str] = []
    async with AnthropicServer(script) as server:
        report = await run(
            anthropic(server), checkout, make_config(tmp_path), task="t", on_phase=phases.append
        )
    assert report.outcome == "needs_input", report.reason
    assert "TOKEN=from-the-checkout" in result_text(tool_results(server.requests[1])[0])
    assert f"bootstrapping ({FILENAME})" in phases
    assert report.diff == ""
