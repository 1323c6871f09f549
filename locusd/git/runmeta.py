"""What Locus knows about one run's worktree, kept in the worktree's own git admin directory.

``<common git dir>/worktrees/<name>/locus.json`` rather than a file in the worktree: the agent
cannot see or edit it, it is never part of a diff, and it lives and dies with git's record of
the worktree (``git worktree remove`` and ``git worktree prune`` delete it with the rest), so
it can never describe a worktree that no longer exists.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, get_args

FILENAME = "locus.json"

#: The worktree's side of a run's lifecycle (locusd/runner/lifecycle.py maps run states onto
#: it): ``done`` — its change committed and, for a cloud task, acknowledged — and ``discarded``
#: are free.
WorktreeState = Literal["running", "review", "committed", "done", "discarded"]
STATES: tuple[WorktreeState, ...] = get_args(WorktreeState)
#: The states in which nothing in a worktree is still needed: it may be reused or removed
#: (if it also has no uncommitted changes).
FREE_STATES: frozenset[WorktreeState] = frozenset({"done", "discarded"})
#: Names an older Locus wrote, read as today's.
_RENAMED = {"reported": "done"}


def now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class RunMeta:
    task_id: int | str
    title: str
    base_commit: str
    created_at: str  # ISO 8601, UTC
    state: WorktreeState
    updated_at: str  # when ``state`` last changed

    def with_state(self, state: WorktreeState) -> RunMeta:
        if state not in STATES:
            raise ValueError(f"unknown worktree state {state!r}: one of {', '.join(STATES)}")
        return replace(self, state=state, updated_at=now())


def admin_dir(worktree: Path) -> Path:
    """The worktree's private git directory, read from its ``.git`` file ("gitdir: …"): no git
    process needed. Raises OSError/ValueError when ``worktree`` is not a linked worktree."""
    text = (worktree / ".git").read_text(encoding="utf-8").strip()
    if not text.startswith("gitdir:"):
        raise ValueError(f"{worktree}/.git is not a linked worktree's .git file")
    return (worktree / text.removeprefix("gitdir:").strip()).resolve()


def read(admin: Path) -> RunMeta | None:
    """The metadata, or None when it is missing or unreadable (callers treat that as unknown
    and keep the worktree)."""
    try:
        data = json.loads((admin / FILENAME).read_text(encoding="utf-8"))
        data["state"] = _RENAMED.get(data.get("state"), data.get("state"))
        meta = RunMeta(**{name: data[name] for name in RunMeta.__dataclass_fields__})
    except (OSError, ValueError, TypeError, KeyError):
        return None
    valid = (
        meta.state in STATES
        and isinstance(meta.task_id, int | str)
        and all(isinstance(v, str) for v in (meta.title, meta.base_commit, meta.created_at))
        and isinstance(meta.updated_at, str)
    )
    return meta if valid else None


def write(admin: Path, meta: RunMeta) -> None:
    """Atomically (a temp file renamed over the old one): a crash leaves the old or the new."""
    fd, temp = tempfile.mkstemp(prefix=".locus-", suffix=".json", dir=admin)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"version": 1, **asdict(meta)}, out, indent=1)
        os.replace(temp, admin / FILENAME)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
