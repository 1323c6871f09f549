"""Diffs of a run's worktree against its base commit."""

from __future__ import annotations

from pathlib import Path

from locusd.git.repo import Repository


def diff_against(worktree: Path, base: str) -> str:
    """Everything the run changed, new files included (ignored ones not), against ``base`` —
    computed with a throwaway index, so the worktree's own index (what the reviewer sees)
    stays as the agent left it."""
    return Repository(worktree).diff_against(base)
