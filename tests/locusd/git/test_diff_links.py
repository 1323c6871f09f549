"""The run's diff never carries what a hard link or a symlink points to: a changed file with
more than one hard link (a hard link to a file outside the worktree passes every path check,
and git reads what it points to) is left out and named; a symlink goes in as the link itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from locusd.git.diffs import diff_and_left_out
from tests.locusd.git.test_repo import make_repo
from tests.locusd.git.test_worktrees import identity, sh

__all__ = ["identity"]  # the autouse fixture: commits without the user's git config

CANARY = "CANARY-7f3a outside the worktree\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "project")


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    path = tmp_path / "outside" / "id_rsa"
    path.parent.mkdir()
    path.write_text(CANARY)
    return path


def test_a_new_hard_linked_file_is_left_out_and_named(repo: Path, canary: Path) -> None:
    base = sh(repo, "git", "rev-parse", "HEAD")
    os.link(canary, repo / "stolen.txt")
    (repo / "app.py").write_text("print('bye')\n")
    diff, left_out = diff_and_left_out(repo, base)
    assert "CANARY" not in diff and "stolen.txt" not in diff
    assert "print('bye')" in diff  # the rest of the change is kept
    assert left_out == ["stolen.txt"]


def test_a_tracked_file_replaced_by_a_hard_link_keeps_its_base_content(
    repo: Path, canary: Path
) -> None:
    base = sh(repo, "git", "rev-parse", "HEAD")
    (repo / "app.py").unlink()
    os.link(canary, repo / "app.py")
    diff, left_out = diff_and_left_out(repo, base)
    assert diff == "" and left_out == ["app.py"]


@pytest.mark.parametrize("name", ["*.py", ":(glob)**", "-rf", "sp ace/ü.txt", "new\nline"])
def test_names_that_look_like_pathspecs_or_options_are_left_out_exactly(
    repo: Path, canary: Path, name: str
) -> None:
    """The left-out names go to git as literal paths: a glob or a magic pathspec among them
    neither fails the diff nor drops anything else."""
    base = sh(repo, "git", "rev-parse", "HEAD")
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    os.link(canary, repo / name)
    (repo / "app.py").write_text("print('bye')\n")
    (repo / "kept.py").write_text("x = 1\n")
    diff, left_out = diff_and_left_out(repo, base)
    assert "CANARY" not in diff and left_out == [name]
    assert "print('bye')" in diff and "b/kept.py" in diff


def test_a_symlink_goes_in_as_a_link_never_its_target(repo: Path, canary: Path) -> None:
    base = sh(repo, "git", "rev-parse", "HEAD")
    (repo / "key").symlink_to(canary)
    (repo / "keys").symlink_to(canary.parent)
    diff, left_out = diff_and_left_out(repo, base)
    assert "CANARY" not in diff and left_out == []
    assert "new file mode 120000" in diff and str(canary) in diff


def test_hard_links_that_did_not_change_anything_are_not_reported(repo: Path) -> None:
    base = sh(repo, "git", "rev-parse", "HEAD")
    os.link(repo / "app.py", repo.parent / "elsewhere.py")  # the tracked file, unchanged
    assert diff_and_left_out(repo, base) == ("", [])
