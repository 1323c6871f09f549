"""The history reader on real repositories: what each commit touched, renames followed to the
newest name, merges and deletions left out, huge commits capped, reads from a parent and
incremental reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from locusd.git.cli import GitFailed
from locusd.git.repo import Repository
from locusd.graph.history import MAX_PATHS, follow_renames, read_history
from tests.support.histories import START, commit, git, new_repo

DAY = 86400


def test_each_commit_has_its_time_message_and_paths_oldest_first(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "r")
    first = commit(repo, "Start", {"a.py": "1", "odd name\tx.md": "1", "two\nlines": "1"}, START)
    second = commit(repo, "Fix the parser\n\nThe body says why.", {"a.py": "2"}, START + DAY)
    read = read_history(Repository(repo))
    assert [(c.sha, c.time, c.paths) for c in read] == [
        (first, START, ("a.py", "odd name\tx.md", "two\nlines")),
        (second, START + DAY, ("a.py",)),
    ]
    assert read[1].message == "Fix the parser\n\nThe body says why."


def test_renames_are_followed_to_the_newest_name(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "r")
    text = "".join(f"line {n}\n" for n in range(40))
    commit(repo, "Start", {"old.py": text}, START)
    commit(repo, "Edit", {"old.py": text + "more\n"}, START + DAY)
    git(repo, "mv", "old.py", "mid.py")
    commit(repo, "Move once", {}, START + 2 * DAY)
    git(repo, "mv", "mid.py", "new.py")
    commit(repo, "Move again", {}, START + 3 * DAY)
    read = read_history(Repository(repo))
    assert read[2].renames == (("old.py", "mid.py"),)
    assert [c.paths for c in follow_renames(read)] == [("new.py",)] * 4


def test_merges_and_deleted_paths_are_left_out(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "r")
    commit(repo, "Start", {"a.py": "1", "b.py": "1"}, START)
    git(repo, "switch", "-q", "-c", "side")
    commit(repo, "Side work", {"c.py": "1"}, START + DAY)
    git(repo, "switch", "-q", "main")
    commit(repo, "Drop b", {"b.py": None, "a.py": "2"}, START + 2 * DAY)
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge side", "side", when=START + 3 * DAY)
    read = read_history(Repository(repo))
    assert "Merge side" not in [c.message for c in read]
    dropped = next(c for c in read if c.message == "Drop b")
    assert dropped.paths == ("a.py",) and dropped.touched == 2


def test_a_huge_commit_keeps_its_count_but_no_paths(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "r")
    sweep = {f"f{n}.py": "x" for n in range(MAX_PATHS + 1)}
    commit(repo, "Reformat everything", sweep, START)
    commit(repo, "Small", {"f1.py": "y"}, START + DAY)
    huge, small = read_history(Repository(repo))
    assert (huge.paths, huge.touched) == ((), MAX_PATHS + 1)
    assert small.paths == ("f1.py",)


def test_reads_from_a_parent_and_incrementally(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "r")
    shas = [commit(repo, f"Step {n}", {"a.py": str(n)}, START + n * DAY) for n in range(5)]
    opened = Repository(repo)
    assert [c.sha for c in read_history(opened, shas[2])] == shas[:3]
    assert [c.sha for c in read_history(opened, since=shas[2])] == shas[3:]
    assert [c.sha for c in read_history(opened, limit=2)] == shas[3:]


def test_a_revision_is_never_read_as_an_option(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "r")
    commit(repo, "Start", {"a.py": "1"}, START)
    written = tmp_path / "written"
    for rev in (f"--output={written}", "-p"):
        with pytest.raises(GitFailed):
            read_history(Repository(repo), rev)
        with pytest.raises(GitFailed):
            read_history(Repository(repo), "HEAD", since=rev)
    assert not written.exists()
