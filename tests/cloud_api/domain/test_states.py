"""The pure task state machine (docs/state-machine.md) checked against a table written out
independently here, so a change to ``cloud_api.domain.states`` that drifts from that page fails.

No IO: the table is data, so it is compared exhaustively and sampled with hypothesis.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud_api.domain.states import (
    LEASED,
    TERMINAL,
    TRANSITIONS,
    USER_ACTIONS,
    ActionError,
    Actor,
    TaskStatus,
    TransitionError,
    UserAction,
    action_target,
    allowed_targets,
    check_transition,
    is_allowed,
    lease_expiry_target,
)

U, W, SYS = "user", "worker", "system"
NON_TERMINAL = (
    "backlog",
    "queued",
    "claimed",
    "running",
    "needs_input",
    "awaiting_review",
    "verification",
)

#: (from, to, actor), spelled out from docs/state-machine.md — deliberately not derived from the
#: module.
EXPECTED: frozenset[tuple[str, str, str]] = frozenset(
    {
        ("backlog", "queued", U),
        ("queued", "claimed", W),
        ("claimed", "running", W),
        ("running", "awaiting_review", W),
        # Rejected hunks go back to the agent for another round.
        ("awaiting_review", "running", W),
        ("awaiting_review", "verification", W),
        ("verification", "done", U),
        # The agent asked a question; the user's answer re-queues the task.
        ("running", "needs_input", W),
        ("needs_input", "queued", U),
        # Changes requested.
        ("verification", "queued", U),
        # Lease expiry (system) or the worker giving the task back.
        ("claimed", "queued", SYS),
        ("claimed", "queued", W),
        ("running", "queued", SYS),
        ("running", "queued", W),
        # Lease expiry after max attempts (system) or the worker failing the run.
        ("claimed", "failed", SYS),
        ("claimed", "failed", W),
        ("running", "failed", SYS),
        ("running", "failed", W),
        # The reviewer discarded the run's change on the worker's machine.
        ("awaiting_review", "failed", W),
        ("needs_input", "failed", W),
        # Retry.
        ("failed", "queued", U),
        ("cancelled", "queued", U),
        # The worker's user cancelled the run on their machine (locus cancel).
        ("claimed", "cancelled", W),
        ("running", "cancelled", W),
    }
    | {(s, "cancelled", U) for s in NON_TERMINAL}
)

#: The user's endpoints: the states each applies to and where it moves the task.
EXPECTED_ACTIONS: dict[str, tuple[frozenset[str], str]] = {
    "queue": (frozenset({"backlog"}), "queued"),
    "cancel": (frozenset(NON_TERMINAL), "cancelled"),
    "retry": (frozenset({"failed", "cancelled"}), "queued"),
    "approve": (frozenset({"verification"}), "done"),
    "request-changes": (frozenset({"verification"}), "queued"),
    "answer": (frozenset({"needs_input"}), "queued"),
}

statuses = st.sampled_from(list(TaskStatus))
actors = st.sampled_from(list(Actor))


def actual_table() -> set[tuple[str, str, str]]:
    return {(str(f), str(t), str(a)) for (f, t), actors_ in TRANSITIONS.items() for a in actors_}


def test_transition_table_is_exactly_the_brief() -> None:
    actual = actual_table()
    assert actual - EXPECTED == set(), "transitions the brief does not allow"
    assert EXPECTED - actual == set(), "transitions the brief asks for but the table lacks"


def test_every_state_and_actor_is_known() -> None:
    """The enums name exactly the brief's states and the three actors."""
    assert {str(s) for s in TaskStatus} == set(NON_TERMINAL) | {"done", "failed", "cancelled"}
    assert {str(a) for a in Actor} == {U, W, SYS}
    assert all(actors_ for actors_ in TRANSITIONS.values()), "an entry that allows nobody"


def test_terminal_and_leased_sets() -> None:
    assert {str(s) for s in TERMINAL} == {"done", "failed", "cancelled"}
    assert {str(s) for s in LEASED} == {"claimed", "running"}


def test_terminal_states_only_leave_by_retry() -> None:
    actual = actual_table()
    assert {(f, t, a) for f, t, a in actual if f == "done"} == set()
    for state in ("failed", "cancelled"):
        assert {(f, t, a) for f, t, a in actual if f == state} == {(state, "queued", U)}


