"""Named points between the daemon's side effects, where the kill-point suite
(``tests/locusd/killpoints/``) kills the daemon with SIGKILL to prove that recovery finishes or
undoes every step.

``LOCUS_CRASH_AT=commit.made`` in the daemon's environment makes it SIGKILL itself the first
time it reaches that point (``name#2``: the second time). Unset — always, outside the suite —
:func:`crashpoint` is one comparison. :data:`POINTS` lists every point with what
recovery does there; ``docs/daemon.md`` shows it, and a test checks each is reached.
"""

from __future__ import annotations

from cloud_api.crashpoints import CrashPoints

#: Every point, in the order a run meets them, with what the next daemon does about a kill
#: there. Only names listed here may be passed to :func:`crashpoint`.
POINTS: dict[str, str] = {
    "run.claimed": "the claim was never recorded: the cloud re-queues the task when its lease"
    " runs out; nothing local to recover",
    "run.recorded": "the run (starting) and its `running` report are recorded: the run becomes"
    " failed: interrupted, reported as failed",
    "pool.claimed": "(in the agent process) a pooled worktree's metadata names the new run, not"
    " yet moved: the daemon fails the run and names the worktree (found by its metadata)",
    "pool.moved": "(in the agent process) the pooled worktree is renamed for the new run, not"
    " yet checked out: the daemon fails the run and names the worktree, clean at its old commit",
    "run.worktree": "the worktree exists but is not yet named by the run: recovery finds it by"
    " its metadata (or folder) and names it, then fails the run as interrupted",
    "run.working": "the agent was mid-run: the run becomes failed: interrupted, its worktree"
    " kept and named, reported as failed",
    "run.finished": "the agent had finished (the transcript has its footer) but the end was not"
    " recorded: recovery ends the run as the footer says and reports it",
    "run.ended": "the end state and its reports were recorded together: the outbox sends them",
    "cancel.requested": "the user's cancel (`locus cancel`, or `--requeue`) is recorded, the run"
    " not yet stopped: recovery ends the run cancelled and reports the user's choice (the task"
    " `cancelled`, or `queued`)",
    "commit.intent": "the commit was about to be made: nothing happened, the index is reset and"
    " the run is reviewable again",
    "commit.made": "git made the commit but the run does not know: recovery recognises the"
    " commit (same parent, same message) and records it, with its report",
    "commit.branched": "the commit is on its new branch but the run does not know: recovery"
    " recognises the commit and records it with its branch and report",
    "commit.recorded": "the commit and its `verification` report are recorded: the outbox sends"
    " it; recovery deletes the run's `refs/locus/runs/` ref if it is still there",
    "outbox.acknowledged": "the cloud applied a write the outbox had not marked sent: it is"
    " resent under the same Idempotency-Key (a replay, not a second effect), audited once",
    "discard.reset": "the worktree was reset but the run not recorded discarded: it stays"
    " reviewable (nothing to review), its work still under `refs/locus/runs/<run-id>`",
    "discard.recorded": "the run is discarded but its ref not yet deleted: recovery deletes it",
    "send_back.recorded": "the run is revised and the next round's run recorded: the new run"
    " becomes failed: interrupted in the same worktree, reviewable",
    "graph.state_writing": "(`locus graph show`, not the daemon) half the new graph index state"
    " is written: the old state is read, whole, and the next index reads again the manifests"
    " that changed",
}

crashpoint = CrashPoints(POINTS, "locusd.crashpoints.POINTS")


def markdown() -> str:
    """The points as docs/daemon.md shows them (a test keeps the page in step)."""
    return crashpoint.markdown("kill point", "what the next daemon does")
