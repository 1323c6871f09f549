"""The task state machine: the one table that says who may move a task from where to where.

The cloud is the authority on task state. Every write path (REST user actions, worker status
updates, the lease reaper) asks :func:`check_transition` before touching the database, so the
rules live here once, as data, and can be tested exhaustively without IO.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class TaskStatus(StrEnum):
    BACKLOG = "backlog"
    QUEUED = "queued"
    CLAIMED = "claimed"
    RUNNING = "running"
    NEEDS_INPUT = "needs_input"
    AWAITING_REVIEW = "awaiting_review"
    VERIFICATION = "verification"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Actor(StrEnum):
    """Who asks for a transition: a person, a worker holding the lease, or the cloud itself."""

    USER = "user"
    WORKER = "worker"
    SYSTEM = "system"


S = TaskStatus
TERMINAL: frozenset[TaskStatus] = frozenset({S.DONE, S.FAILED, S.CANCELLED})
#: States in which a worker holds a lease that expires unless heartbeated.
LEASED: frozenset[TaskStatus] = frozenset({S.CLAIMED, S.RUNNING})
#: States in which the attempt's worker still holds the task (a cancellation is sent to it).
HELD: frozenset[TaskStatus] = frozenset(
    {S.CLAIMED, S.RUNNING, S.NEEDS_INPUT, S.AWAITING_REVIEW, S.VERIFICATION}
)

_NON_TERMINAL = [s for s in TaskStatus if s not in TERMINAL]

#: (from, to) -> actors allowed to make that move. Anything absent is forbidden.
TRANSITIONS: dict[tuple[TaskStatus, TaskStatus], frozenset[Actor]] = {
    (S.BACKLOG, S.QUEUED): frozenset({Actor.USER}),
    (S.QUEUED, S.CLAIMED): frozenset({Actor.WORKER}),
    (S.CLAIMED, S.RUNNING): frozenset({Actor.WORKER}),
    (S.RUNNING, S.AWAITING_REVIEW): frozenset({Actor.WORKER}),
    # Rejected hunks with a comment go back to the agent for another round (docs/state-machine.md).
    (S.AWAITING_REVIEW, S.RUNNING): frozenset({Actor.WORKER}),
    (S.AWAITING_REVIEW, S.VERIFICATION): frozenset({Actor.WORKER}),
    (S.VERIFICATION, S.DONE): frozenset({Actor.USER}),
    # The agent asked a question; the user's answer re-queues the task.
    (S.RUNNING, S.NEEDS_INPUT): frozenset({Actor.WORKER}),
    (S.NEEDS_INPUT, S.QUEUED): frozenset({Actor.USER}),
    # Changes requested, with the reviewer's feedback handed to the next attempt.
    (S.VERIFICATION, S.QUEUED): frozenset({Actor.USER}),
    # Lease expiry (the reaper), or a worker giving the task back.
    (S.CLAIMED, S.QUEUED): frozenset({Actor.SYSTEM, Actor.WORKER}),
    (S.RUNNING, S.QUEUED): frozenset({Actor.SYSTEM, Actor.WORKER}),
    # Lease expiry after max attempts, or the worker failing the run explicitly
    # (e.g. "failed: interrupted" after a daemon crash).
    (S.CLAIMED, S.FAILED): frozenset({Actor.SYSTEM, Actor.WORKER}),
    (S.RUNNING, S.FAILED): frozenset({Actor.SYSTEM, Actor.WORKER}),
    # The reviewer on the worker's machine discarded the proposed change (or the unanswered
    # question's run): the attempt ends there (docs/review.md).
    (S.AWAITING_REVIEW, S.FAILED): frozenset({Actor.WORKER}),
    (S.NEEDS_INPUT, S.FAILED): frozenset({Actor.WORKER}),
    # Retry.
    (S.FAILED, S.QUEUED): frozenset({Actor.USER}),
    (S.CANCELLED, S.QUEUED): frozenset({Actor.USER}),
    # Any non-terminal state can be cancelled by a user; one the worker holds on a lease also
    # by the worker, for its user who cancelled the run on their machine (``locus cancel``).
    **{
        (s, S.CANCELLED): frozenset({Actor.USER, Actor.WORKER} if s in LEASED else {Actor.USER})
        for s in _NON_TERMINAL
    },
}


class UserAction(StrEnum):
    """What a person can do to a task's status (one REST endpoint each)."""

    QUEUE = "queue"
    CANCEL = "cancel"
    RETRY = "retry"
    APPROVE = "approve"
    REQUEST_CHANGES = "request-changes"
    ANSWER = "answer"


