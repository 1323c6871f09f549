"""Committing a reviewed run, and taking the commit to the user's branch when they ask.

Only the accepted hunks are committed: the accepted patch is applied to the worktree's index
(``git apply --cached``, what ``git add -p`` does) and committed on the task branch with the
user's own git identity. The worktree keeps whatever was not accepted, for another round or to
discard. Taking the commit further — merge into the user's branch, rebase it onto that branch,
push it — happens only on request, and a conflict is reported with nothing half-applied.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from locusd.git.cli import Finished, Git

TRAILER = "Locus-Task"
TIMEOUT = 300.0


class CommitError(Exception):
    """What went wrong, phrased for the user (and what to do about it)."""


@dataclass(frozen=True)
class Integration:
    action: Literal["merge", "rebase", "push"]
    ok: bool
    commit: str | None
    conflicts: list[str]
    message: str


def _git() -> Git:
    return Git(shutil.which("git") or "git")


def _checked(done: Finished, what: str) -> str:
    if done.returncode != 0:
        raise CommitError(f"{what} failed: {done.tail(800)}")
    return done.stdout


def message(title: str, summary: str | None, task_id: int | str) -> str:
    """The commit message: the task's title, the agent's summary, and a trailer that links
    the commit to its task (``git log --grep 'Locus-Task: 42'``)."""
    body = f"\n\n{summary.strip()}" if summary and summary.strip() else ""
    return f"{title.strip().splitlines()[0][:72]}{body}\n\n{TRAILER}: {task_id}\n"


def commit_patch(worktree: Path, patch: str, text: str) -> str:
    """Apply ``patch`` to the index only and commit it; returns the new commit's sha."""
    git = _git()
    if not patch.strip():
        raise CommitError("nothing was accepted: there is nothing to commit")
    email = git.run(worktree, "config", "--get", "user.email", timeout=30).stdout.strip()
    name = git.run(worktree, "config", "--get", "user.name", timeout=30).stdout.strip()
    if not (email and name):  # never a made-up identity (git would guess one from the host)
        raise CommitError(
            "git has no identity for you: git config --global user.name 'Your Name' and"
            " git config --global user.email you@example.com"
        )
    _checked(git.run(worktree, "reset", "-q", timeout=TIMEOUT), "git reset (the index)")
    applied = _run_with_input(git, worktree, patch, "apply", "--cached", "--binary", "-")
    _checked(applied, "git apply --cached (the accepted hunks)")
    committed = _run_with_input(git, worktree, text, "commit", "-q", "--no-verify", "-F", "-")
    _checked(committed, "git commit")
    return _checked(git.run(worktree, "rev-parse", "HEAD", timeout=30), "git rev-parse").strip()


def _run_with_input(git: Git, cwd: Path, data: str, *args: str) -> Finished:
    done = subprocess.run(  # noqa: S603 - git with fixed arguments; the data goes to stdin
        [git.executable, *args],
        cwd=cwd,
        env=git.env,
        input=data,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    return Finished(done.returncode, done.stdout, done.stderr)


def _conflicts(git: Git, cwd: Path) -> list[str]:
    done = git.run(cwd, "diff", "--name-only", "--diff-filter=U", timeout=60)
    return done.stdout.split()


def merge(checkout: Path, branch: str) -> Integration:
    """Merge the task branch into the branch checked out in the user's checkout. Refused when
    that checkout has uncommitted changes; on a conflict the merge is aborted and the
    conflicting files are listed."""
    git = _git()
    if git.run(checkout, "status", "--porcelain", "--untracked-files=no", timeout=60).stdout:
        return Integration(
            "merge", False, None, [], "your checkout has uncommitted changes: commit or stash them"
        )
    return _all_or_nothing(
        git, checkout, "merge", ["--no-ff", "--no-edit", branch], f"merged {branch}"
    )


def rebase(worktree: Path, onto: str) -> Integration:
    """Rebase the task branch (in its worktree) onto ``onto``; a conflict aborts the rebase."""
    return _all_or_nothing(_git(), worktree, "rebase", [onto], f"rebased onto {onto}")


def _all_or_nothing(
    git: Git, cwd: Path, action: Literal["merge", "rebase"], args: list[str], done_text: str
) -> Integration:
    """Run ``git merge|rebase``; on a conflict, list the files and ``--abort``, so nothing is
    left half-applied."""
    done = git.run(cwd, action, *args, timeout=TIMEOUT)
    if done.returncode == 0:
        head = git.run(cwd, "rev-parse", "HEAD", timeout=30).stdout.strip()
        return Integration(action, True, head, [], done_text)
    conflicts = _conflicts(git, cwd)
    git.run(cwd, action, "--abort", timeout=TIMEOUT)
    return Integration(
        action,
        False,
        None,
        conflicts,
        f"{action} conflicts in {', '.join(conflicts) or 'the tree'}; nothing was changed",
    )


def push(worktree: Path, remote: str, branch: str) -> Integration:
    git = _git()
    done = git.run(worktree, "push", "--quiet", remote, f"{branch}:{branch}", timeout=TIMEOUT)
    if done.returncode == 0:
        return Integration("push", True, None, [], f"pushed {branch} to {remote}")
    return Integration("push", False, None, [], f"git push failed: {done.tail(500)}")
