"""Planning requests (``locus plan`` from the dashboard), as pure rules: their lifecycle as one
table, which of them a worker may claim, and which proposals an acceptance creates.

A request is its own small resource rather than a kind of task: a task's lifecycle (queue,
review, verification) does not apply to "read the code and propose tasks", and no board,
backlog or claim of tasks ever has to pass over one. It is claimed with the same fencing as
a task (a fresh claim token and attempt number; a stale one's report is refused), under a
lease long enough for a planning run: a worker that vanishes leaves it claimable again once
the lease is over.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class PlanStatus(StrEnum):
    PENDING = "pending"  # asked for; no worker has it
    PLANNING = "planning"  # a worker claimed it and runs the planning run
    PROPOSED = "proposed"  # the worker sent its proposals: a person accepts some or all
    FAILED = "failed"  # the planning run ended without proposals (the reason says why)


class Mover(StrEnum):
    WORKER_CLAIM = "worker_claim"
    WORKER_REPORT = "worker_report"


#: The one table of moves: (from, who) → the statuses that move may reach. A claim also takes
#: a request whose lease is over (PLANNING → PLANNING with a new fence).
MOVES: dict[tuple[PlanStatus, Mover], frozenset[PlanStatus]] = {
    (PlanStatus.PENDING, Mover.WORKER_CLAIM): frozenset({PlanStatus.PLANNING}),
    (PlanStatus.PLANNING, Mover.WORKER_CLAIM): frozenset({PlanStatus.PLANNING}),
    (PlanStatus.PLANNING, Mover.WORKER_REPORT): frozenset({PlanStatus.PROPOSED, PlanStatus.FAILED}),
}

#: How long a claim holds a request: a planning run's budget fits well inside it. There is
#: no heartbeat; a run that outlives it may find its report refused (a newer claim holds it).
PLAN_LEASE_SECONDS = 3600.0


class PlanMoveError(Exception):
    pass


def check_move(current: PlanStatus, mover: Mover, target: PlanStatus) -> None:
    """Raise PlanMoveError unless the table allows ``current`` → ``target`` by ``mover``."""
    if target not in MOVES.get((current, mover), frozenset()):
        raise PlanMoveError(f"a planning request that is '{current}' cannot become '{target}'")


def claimable_from() -> list[str]:
    """The statuses a claim may take a request from (PLANNING only once its lease is over)."""
    return sorted({s.value for (s, m) in MOVES if m is Mover.WORKER_CLAIM})


@dataclass(frozen=True)
class Acceptance:
    """What accepting ``numbers`` does: the proposals to create now, those already created
    (a double submit), and numbers the request has no proposal for."""

    create: list[dict[str, Any]]
    already: list[dict[str, Any]]
    unknown: list[int]


def accepting(proposals: Sequence[dict[str, Any]], numbers: Iterable[int]) -> Acceptance:
    wanted = set(numbers)
    chosen = [p for p in proposals if p["number"] in wanted]
    unknown = sorted(wanted - {p["number"] for p in proposals})
    return Acceptance(
        create=[p for p in chosen if p.get("task_id") is None],
        already=[p for p in chosen if p.get("task_id") is not None],
        unknown=unknown,
    )


def with_task(
    proposals: Sequence[dict[str, Any]], number: int, task_id: int
) -> list[dict[str, Any]]:
    """The proposals with proposal ``number`` recorded as created as task ``task_id``."""
    return [{**p, "task_id": task_id} if p["number"] == number else dict(p) for p in proposals]
