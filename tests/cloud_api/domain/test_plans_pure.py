"""The planning requests' rules, pure: the one table of moves, and what an acceptance creates
(each proposal once, however often it is accepted)."""

from __future__ import annotations

import pytest

from cloud_api.domain.plans import (
    Mover,
    PlanMoveError,
    PlanStatus,
    accepting,
    check_move,
    claimable_from,
    with_task,
)

PROPOSALS = [{"number": n, "title": f"t{n}", "task_id": None} for n in (1, 2, 3)]


def test_a_worker_reports_only_a_request_it_is_planning() -> None:
    check_move(PlanStatus.PLANNING, Mover.WORKER_REPORT, PlanStatus.PROPOSED)
    check_move(PlanStatus.PLANNING, Mover.WORKER_REPORT, PlanStatus.FAILED)
    for done in (PlanStatus.PENDING, PlanStatus.PROPOSED, PlanStatus.FAILED):
        with pytest.raises(PlanMoveError, match=f"'{done}' cannot become 'proposed'"):
            check_move(done, Mover.WORKER_REPORT, PlanStatus.PROPOSED)
    with pytest.raises(PlanMoveError):
        check_move(PlanStatus.PROPOSED, Mover.WORKER_CLAIM, PlanStatus.PLANNING)
    assert claimable_from() == ["pending", "planning"]


def test_accepting_creates_each_proposal_once_and_names_unknown_numbers() -> None:
    first = accepting(PROPOSALS, [3, 1, 1])
    assert [p["number"] for p in first.create] == [1, 3] and first.already == []
    made = with_task(with_task(PROPOSALS, 1, 41), 3, 43)
    again = accepting(made, [1, 3, 2, 9])
    assert [p["number"] for p in again.create] == [2]
    assert [p["task_id"] for p in again.already] == [41, 43]
    assert again.unknown == [9]
    assert PROPOSALS[0]["task_id"] is None  # with_task made a new list
