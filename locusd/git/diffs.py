"""Diffs of a run's worktree against its base commit."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from locusd.git.cli import Git, GitFailed, run

DIFF_TIMEOUT = 120.0


def diff_against(worktree: Path, base: str) -> str:
    """Everything the run changed, new files included (ignored ones not), against ``base`` —
    computed with a throwaway index, so the worktree's own index (what the reviewer sees)
    stays as the agent left it."""
    git = Git(shutil.which("git") or "git")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**git.env, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        diff = (
            "diff",
            "--cached",
            "--binary",
            "--no-color",
            "--no-ext-diff",
            "--src-prefix=a/",
            "--dst-prefix=b/",
            base,
        )
        for args in (("read-tree", base), ("add", "--all"), diff):
            argv = [git.executable, *args]
            done = run(argv, worktree, timeout=DIFF_TIMEOUT, env=env)
            if done.returncode != 0:
                raise GitFailed(argv, done)
        return done.stdout
