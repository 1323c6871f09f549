"""Which moments of a run need a person, as the ``locus/needsYou`` message the daemon sends its
clients and turns into a desktop notification (locusd/notifications.py).

A state says so only when a run *enters* it from the agent's hands (``starting``/``running``):
a commit undone by recovery (``committing`` → ``awaiting_review``) or a daemon restarted on a
run already waiting is not news, so a person hears of each event once.
"""

from __future__ import annotations

from locusd.protocol.messages import NeedsYou, NeedsYouKind, Run, RunState
from locusd.runner.lifecycle import LIVE

#: The states that wait for a person, and what for.
WAITING: dict[RunState, NeedsYouKind] = {"needs_input": "question", "awaiting_review": "review"}
#: The most of the agent's text a message carries (the run has it all: locus/runs/show).
TEXT_LIMIT = 500


def _short(text: str) -> str:
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


def on_move(run: Run, previous: RunState) -> NeedsYou | None:
    """What a move of ``run`` (now in its new state) from ``previous`` asks of a person."""
    return waiting(run) if previous in LIVE else None


def waiting(run: Run) -> NeedsYou | None:
    """What ``run``, in the state it is in, waits for a person to do, if anything."""
    kind = WAITING.get(run.state)
    if kind is None:
        return None
    text = run.question if kind == "question" else run.summary
    return _message(run, kind, text or "")


def approval(run: Run, approval_id: str, command: str) -> NeedsYou:
    """A command of ``run`` waits for an approval (``locus/approval`` went to its watchers)."""
    return _message(run, "approval", command, approval_id)


def _message(run: Run, kind: NeedsYouKind, text: str, approval_id: str | None = None) -> NeedsYou:
    return NeedsYou(
        run_id=run.run_id,
        kind=kind,
        task_id=run.task_id,
        title=run.title,
        repo=run.repo,
        text=_short(text),
        approval_id=approval_id,
    )
