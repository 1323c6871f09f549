"""The lease table (``cloud_api.domain.states.LEASE_RULES``): what every move does to the lease,
its holder (owner, claim token, attempt) and the attempt counters.

Pure: the table is compared with one spelled out here from docs/state-machine.md, and
hypothesis walks random paths of allowed moves over a model row, checking the invariants the
rest of the system relies on (the reaper finds every lease, a cancellation finds its worker, a
stale fence is refused).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hypothesis import given
from hypothesis import strategies as st

from cloud_api.domain.states import (
    HEARTBEAT,
    HELD,
    LEASE_RULES,
    LEASED,
    TRANSITIONS,
    Actor,
    Count,
    Hold,
    Lease,
    Stamp,
    TaskStatus,
    allowed_targets,
    lease_rule,
)
from tests.cloud_api.domain.test_states import EXPECTED

#: (target, actor) -> (lease, owner, token, expired_leases, queued_at), written out here.
EXPECTED_RULES: dict[tuple[str, str], tuple[str, str, str, str, str]] = {
    ("queued", "user"): ("clear", "drop", "drop", "reset", "now"),
    ("queued", "worker"): ("clear", "drop", "drop", "keep", "keep"),
    ("queued", "system"): ("clear", "drop", "drop", "add_one", "keep"),
    ("failed", "system"): ("clear", "drop", "drop", "add_one", "keep"),
    ("claimed", "worker"): ("renew", "take", "take", "keep", "keep"),
    ("running", "worker"): ("renew", "keep", "keep", "keep", "keep"),
    ("needs_input", "worker"): ("clear", "keep", "keep", "keep", "keep"),
    ("awaiting_review", "worker"): ("clear", "keep", "keep", "keep", "keep"),
    ("verification", "worker"): ("clear", "keep", "keep", "keep", "keep"),
    ("failed", "worker"): ("clear", "keep", "keep", "keep", "keep"),
    ("done", "user"): ("clear", "keep", "keep", "keep", "keep"),
    ("cancelled", "user"): ("clear", "keep", "keep", "keep", "keep"),
    # Cancelled by the worker for its user: ended like a user's cancel (the fence stays, so the
    # run's last logs are still accepted).
    ("cancelled", "worker"): ("clear", "keep", "keep", "keep", "keep"),
}


def test_the_table_is_exactly_the_expected_one() -> None:
    actual = {
        (str(target), str(actor)): (
            str(r.lease),
            str(r.owner),
            str(r.token),
            str(r.expiries),
            str(r.queued_at),
        )
        for (target, actor), r in LEASE_RULES.items()
    }
    assert actual == EXPECTED_RULES


def test_every_allowed_move_has_a_rule_and_no_rule_is_for_a_forbidden_one() -> None:
    moves = {(to, actor) for (_from, to), actors in TRANSITIONS.items() for actor in actors}
    assert moves == set(LEASE_RULES), "the state table and the lease table disagree"
    assert {(t, a) for _f, t, a in EXPECTED} == {(str(t), str(a)) for t, a in LEASE_RULES}


def test_a_lease_exists_exactly_in_the_leased_states() -> None:
    for (target, _actor), rule in LEASE_RULES.items():
        assert (rule.lease is Lease.RENEW) is (target in LEASED), target
    assert HEARTBEAT.lease is Lease.RENEW
    assert (HEARTBEAT.owner, HEARTBEAT.token) == (Hold.KEEP, Hold.KEEP)


def test_owner_and_token_move_together_and_only_a_claim_takes_them() -> None:
    for (target, actor), rule in LEASE_RULES.items():
        assert rule.owner is rule.token, (target, actor)
        assert (rule.owner is Hold.TAKE) is (target is TaskStatus.CLAIMED)
        # The fence is dropped when the task goes back to the queue or its lease expired.
        dropped = target is TaskStatus.QUEUED or actor is Actor.SYSTEM
        assert (rule.owner is Hold.DROP) is dropped, (target, actor)


def test_only_an_expiry_counts_and_only_a_person_queueing_resets() -> None:
    for (target, actor), rule in LEASE_RULES.items():
        assert (rule.expiries is Count.ADD_ONE) is (actor is Actor.SYSTEM)
        by_person = (target, actor) == (TaskStatus.QUEUED, Actor.USER)
        assert (rule.expiries is Count.RESET) is by_person
        assert (rule.queued_at is Stamp.NOW) is by_person


@dataclass(frozen=True)
class Row:
    """The lease columns of one task, as the rules leave them (None: not set)."""

    status: TaskStatus
    lease: bool = False
    owner: int | None = None
    token: int | None = None
    attempt: int = 0
    expired: int = 0
    queued_at: int | None = None


def apply(row: Row, target: TaskStatus, actor: Actor, clock: int) -> Row:
    """The model of ``cloud_api.store.tasks.lease_values``: one worker (7) and a counter as
    token, so a fresh token is visibly fresh."""
    rule = lease_rule(target, actor)
    holder = {Hold.TAKE: (7, clock), Hold.KEEP: (row.owner, row.token), Hold.DROP: (None, None)}
    owner, token = holder[rule.owner][0], holder[rule.token][1]
    expired = {Count.KEEP: row.expired, Count.ADD_ONE: row.expired + 1, Count.RESET: 0}
    return replace(
        row,
        status=target,
        lease=rule.lease is Lease.RENEW,
        owner=owner,
        token=token,
        attempt=row.attempt + (rule.owner is Hold.TAKE),
        expired=expired[rule.expiries],
        queued_at=clock if rule.queued_at is Stamp.NOW else row.queued_at,
    )


@given(st.lists(st.tuples(st.integers(0, 20), st.sampled_from(list(Actor))), max_size=40))
def test_any_path_of_allowed_moves_keeps_the_lease_invariants(
    steps: list[tuple[int, Actor]],
) -> None:
    row = apply(Row(TaskStatus.BACKLOG), TaskStatus.QUEUED, Actor.USER, clock=0)
    claims = 0
    for clock, (pick, actor) in enumerate(steps, start=1):
        targets = sorted(allowed_targets(row.status, actor))
        if not targets:
            continue
        before, target = row, targets[pick % len(targets)]
        row = apply(row, target, actor, clock)
        claims += target is TaskStatus.CLAIMED
        # The reaper finds exactly the tasks with a clock running.
        assert row.lease is (row.status in LEASED)
        # A held task has its worker and fence (a cancellation reaches it, a stale one is refused).
        if row.status in HELD:
            assert row.owner is not None and row.token is not None
        # Queued means nobody holds it: no old fence is accepted.
        if row.status is TaskStatus.QUEUED:
            assert row.owner is None and row.token is None
        assert (row.owner is None) is (row.token is None)
        # Each claim is a new attempt with a token no earlier attempt had.
        assert row.attempt == claims
        if target is TaskStatus.CLAIMED:
            assert row.token != before.token
        # The queue position moves only when a person queues it.
        if row.queued_at != before.queued_at:
            assert (target, actor) == (TaskStatus.QUEUED, Actor.USER)
        assert 0 <= row.expired <= clock
