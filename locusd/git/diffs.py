"""Diffs of a run's worktree against its base commit."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from locusd.git.repo import Repository


def diff_against(worktree: Path, base: str) -> str:
    """Everything the run changed, new files included (ignored ones not), against ``base`` —
    computed with a throwaway index, so the worktree's own index (what the reviewer sees)
    stays as the agent left it."""
    return Repository(worktree).diff_against(base)


def diff_and_left_out(worktree: Path, base: str) -> tuple[str, list[str]]:
    """:func:`diff_against`, and the changed files left out of it because they have more than
    one hard link (their content may be a file from outside the worktree)."""
    return Repository(worktree).diff_and_left_out(base)


def left_out_warning(paths: list[str]) -> str:
    """What the report says about files :func:`diff_and_left_out` left out."""
    named = ", ".join(paths[:20]) + (f" and {len(paths) - 20} more" if len(paths) > 20 else "")
    return (
        f"left out of the diff: {named} — more than one hard link (it may be a file from outside"
        " the worktree); copy the content into a new file if it belongs in the change"
    )


@dataclass(frozen=True)
class DiffStat:
    files: int
    added: int
    removed: int


def diffstat(diff: str) -> DiffStat:
    """How big a change is — what the cloud hears of a proposed diff held on this machine."""
    files = added = removed = 0
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            files += 1
        elif line.startswith("+") and not line.startswith("+++ "):
            added += 1
        elif line.startswith("-") and not line.startswith("--- "):
            removed += 1
    return DiffStat(files, added, removed)
