"""The daemon's run lifecycle table, exhaustively: every state has a row, every state can be
reached and left (or is final on purpose), every agent outcome lands somewhere sensible, and —
the point of the table — every sequence of reports a run's attempt can send is one the cloud's
own task table accepts from a worker."""

from __future__ import annotations

from collections import deque
from typing import get_args

import pytest

from cloud_api.domain.states import Actor, TaskStatus, is_allowed
from locusd.agent.transcript import Outcome
from locusd.git.runmeta import FREE_STATES
from locusd.git.runmeta import STATES as WORKTREE_STATES
from locusd.protocol.messages import RunState
from locusd.runner import lifecycle
from locusd.runner.lifecycle import (
    AFTER_OUTCOME,
    ENDINGS,
    LIVE,
    REVIEWABLE,
    TABLE,
    Ending,
    LifecycleError,
    allowed,
    check,
    cloud_status,
    worktree_state,
)

STATES: tuple[RunState, ...] = get_args(RunState)
FINAL = {"reported", "discarded", "revised"}


def test_every_state_has_one_row_and_every_move_names_a_state() -> None:
    assert set(TABLE) == set(STATES)
    for state, row in TABLE.items():
        assert row.to <= set(STATES), state
        assert row.local_only <= row.to, state
        assert state not in row.to, f"{state} moves to itself"
        assert row.meaning


def test_every_state_is_reachable_from_starting_and_only_the_final_ones_are_dead_ends() -> None:
    seen = {"starting"}
    queue = deque(["starting"])
    while queue:
        for target in TABLE[queue.popleft()].to:  # type: ignore[index]
            if target not in seen:
                seen.add(target)
                queue.append(target)
    assert seen == set(STATES)
    assert {s for s, row in TABLE.items() if not row.to} == FINAL


def test_only_the_agents_states_are_live() -> None:
    assert {"starting", "running"} == LIVE
    assert not LIVE & REVIEWABLE


@pytest.mark.parametrize("outcome", get_args(Outcome))
@pytest.mark.parametrize("changed", [True, False])
def test_every_outcome_lands_on_a_state_the_running_run_may_take(
    outcome: Outcome, changed: bool
) -> None:
    state = AFTER_OUTCOME[outcome, changed]
    assert state in TABLE["running"].to and state in TABLE["starting"].to
    if state == "awaiting_review":  # only a finished run with changes waits for review
        assert outcome in ("completed", "unverified") and changed


def test_reported_means_only_that_the_cloud_acknowledged() -> None:
    """Nothing but a committed run (whose verification is queued) becomes reported; a local
    run, which has nobody to report to, stays committed (its worktree free all the same)."""
    assert [s for s, row in TABLE.items() if "reported" in row.to] == ["committed"]
    assert worktree_state("committed", changed=True, cloud=False) in FREE_STATES
    assert worktree_state("committed", changed=True, cloud=True) not in FREE_STATES
    assert worktree_state("report_refused", changed=True, cloud=True) not in FREE_STATES


@pytest.mark.parametrize("state", STATES)
def test_worktrees_with_work_in_them_are_never_free(state: RunState) -> None:
    """Pruning goes by the worktree's state: until the change is committed (and, for a cloud
    task, acknowledged) or discarded, the worktree is kept."""
    for cloud in (True, False):
        kept = worktree_state(state, changed=True, cloud=cloud)
        assert kept in WORKTREE_STATES
        if kept in FREE_STATES:
            assert state in ("reported", "discarded", "completed") or (
                state == "committed" and not cloud
            ), (state, cloud)


def test_an_undone_commit_says_nothing_to_the_cloud() -> None:
    for back in TABLE["committing"].to - {"committed"}:
        assert cloud_status(back, previous="committing") is None
    assert cloud_status("committed", previous="committing") == "verification"


