"""A run's lifecycle as one table: which states a run may move between, what each state tells
the cloud (for a run of a cloud task), and what it means for the run's worktree. Pure data and
lookups, no IO: every state change of a run goes through :meth:`locusd.runner.runs.Runs.move`,
which checks :func:`check` here — the one write path — the way the cloud's task states go
through ``cloud_api/domain/states.py``.

One vocabulary (:data:`~locusd.protocol.messages.RunState`), one meaning per word:

* ``committed`` — the accepted change is a commit on the task branch; for a cloud task its
  report (``verification``) is queued, not yet acknowledged.
* ``reported`` — only this: the cloud acknowledged the ``verification`` report.
* ``report_refused`` — the cloud refused a report as stale (its claim expired meanwhile); the
  committed work is kept and can be offered again (``locus/review/resubmit``).

``docs/daemon.md`` shows this table; ``tests/locusd/runner/test_lifecycle.py`` checks that the
page and the table agree and walks every path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from cloud_api.schemas.workers import ReportedStatus
from locusd.agent.transcript import Outcome
from locusd.git.runmeta import WorktreeState
from locusd.protocol.messages import RunState

STATES: tuple[RunState, ...] = get_args(RunState)

#: What the cloud is told when a run of a cloud task enters a state (``None``: nothing).
CloudStatus = ReportedStatus

#: Why a run ended ``cancelled`` or ``failed``, where that changes what the cloud hears:
#: ``cloud`` — the cloud cancelled it (it asked, it needs no word); ``cancel`` — its user ran
#: ``locus cancel`` here: the task is cancelled; ``requeue`` — given back (``locus cancel
#: --requeue``, Ctrl-C of ``locus run``, the daemon stopping); ``local`` — a problem of this
#: machine (no model configured, no key, a missing replay file) stopped the run before the agent
#: did anything: given back with the reason, not failed for the team.
Ending = Literal["cloud", "cancel", "requeue", "local"]
ENDINGS: tuple[Ending, ...] = get_args(Ending)


@dataclass(frozen=True)
class Row:
    """One state: where it may go, what the cloud hears on entering it, the worktree's state
    (with changes in it, without; a local run's where it differs), and whether the agent is
    (or was, before a crash) working in it."""

    to: frozenset[RunState]
    cloud: CloudStatus | None
    worktree: tuple[WorktreeState, WorktreeState]
    meaning: str
    live: bool = False
    local_worktree: WorktreeState | None = None
    #: Moves a run of a cloud task may not make here (the cloud's table has no matching move:
    #: a send-back's next round reports ``running``, which only ``awaiting_review`` allows).
    local_only: frozenset[RunState] = frozenset()


def _row(
    to: str,
    cloud: CloudStatus | None,
    worktree: tuple[WorktreeState, WorktreeState],
    meaning: str,
    *,
    live: bool = False,
    local_worktree: WorktreeState | None = None,
    local_only: str = "",
) -> Row:
    targets: frozenset[str] = frozenset(to.split())
    unknown = targets - set(STATES)
    if unknown:
        raise ValueError(f"unknown run states in the lifecycle table: {sorted(unknown)}")
    local = frozenset(local_only.split())
    if not local <= targets:
        raise ValueError(f"local-only moves {sorted(local - targets)} are not moves")
    return Row(targets, cloud, worktree, meaning, live, local_worktree, local)  # type: ignore[arg-type]


_ENDS = "awaiting_review needs_input completed failed cancelled"
_KEPT: tuple[WorktreeState, WorktreeState] = ("review", "discarded")

#: The lifecycle. A cancelled run's cloud status depends on who cancelled it, a failed run's on
#: whether this machine's setup failed it (see :func:`cloud_status`); every other row says it
#: alone.
TABLE: dict[RunState, Row] = {
    "starting": _row(
        f"running {_ENDS}", "running", ("running", "running"),
        "the worktree is being made and bootstrapped", live=True,
    ),
    "running": _row(_ENDS, None, ("running", "running"), "the agent is working", live=True),
    "awaiting_review": _row(
        "committing discarded revised", "awaiting_review", _KEPT,
        "done; the diff waits for the user's review",
    ),
    "needs_input": _row(
        "committing discarded revised", "needs_input", _KEPT, "the agent asked a question",
        local_only="revised",
    ),
    "completed": _row(
        "discarded", "failed", ("discarded", "discarded"), "done, with no changes to review",
    ),
    "failed": _row(
        "committing discarded revised", "failed", _KEPT,
        "the run failed (its worktree keeps any partial work)", local_only="revised",
    ),
    "cancelled": _row(
        "committing discarded revised", "queued", _KEPT,
        "cancelled (on this machine or in the cloud)", local_only="revised",
    ),
    "committing": _row(
        "committed awaiting_review needs_input failed cancelled", None, _KEPT,
        "the accepted change is being committed (recovery finishes or undoes it)",
    ),
    "committed": _row(
        "reported report_refused", "verification", ("committed", "committed"),
        "committed on the task branch; a cloud task's report is queued",
        local_worktree="done",
    ),
    "reported": _row(
        "", None, ("done", "done"), "the cloud acknowledged the report (verification)",
    ),
    "report_refused": _row(
        "committed", None, ("committed", "committed"),
        "the cloud refused the report (the claim went stale): offer it again",
    ),
    "discarded": _row("", "failed", ("discarded", "discarded"), "the changes were thrown away"),
    "revised": _row(
        "", None, ("running", "running"), "sent back: a new run continues in the same worktree",
    ),
}  # fmt: skip

#: Where a finished agent run lands, by its outcome (and whether it changed anything).
AFTER_OUTCOME: dict[tuple[Outcome, bool], RunState] = {
    ("completed", True): "awaiting_review",
    ("completed", False): "completed",
    # The check passed only next to edits of its own definitions: the reviewer must look.
    ("unverified", True): "awaiting_review",
    ("unverified", False): "completed",
    ("needs_input", True): "needs_input",
    ("needs_input", False): "needs_input",
    ("cancelled", True): "cancelled",
    ("cancelled", False): "cancelled",
    ("failed", True): "failed",
    ("failed", False): "failed",
    ("budget_exhausted", True): "failed",
    ("budget_exhausted", False): "failed",
}

#: Runs in these states were in the agent's hands: after a crash they cannot still be.
LIVE: frozenset[RunState] = frozenset(s for s, row in TABLE.items() if row.live)
#: States in which the user may look at the run's changes and decide about them (commit,
#: send back or discard, as far as the table allows each).
REVIEWABLE: frozenset[RunState] = frozenset(s for s, row in TABLE.items() if "discarded" in row.to)


#: A discard from these is the attempt's end, which the cloud has not heard yet.
DISCARD_REPORTED: frozenset[RunState] = frozenset({"awaiting_review", "needs_input"})


def allowed(current: RunState, *, cloud: bool) -> frozenset[RunState]:
    """Where a run in ``current`` may go (a cloud task's run: fewer places)."""
    row = TABLE[current]
    return row.to - row.local_only if cloud else row.to


class LifecycleError(Exception):
    """A move the table forbids: a bug, or a request for a run in the wrong state."""

    def __init__(self, run_id: str, current: RunState, target: RunState, cloud: bool) -> None:
        targets = ", ".join(sorted(allowed(current, cloud=cloud))) or "none: it is final"
        which = "a cloud task's run" if cloud else "a run"
        super().__init__(
            f"run {run_id} is {current}; {which} cannot become {target} from there"
            f" (from {current}: {targets})"
        )
        self.current = current
        self.target = target


def check(run_id: str, current: RunState, target: RunState, *, cloud: bool) -> None:
    """Raise :class:`LifecycleError` unless the table allows ``current`` → ``target``."""
    if target not in allowed(current, cloud=cloud):
        raise LifecycleError(run_id, current, target, cloud)


def after_outcome(outcome: Outcome, changed: bool) -> RunState:
    return AFTER_OUTCOME[outcome, changed]


def cloud_status(
    state: RunState, *, previous: RunState | None = None, ending: Ending | None = None
) -> CloudStatus | None:
    """What a cloud task's attempt tells the cloud on entering ``state`` (from ``previous``,
    for the ``ending`` that brought it there): a run cancelled in the cloud needs no word (the
    cloud asked for it), one its user cancelled here cancels the task, one given back (or
    stopped by this machine's setup) returns it to the queue; a commit undone returns the run
    where it was, and the cloud, which never heard of the commit, hears nothing."""
    if previous == "committing" and state != "committed":
        return None
    if state == "cancelled" and ending == "cloud":
        return None
    if state == "cancelled" and ending == "cancel":
        return "cancelled"
    if state == "failed" and ending == "local" and previous in LIVE:
        return "queued"
    if state == "discarded" and previous not in DISCARD_REPORTED:
        return None  # the cloud has this attempt's end already (failed, or given back)
    return TABLE[state].cloud


def worktree_state(state: RunState, *, changed: bool, cloud: bool) -> WorktreeState:
    """The worktree's own record for a run in ``state`` (what pruning and the pool go by)."""
    row = TABLE[state]
    if not cloud and row.local_worktree is not None:
        return row.local_worktree
    with_changes, without = row.worktree
    return with_changes if changed else without


def markdown() -> str:
    """The table as docs/daemon.md shows it (a test keeps the page in step)."""
    lines = [
        "| state | means | may become | the cloud hears | worktree |",
        "| --- | --- | --- | --- | --- |",
    ]
    for state, row in TABLE.items():
        targets = ", ".join(
            f"`{t}`" + (" (local runs)" if t in row.local_only else "") for t in sorted(row.to)
        )
        heard = f"`{row.cloud}`" if row.cloud else "—"
        if state == "cancelled":
            heard += (
                " if given back (`locus cancel --requeue`, Ctrl-C, the daemon stopping); `cancelled`"
                " after"
                " `locus cancel`; nothing if the cloud cancelled it"
            )
        if state == "failed":
            heard += " (`queued` with the reason when this machine's setup stopped the run)"
        if state == "discarded":
            heard += " (from `awaiting_review` or `needs_input`; else nothing)"
        with_changes, without = row.worktree
        kept = (
            with_changes if with_changes == without else f"{with_changes} / {without} (no changes)"
        )
        if row.local_worktree:
            kept += f"; local runs: {row.local_worktree}"
        lines.append(f"| `{state}` | {row.meaning} | {targets or 'final'} | {heard} | {kept} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
