"""What the file ranker reads about history, with no IO: a commit's (or a finished task's) time,
message and paths, and renames followed to the newest name. Its own module so the cloud can rank
(conflict-aware dispatch, docs/dispatch.md) without importing the daemon's git layer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Commit:
    """One non-merge commit: ``paths`` it left files at (sorted, empty past ``history.MAX_PATHS``),
    ``renames`` (old, new) it made, ``touched`` how many paths it changed in all."""

    sha: str
    time: int
    message: str
    paths: tuple[str, ...]
    renames: tuple[tuple[str, str], ...] = ()
    touched: int = 0


def follow_renames(commits: Sequence[Commit]) -> list[Commit]:
    """``commits`` (oldest first) with every path mapped to the name the newest of them gives
    it: history of a file that was moved stays the file's history. Pure: no IO."""
    newest: dict[str, str] = {}
    followed: list[Commit] = []
    for commit in reversed(commits):
        if newest:
            paths = tuple(sorted({newest.get(path, path) for path in commit.paths}))
            commit = replace(commit, paths=paths)
        followed.append(commit)
        for old, new in commit.renames:
            newest[old] = newest.get(new, new)
    followed.reverse()
    return followed
