"""Which move takes a card to a bulk target (cloud_api/dashboard/moves.py), what the person is
told after a partial bulk move, and the board's filters as a URL (a search is data there too)."""

from __future__ import annotations

from urllib.parse import parse_qs

from cloud_api.dashboard.moves import TARGETS, move_for
from cloud_api.dashboard.views.board import Filters
from cloud_api.dashboard.views.bulk import Outcome
from cloud_api.domain.states import TaskStatus, UserAction

S = TaskStatus


def test_each_target_is_reached_by_the_one_action_the_state_table_allows() -> None:
    assert move_for(S.BACKLOG, S.QUEUED) is UserAction.QUEUE
    assert move_for(S.FAILED, S.QUEUED) is UserAction.RETRY
    assert move_for(S.CANCELLED, S.QUEUED) is UserAction.RETRY
    assert move_for(S.VERIFICATION, S.DONE) is UserAction.APPROVE
    assert move_for(S.RUNNING, S.CANCELLED) is UserAction.CANCEL
    # No wordless move: request changes and answer need text; finished work stays finished.
    assert move_for(S.VERIFICATION, S.QUEUED) is None
    assert move_for(S.NEEDS_INPUT, S.QUEUED) is None
    assert move_for(S.DONE, S.CANCELLED) is None
    assert move_for(S.BACKLOG, S.DONE) is None
    assert list(TARGETS) == [S.QUEUED, S.DONE, S.CANCELLED]  # the order of the keys 1, 2, 3


def test_a_partial_bulk_move_says_what_moved_and_why_the_rest_did_not() -> None:
    partial = Outcome(moved=[1, 3], refused=[(2, "a done task cannot move there")])
    assert partial.message(S.QUEUED) == (
        "Moved 2 tasks to queued: #1, #3. Not moved: #2: a done task cannot move there."
    )
    nothing = Outcome(moved=[], refused=[(2, "x"), (4, "y")])
    assert nothing.message(S.DONE) == "Not done: #2: x; #4: y."  # shown as an error
    assert Outcome(moved=[5], refused=[]).message(S.CANCELLED) == "Moved 1 task to cancelled: #5."


def test_filters_as_a_url_keep_a_search_as_data() -> None:
    filters = Filters(sprint_id=2, label=None, worker_id=None, q="100% & more=#1", mine=True)
    assert parse_qs(filters.query_string()) == {
        "sprint_id": ["2"],
        "q": ["100% & more=#1"],
        "mine": ["1"],
    }
    assert Filters(None, None, None).query_string() == ""