@pytest.mark.parametrize("state", NON_TERMINAL)
def test_every_non_terminal_state_can_be_cancelled_by_a_user(state: str) -> None:
    """A worker may cancel only what it holds on a lease (its user's ``locus cancel`` of the
    run); a task waiting for a person is the team's to cancel; the cloud never cancels."""
    target = TaskStatus.CANCELLED
    assert is_allowed(TaskStatus(state), target, Actor.USER)
    leased = state in ("claimed", "running")
    assert is_allowed(TaskStatus(state), target, Actor.WORKER) == leased
    assert not is_allowed(TaskStatus(state), target, Actor.SYSTEM)


@given(statuses, statuses, actors)
def test_is_allowed_agrees_with_the_expected_table(
    current: TaskStatus, target: TaskStatus, actor: Actor
) -> None:
    expected = (str(current), str(target), str(actor)) in EXPECTED
    assert is_allowed(current, target, actor) is expected
    if expected:
        check_transition(current, target, actor)  # does not raise
    else:
        with pytest.raises(TransitionError):
            check_transition(current, target, actor)


@given(statuses, actors)
def test_allowed_targets_agrees_with_the_expected_table(current: TaskStatus, actor: Actor) -> None:
    expected = {t for f, t, a in EXPECTED if f == current and a == actor}
    assert {str(t) for t in allowed_targets(current, actor)} == expected


@given(statuses, statuses, actors)
def test_transition_error_names_current_target_and_what_is_allowed(
    current: TaskStatus, target: TaskStatus, actor: Actor
) -> None:
    if (str(current), str(target), str(actor)) in EXPECTED:
        return
    with pytest.raises(TransitionError) as info:
        check_transition(current, target, actor)
    err = info.value
    assert (err.current, err.target, err.actor) == (current, target, actor)
    message = str(err)
    assert f"'{current}'" in message and f"'{target}'" in message
    allowed = {t for f, t, a in EXPECTED if f == current and a == actor}
    # The list of what is allowed is the last parenthesised part: "(allowed …: a, b)".
    tail = message.rsplit(":", 1)[1]
    named = set(re.findall(r"[a-z_]+", tail))
    assert named == (allowed or {"none"})


def test_transition_error_example_message() -> None:
    """One concrete message, for a reader: a worker cannot finish a task itself."""
    with pytest.raises(TransitionError) as info:
        check_transition(TaskStatus.VERIFICATION, TaskStatus.DONE, Actor.WORKER)
    message = str(info.value)
    assert "'verification'" in message and "'done'" in message and "none" in message


@given(st.integers(min_value=1, max_value=100), st.integers(min_value=1, max_value=100))
def test_lease_expiry_target(expired_leases: int, max_attempts: int) -> None:
    """Back to the queue until ``max_attempts`` leases expired, then failed for good."""
    target = lease_expiry_target(expired_leases, max_attempts)
    assert target == ("failed" if expired_leases >= max_attempts else "queued")
    # Whatever it picks, the system is allowed to make that move from a leased state.
    for leased in LEASED:
        assert is_allowed(leased, target, Actor.SYSTEM)


def test_lease_expiry_target_boundaries() -> None:
    assert lease_expiry_target(1, 3) is TaskStatus.QUEUED
    assert lease_expiry_target(2, 3) is TaskStatus.QUEUED
    assert lease_expiry_target(3, 3) is TaskStatus.FAILED
    assert lease_expiry_target(1, 1) is TaskStatus.FAILED


def test_user_actions_are_the_expected_ones() -> None:
    actual = {
        str(action): (frozenset(str(s) for s in sources), str(target))
        for action, (sources, target) in USER_ACTIONS.items()
    }
    assert actual == EXPECTED_ACTIONS


def test_every_user_move_has_exactly_one_action() -> None:
    """The endpoints cover the table's user moves, each once, and offer nothing beyond it."""
    offered = [(s, t) for sources, t in EXPECTED_ACTIONS.values() for s in sources]
    assert len(offered) == len(set(offered))
    assert {(s, t, U) for s, t in offered} == {m for m in EXPECTED if m[2] == U}


@given(st.sampled_from(list(UserAction)), statuses)
def test_action_target_applies_only_to_its_source_states(
    action: UserAction, current: TaskStatus
) -> None:
    sources, target = EXPECTED_ACTIONS[str(action)]
    if current in sources:
        assert action_target(action, current) == target
    else:
        with pytest.raises(ActionError) as info:
            action_target(action, current)
        message = str(info.value)
        assert f"'{action}'" in message and f"'{current}'" in message
        assert all(f"'{s}'" in message for s in sources)
        # … and what can be done with the task instead (what `locus tasks` and the API say).
        instead = [a for a, (froms, _) in EXPECTED_ACTIONS.items() if current in froms]
        assert message.endswith(f"(what applies there: {', '.join(instead) or 'none'})")