def test_a_discard_ends_the_attempt_in_the_cloud_once() -> None:
    """Discarded awaiting review (or with a question open), the cloud's task would wait for a
    report forever: it hears ``failed``. From a state whose end it has heard, nothing more."""
    assert cloud_status("discarded", previous="awaiting_review") == "failed"
    assert cloud_status("discarded", previous="needs_input") == "failed"
    for heard in ("completed", "failed", "cancelled"):
        assert cloud_status("discarded", previous=heard) is None


def test_check_refuses_what_the_table_does_not_allow_naming_the_way_out() -> None:
    check("r1", "awaiting_review", "committing", cloud=True)
    with pytest.raises(LifecycleError) as refused:
        check("r1", "reported", "committing", cloud=False)
    assert "none: it is final" in str(refused.value)
    with pytest.raises(LifecycleError) as cloud_only:
        check("r1", "failed", "revised", cloud=True)
    assert "cloud task" in str(cloud_only.value) and "committing" in str(cloud_only.value)
    check("r1", "failed", "revised", cloud=False)


Walk = tuple[RunState, TaskStatus, RunState | None]


def _cloud_walk() -> list[str]:
    """Every path a cloud task's run can take from its claim, with the cloud status each report
    moves the task to; returns the reports the cloud's table would refuse. (A commit that does
    not happen goes back where it came from, so the walk remembers that.)"""
    refused: list[str] = []
    # Entering starting (the claim's run recorded) says running: the claim allows that.
    assert cloud_status("starting") == "running"
    assert is_allowed(TaskStatus.CLAIMED, TaskStatus.RUNNING, Actor.WORKER)
    start: Walk = ("starting", TaskStatus.RUNNING, None)
    seen = {start}
    queue = deque([start])
    while queue:
        state, cloud, origin = queue.popleft()
        targets = allowed(state, cloud=True)
        if state == "committing":
            targets = frozenset(t for t in targets if t in ("committed", origin))
        for target in targets:
            endings: tuple[Ending | None, ...] = (None,)
            if target in ("cancelled", "failed"):
                endings = (None, *ENDINGS)
            for ending in endings:
                by_cloud = target == "cancelled" and ending == "cloud"
                heard = cloud_status(target, previous=state, ending=ending)
                now = cloud
                if by_cloud:
                    now = TaskStatus.CANCELLED
                elif heard is not None:
                    status = TaskStatus(heard)
                    if is_allowed(cloud, status, Actor.WORKER):
                        now = status
                    else:
                        refused.append(f"{origin or state}->{target}: {cloud}->{status}")
                        now = TaskStatus.FAILED  # the report is dead; whatever the cloud has
                nxt: Walk = (target, now, state if target == "committing" else None)
                if target == "revised":  # the next round: a new run, same attempt, says running
                    assert is_allowed(now, TaskStatus.RUNNING, Actor.WORKER), (state, now)
                    nxt = ("starting", TaskStatus.RUNNING, None)
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
    return refused


def test_every_report_an_attempt_sends_is_a_move_the_cloud_allows_a_worker() -> None:
    """Walk every path of a cloud task's run (a send-back's next round included) next to the
    cloud's own table. The one report the cloud may refuse is by design: a commit of a run that
    did not end awaiting review (failed, cancelled, needs input — e.g. interrupted by a crash)
    reports verification from a status the cloud does not allow it from; the run then says
    report_refused, and ``locus review --resubmit`` offers it under a new claim."""
    refused = _cloud_walk()
    assert refused, "the walk should meet the known refusal"
    for line in refused:
        moves, statuses = line.split(": ")
        assert moves.endswith("->committed") and not moves.startswith("awaiting_review"), line
        assert statuses.endswith("->verification"), line


def test_the_docs_show_the_table() -> None:
    """docs/daemon.md carries the generated table; regenerate with
    ``python -m locusd.runner.lifecycle --markdown`` when this fails."""
    from pathlib import Path

    page = (Path(__file__).parents[3] / "docs" / "daemon.md").read_text(encoding="utf-8")
    assert lifecycle.markdown() in page