#: Each user action: the states it applies to, and where it moves the task. Several actions
#: share a target (queued), so the source is what tells them apart: 'retry' on a backlog task
#: is refused rather than quietly queueing it.
USER_ACTIONS: dict[UserAction, tuple[frozenset[TaskStatus], TaskStatus]] = {
    UserAction.QUEUE: (frozenset({S.BACKLOG}), S.QUEUED),
    UserAction.CANCEL: (frozenset(_NON_TERMINAL), S.CANCELLED),
    UserAction.RETRY: (frozenset({S.FAILED, S.CANCELLED}), S.QUEUED),
    UserAction.APPROVE: (frozenset({S.VERIFICATION}), S.DONE),
    UserAction.REQUEST_CHANGES: (frozenset({S.VERIFICATION}), S.QUEUED),
    UserAction.ANSWER: (frozenset({S.NEEDS_INPUT}), S.QUEUED),
}


@dataclass(frozen=True)
class ActionError(Exception):
    """A user action asked of a task in a state it does not apply to (→ 409)."""

    action: UserAction
    current: TaskStatus

    def __str__(self) -> str:
        sources, target = USER_ACTIONS[self.action]
        names = " | ".join(f"'{s}'" for s in sorted(sources))
        applies = ", ".join(actions_from(self.current)) or "none"
        return (
            f"'{self.action}' moves a task from {names} to '{target}'; this one is"
            f" '{self.current}' (what applies there: {applies})"
        )


def actions_from(current: TaskStatus) -> list[UserAction]:
    """The user actions that apply to a task in ``current``, in the table's order: what an
    error says can be done instead."""
    return [action for action, (sources, _) in USER_ACTIONS.items() if current in sources]


def action_target(action: UserAction, current: TaskStatus) -> TaskStatus:
    """Where ``action`` moves a task that is ``current``; raises ActionError if it does not apply."""
    sources, target = USER_ACTIONS[action]
    if current not in sources:
        raise ActionError(action, current)
    check_transition(current, target, Actor.USER)
    return target


@dataclass(frozen=True)
class TransitionError(Exception):
    """A move the table forbids. The API turns it into 409 with the current state."""

    current: TaskStatus
    target: TaskStatus
    actor: Actor

    def __str__(self) -> str:
        allowed = allowed_targets(self.current, self.actor)
        hint = ", ".join(sorted(allowed)) if allowed else "none"
        return (
            f"a {self.actor} cannot move a task from '{self.current}' to '{self.target}'"
            f" (allowed from '{self.current}' for a {self.actor}: {hint})"
        )


def is_allowed(current: TaskStatus, target: TaskStatus, actor: Actor) -> bool:
    return actor in TRANSITIONS.get((current, target), frozenset())


def check_transition(current: TaskStatus, target: TaskStatus, actor: Actor) -> None:
    """Raise :class:`TransitionError` unless ``actor`` may move ``current`` to ``target``."""
    if not is_allowed(current, target, actor):
        raise TransitionError(current, target, actor)


def allowed_targets(current: TaskStatus, actor: Actor) -> frozenset[TaskStatus]:
    return frozenset(
        t for (f, t), actors in TRANSITIONS.items() if f == current and actor in actors
    )


class Lease(StrEnum):
    """What a move does to ``lease_expires_at``."""

    RENEW = "renew"  # now + lease_seconds: the worker holds the task on a clock
    CLEAR = "clear"  # no lease: nothing expires outside claimed/running


class Hold(StrEnum):
    """What a move does to the holder's ``lease_owner_id`` or ``claim_token``."""

    TAKE = "take"  # a claim: the claiming worker, a fresh token (and the next attempt)
    KEEP = "keep"  # the attempt's worker still holds it (it may report, be told to stop)
    DROP = "drop"  # nobody holds it: every write with the old fence gets 409


