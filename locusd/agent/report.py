"""What a run hands back, and the small vocabulary around it that the daemon shares with the
agent's process: its report, its progress events, the approval callback, run ids and worktree
directory names.

Kept apart from the agent runtime (``run.py``, ``loop.py``, ``tools.py``) so that the daemon,
which runs agents in child processes, can speak of them without importing the runtime.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from locusd.agent.transcript import Ending


class RunReport(Ending):
    """What ``locus agent run --json`` prints, and what the daemon reports upward: how the run
    ended (as in the transcript's footer) and where its work is."""

    task_id: str
    verify_command: str | None
    verify_reason: str
    worktree: str
    branch: str
    base_commit: str
    transcript: str
    warnings: list[str]


@dataclass(frozen=True)
class Event:
    """Progress for whoever watches (the CLI's live view, an editor's ``$/progress``)."""

    kind: Literal["turn", "text", "tool", "tool_done", "verify", "note"]
    turn: int
    text: str = ""
    data: dict[str, Any] = field(default_factory=dict)


OnEvent = Callable[[Event], None]
#: Asks the user whether a command the policy marks "ask" may run; None = nobody to ask.
Approver = Callable[[str, str], Awaitable[bool]]


def local_task_id() -> str:
    return "local-" + datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")


def repo_key(repo: Path) -> str:
    """A directory name per repository, so two checkouts' worktrees never collide."""
    resolved = repo.resolve()
    return f"{resolved.name}-{hashlib.sha256(str(resolved).encode()).hexdigest()[:8]}"
