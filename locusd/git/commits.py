"""Committing a reviewed run, and taking the commit to the user's branch when they ask.

Only the accepted hunks are committed: the accepted patch is applied to the worktree's index
(``git apply --cached``, what ``git add -p`` does) and committed on the task branch with the
user's own git identity. The worktree keeps whatever was not accepted, for another round or to
discard. Taking the commit further — merge into the user's branch, rebase it onto that branch,
push it — happens only on request, and a conflict is reported with nothing half-applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from locusd.git.cli import Finished
from locusd.git.repo import Repository, RepositoryError

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


def _repository(path: Path) -> Repository:
    try:
        return Repository(path)
    except RepositoryError as exc:
        raise CommitError(str(exc)) from None


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
    if not patch.strip():
        raise CommitError("nothing was accepted: there is nothing to commit")
    repo = _repository(worktree)
    if not (repo.config("user.email") and repo.config("user.name")):
        # never a made-up identity (git would guess one from the host)
        raise CommitError(
            "git has no identity for you: git config --global user.name 'Your Name' and"
            " git config --global user.email you@example.com"
        )
    _checked(repo.run("reset", "-q", timeout=TIMEOUT), "git reset (the index)")
    applied = repo.run("apply", "--cached", "--binary", "-", stdin=patch, timeout=TIMEOUT)
    _checked(applied, "git apply --cached (the accepted hunks)")
    committed = repo.run("commit", "-q", "--no-verify", "-F", "-", stdin=text, timeout=TIMEOUT)
    _checked(committed, "git commit")
    return _checked(repo.run("rev-parse", "HEAD", timeout=30), "git rev-parse").strip()


def _conflicts(repo: Repository) -> list[str]:
    return repo.run("diff", "--name-only", "--diff-filter=U", timeout=60).stdout.split()


def merge(checkout: Path, branch: str) -> Integration:
    """Merge the task branch into the branch checked out in the user's checkout. Refused when
    that checkout has uncommitted changes; on a conflict the merge is aborted and the
    conflicting files are listed."""
    repo = _repository(checkout)
    if repo.has_changes(untracked=False):
        return Integration(
            "merge", False, None, [], "your checkout has uncommitted changes: commit or stash them"
        )
    return _all_or_nothing(repo, "merge", ["--no-ff", "--no-edit", branch], f"merged {branch}")


def rebase(worktree: Path, onto: str) -> Integration:
    """Rebase the task branch (in its worktree) onto ``onto``; a conflict aborts the rebase."""
    return _all_or_nothing(_repository(worktree), "rebase", [onto], f"rebased onto {onto}")


#: A merge, rebase, cherry-pick or revert under way, by the files git keeps in the git dir.
_UNDER_WAY = ("rebase-merge", "rebase-apply", "MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD")


def _all_or_nothing(
    repo: Repository, action: Literal["merge", "rebase"], args: list[str], done_text: str
) -> Integration:
    """Run ``git merge|rebase``; on a conflict, list the files and ``--abort``, so nothing is
    left half-applied. Refused while one is already under way: ``--abort`` would then undo a
    state Locus did not make (the agent can write its worktree's git dir, and a planted
    ``rebase-merge/head-name`` would switch the worktree to another branch on abort)."""
    under_way = [name for name in _UNDER_WAY if (repo.git_dir / name).exists()]
    if under_way:
        return Integration(
            action, False, None, [],
            f"a {under_way[0]} is under way in {repo.path} ({repo.git_dir / under_way[0]}):"
            " finish or abort it there first; nothing was changed",
        )  # fmt: skip
    done = repo.run(action, *args, timeout=TIMEOUT)
    if done.returncode == 0:
        return Integration(action, True, repo.resolve("HEAD"), [], done_text)
    conflicts = _conflicts(repo)
    repo.run(action, "--abort", timeout=TIMEOUT)
    return Integration(
        action,
        False,
        None,
        conflicts,
        f"{action} conflicts in {', '.join(conflicts) or 'the tree'}; nothing was changed",
    )


def push(worktree: Path, remote: str, branch: str) -> Integration:
    repo = _repository(worktree)
    done = repo.run("push", "--quiet", remote, f"{branch}:{branch}", timeout=TIMEOUT, network=True)
    if done.returncode == 0:
        return Integration("push", True, None, [], f"pushed {branch} to {remote}")
    return Integration("push", False, None, [], f"git push failed: {done.tail(500)}")