class Count(StrEnum):
    """What a move does to ``expired_leases`` (expiries since a person last queued it)."""

    KEEP = "keep"
    ADD_ONE = "add_one"  # this move is a lease expiry
    RESET = "reset"  # a person queued it: a fresh set of attempts


class Stamp(StrEnum):
    """What a move does to ``queued_at`` (the task's place in the queue)."""

    KEEP = "keep"  # back from an expiry or a give-back: it keeps its place
    NOW = "now"  # a person queued it: its age starts now


@dataclass(frozen=True)
class LeaseRule:
    """Everything a move does to the lease columns. Applied only by the store's write path
    (``cloud_api.store.tasks.lease_values``): the claim, the heartbeat, every transition."""

    lease: Lease
    owner: Hold
    token: Hold
    expiries: Count = Count.KEEP
    queued_at: Stamp = Stamp.KEEP


_OFF_CLOCK = LeaseRule(Lease.CLEAR, Hold.KEEP, Hold.KEEP)
_ON_CLOCK = LeaseRule(Lease.RENEW, Hold.KEEP, Hold.KEEP)
#: The reaper: the worker lost the task, so its fence goes with the lease (queued or failed).
_EXPIRED = LeaseRule(Lease.CLEAR, Hold.DROP, Hold.DROP, expiries=Count.ADD_ONE)

#: (target, actor) -> what the move does to the lease, its holder and the attempt counters.
#: One entry for every (target, actor) that TRANSITIONS allows; nothing else writes these.
LEASE_RULES: dict[tuple[TaskStatus, Actor], LeaseRule] = {
    # A person queues it (first time, retry, answer, changes requested): fresh attempts.
    (S.QUEUED, Actor.USER): LeaseRule(
        Lease.CLEAR, Hold.DROP, Hold.DROP, expiries=Count.RESET, queued_at=Stamp.NOW
    ),
    # The worker gives it back: nobody holds it, it keeps its place in the queue.
    (S.QUEUED, Actor.WORKER): LeaseRule(Lease.CLEAR, Hold.DROP, Hold.DROP),
    (S.QUEUED, Actor.SYSTEM): _EXPIRED,
    (S.FAILED, Actor.SYSTEM): _EXPIRED,
    (S.CLAIMED, Actor.WORKER): LeaseRule(Lease.RENEW, Hold.TAKE, Hold.TAKE),
    # Started, or back to work after review: a fresh lease from now.
    (S.RUNNING, Actor.WORKER): _ON_CLOCK,
    # Waiting for a person: no lease (nothing to expire), the worker still holds the attempt.
    (S.NEEDS_INPUT, Actor.WORKER): _OFF_CLOCK,
    (S.AWAITING_REVIEW, Actor.WORKER): _OFF_CLOCK,
    (S.VERIFICATION, Actor.WORKER): _OFF_CLOCK,
    # Ended: no lease; the owner and token stay, so the worker's heartbeat hears 'cancelled'
    # and its last logs of a failed run are still accepted.
    (S.FAILED, Actor.WORKER): _OFF_CLOCK,
    (S.DONE, Actor.USER): _OFF_CLOCK,
    (S.CANCELLED, Actor.USER): _OFF_CLOCK,
    (S.CANCELLED, Actor.WORKER): _OFF_CLOCK,
}

#: A heartbeat renews the lease of a task in LEASED, and changes nothing else.
HEARTBEAT = _ON_CLOCK


def lease_rule(target: TaskStatus, actor: Actor) -> LeaseRule:
    """What moving to ``target`` as ``actor`` does to the lease (the move is checked first)."""
    return LEASE_RULES[target, actor]


def lease_expiry_target(expired_leases: int, max_attempts: int) -> TaskStatus:
    """Where a task goes when its lease runs out: back to the queue, or failed for good.

    ``expired_leases`` counts expiries since the task was last queued by a person, including
    this one, so a user's retry gives the task a fresh set of attempts.
    """
    return S.FAILED if expired_leases >= max_attempts else S.QUEUED
