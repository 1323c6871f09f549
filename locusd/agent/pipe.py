"""The messages between the daemon and the agent process it runs a task in
(``locusd/runner/agent_process.py`` ↔ ``locusd/agent/child.py``): one JSON object per line, the
daemon's on the child's stdin, the child's on its stdout (its stderr goes to the daemon's log).

These models are the protocol. The daemon validates every line the child writes against them:
the child runs the agent, so its output is untrusted input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from locusd.agent.report import Event, RunReport
from locusd.config import Config
from locusd.git.worktrees import Worktree

#: The longest line the daemon reads from a child (a report carries the run's whole diff).
MAX_LINE = 64 * 1024 * 1024
#: The longest error text a child may send (it becomes the run's reason).
MAX_ERROR = 4000


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- daemon → child -------------------------------------------------------------------------


class Start(_Message):
    """The first line: what ``run_task`` needs. The child builds the provider itself."""

    type: Literal["start"] = "start"
    repo: Path
    task: str
    config: Config
    replay: Path | None
    task_id: str
    #: Whether a client may be asked to approve commands (without, the run is unattended).
    attended: bool
    continue_in: Worktree | None = None
    #: A planning run (read-only tools, ends with proposals): locusd/agent/planning.py.
    planning: bool = False


class Answer(_Message):
    """The user's answer to an :class:`Ask`."""

    type: Literal["answer"] = "answer"
    id: int
    allowed: bool


class Cancel(_Message):
    """Stop the run (as the cancel event of an in-process run does)."""

    type: Literal["cancel"] = "cancel"


# --- child → daemon -------------------------------------------------------------------------


class EventMessage(_Message):
    type: Literal["event"] = "event"
    event: Event


class Phase(_Message):
    type: Literal["phase"] = "phase"
    text: str


class WorktreeReady(_Message):
    """The run's worktree exists; nothing has run in it yet."""

    type: Literal["worktree"] = "worktree"
    worktree: Worktree


class Ask(_Message):
    """A command the policy says to ask about; the daemon answers with :class:`Answer`."""

    type: Literal["ask"] = "ask"
    id: int
    command: str
    reason: str


class Report(_Message):
    """The run ended (last line)."""

    type: Literal["report"] = "report"
    report: RunReport


class Failure(_Message):
    """The run could not be run (no git repository, a bad provider); last line."""

    type: Literal["error"] = "error"
    message: str = Field(max_length=MAX_ERROR)
    local: bool = Field(
        False,
        description="this machine's setup cannot run the agent (no model configured, no key, a"
        " missing replay file), found before the agent did anything",
    )


ToChild = Annotated[Start | Answer | Cancel, Field(discriminator="type")]
FromChild = Annotated[
    EventMessage | Phase | WorktreeReady | Ask | Report | Failure, Field(discriminator="type")
]
TO_CHILD: TypeAdapter[ToChild] = TypeAdapter(ToChild)
FROM_CHILD: TypeAdapter[FromChild] = TypeAdapter(FromChild)


def line(message: ToChild | FromChild) -> bytes:
    """One message as one line (JSON escapes every newline inside strings)."""
    return message.model_dump_json().encode() + b"\n"
