"""Claims, heartbeats and fenced worker writes.

A claim is one atomic statement: pick the best queued task the worker may take (priority,
then age) and lease it, in a single ``UPDATE … WHERE id = (SELECT … LIMIT 1)``. On PostgreSQL
the inner SELECT uses ``FOR UPDATE SKIP LOCKED`` so racing claimers pass over each other's rows
instead of queueing on them; on SQLite the writer's ``BEGIN IMMEDIATE`` serialises claims.
The lease carries a fresh random claim token; with the attempt number it fences every later
write of that worker (a worker whose lease was taken over gets 409 and must stop). What a claim
and a heartbeat write to the lease columns comes from the lease table
(``cloud_api.domain.states.LEASE_RULES``), as for every other move.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    Row,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)

from cloud_api.dispatch import footprints
from cloud_api.domain.footprints import OverlapPolicy, overlap_event
from cloud_api.domain.states import HEARTBEAT, LEASED, Actor, TaskStatus, lease_rule
from cloud_api.store import tasks as task_store
from cloud_api.store.db import NOTIFY_CHANNEL, Database, Tx
from cloud_api.store.tables import DISPATCH_ORDER, task_events, tasks, workers
from cloud_api.store.types import db_now


@dataclass(frozen=True)
class WorkerIdentity:
    id: int
    project_id: int
    repositories: tuple[str, ...]


class StaleClaim(Exception):
    """The (attempt, claim token) no longer holds the task."""

    def __init__(self, current: Row[Any]) -> None:
        super().__init__("stale claim")
        self.current = current


def _claim_statement(
    skip_locked: bool,
    one_task: bool = False,
    excluding: bool = False,
    guarded: bool = False,
    held_unchanged: bool = False,
) -> Any:
    """Built once per backend, with bind parameters: claims are the hot path, and building
    (and cache-keying) a statement tree per call cost more than executing it. ``one_task``:
    the variant that claims only the task ``p_task`` (``locus run --task ID``); ``excluding``:
    the one that passes over the tasks ``p_exclude`` (given back by the worker's user);
    ``guarded``: takes nothing where conflict-aware dispatch must look first;
    ``held_unchanged``: takes nothing if a task other than ``p_held`` became held."""
    conditions = [
        tasks.c.project_id == bindparam("p_project"),
        tasks.c.status == TaskStatus.QUEUED.value,
        or_(
            tasks.c.repository.is_(None),
            tasks.c.repository.in_(bindparam("p_repos", expanding=True)),
        ),
    ]
    if one_task:
        conditions.append(tasks.c.id == bindparam("p_task"))
    if excluding:
        conditions.append(tasks.c.id.not_in(bindparam("p_exclude", expanding=True)))
    if guarded:
        conditions.append(footprints.guard())
    if held_unchanged:
        conditions.append(footprints.held_unchanged())
    candidate = (
        select(tasks.c.id)
        .where(*conditions)
        # Matches ix_tasks_dispatch_order column for column, so no sort happens.
        .order_by(*DISPATCH_ORDER)
        .limit(1)
    )
    if skip_locked:
        candidate = candidate.with_for_update(skip_locked=True)
    return (
        update(tasks)
        .where(tasks.c.id == candidate.scalar_subquery(), tasks.c.status == TaskStatus.QUEUED.value)
        .values(
            status=TaskStatus.CLAIMED.value,
            # The lease table's claim rule, with the claim's values as bind parameters.
            **task_store.lease_values(
                lease_rule(TaskStatus.CLAIMED, Actor.WORKER),
                lease_seconds=bindparam("p_lease", type_=Float()),
                owner=bindparam("p_worker"),
                token=bindparam("p_token"),
            ),
            # A claim is a move like any other: the reason for the last status goes.
            status_reason=None,
            version=tasks.c.version + 1,
            updated_at=db_now(),
        )
        .returning(*tasks.c)
    )


_EVENT_COLUMNS = (
    *("task_id", "project_id", "kind", "actor", "actor_id", "attempt"),
    *("from_status", "to_status", "worker_id", "data", "created_at"),
)


def _claim_in_one_statement(*variant: bool) -> Any:
    """PostgreSQL: the claim, its timeline event and the wake-up NOTIFY as one statement of
    data-modifying CTEs, run in autocommit — one round trip instead of five (BEGIN, claim,
    event, notify, COMMIT). Atomic all the same: a statement is its own transaction."""
    claimed = _claim_statement(True, *variant).cte("claimed")
    worker_id = bindparam("p_worker", type_=BigInteger())
    event = (
        insert(task_events)
        .from_select(
            list(_EVENT_COLUMNS),
            select(
                claimed.c.id,
                claimed.c.project_id,
                literal("status"),
                literal(Actor.WORKER.value),
                worker_id,
                claimed.c.attempt,
                literal(TaskStatus.QUEUED.value),
                literal(TaskStatus.CLAIMED.value),
                worker_id,
                bindparam("p_data", type_=JSON()),
                db_now(),
            ),
        )
        .returning(task_events.c.task_id, task_events.c.project_id)
        .cte("event")
    )
    topics = func.concat("task:", event.c.task_id, "\n", "project:", event.c.project_id)
    notify = select(func.pg_notify(NOTIFY_CHANNEL, topics).label("sent")).cte("notify")
    # A SELECT CTE only runs if referenced: counting its rows makes the NOTIFY happen.
    sent = select(func.count()).select_from(notify).scalar_subquery().label("notified")
    return select(claimed, sent)


#: (one_task, excluding, guarded, held_unchanged): every variant used, built once.
_VARIANTS = [v for v in itertools.product((False, True), repeat=4) if not (v[2] and v[3])]
_CLAIM = {
    (backend, *variant): _claim_statement(backend == "postgresql", *variant)
    for backend in ("sqlite", "postgresql")
    for variant in _VARIANTS
}
_PG_CLAIM = {variant: _claim_in_one_statement(*variant) for variant in _VARIANTS}
_TOUCH = update(workers).where(workers.c.id == bindparam("p_worker")).values(last_seen_at=db_now())


#: Claims of a chosen non-overlapping task that another claimer took first, before giving up.
_AVOID_TRIES = 3
#: PostgreSQL: the transaction-scoped lock that orders a project's avoid-mode claims (the
#: first key is Locus's own namespace for advisory locks, the second the project).
_PROJECT_LOCK = text("SELECT pg_advisory_xact_lock(1819240307, CAST(:p_project AS integer))")


async def claim(
    db: Database,
    worker: WorkerIdentity,
    lease_seconds: float,
    *,
    touch: bool = True,
    task_id: int | None = None,
    exclude: Sequence[int] = (),
) -> Row[Any] | None:
    """Lease the next task for ``worker`` (only ``task_id``, when given; none of
    ``exclude``), or return None when there is nothing to take. ``touch`` also records that
    the worker was seen. Conflict-aware (docs/dispatch.md): under the project's ``avoid``
    policy a queued task whose predicted files overlap a held task's is passed over; under
    ``warn`` (and for a task asked for by id) it is handed out with an ``overlap`` event."""
    row = await _claim(db, worker, lease_seconds, touch, task_id, exclude, guarded=True)
    if row is not None:
        return row
    for _ in range(_AVOID_TRIES):
        found = await footprints.conflicts(db, worker.project_id)
        if found.policy is OverlapPolicy.IGNORE or found.version == 0:
            return None  # the guard did not stop it: there is nothing to take
        if found.policy is OverlapPolicy.WARN or task_id is not None:
            row = await _claim(db, worker, lease_seconds, False, task_id, exclude)
            if row is not None and found.matter:
                await _record_overlap(db, found, row)
            return row
        queued = await footprints.candidates(db, worker.project_id, worker.repositories, exclude)
        mine = await footprints.footprints_of(db, worker.project_id, found.version, queued)
        free = next((r.id for r in queued if not found.of(r.id, mine[r.id])), None)
        if free is None:
            return None
        row = await _claim(db, worker, lease_seconds, False, free, (), held=list(found.held))
        if row is not None:
            return row
        # Taken by another claimer, or another task became held meanwhile: look again.
    return None


async def _record_overlap(db: Database, found: footprints.Conflicts, row: Row[Any]) -> None:
    """The ``overlap`` event of a task handed out although it overlaps held tasks."""
    mine = await footprints.footprints_of(db, row.project_id, found.version, [row])
    shared = found.of(row.id, mine[row.id])
    if shared:
        async with db.write() as tx:
            data = overlap_event(shared)
            await task_store.add_event(tx, row, "overlap", Actor.SYSTEM, data=data)


async def _claim(
    db: Database,
    worker: WorkerIdentity,
    lease_seconds: float,
    touch: bool,
    task_id: int | None,
    exclude: Sequence[int],
    guarded: bool = False,
    held: Sequence[int] | None = None,
) -> Row[Any] | None:
    """The claim statement itself (one statement; see the module's docstring); ``guarded``
    takes nothing where footprints matter (:func:`footprints.guard`); ``held``: nothing if
    a task not among these became held (:func:`footprints.held_unchanged`)."""
    one = task_id is not None
    excluding = bool(exclude)
    variant = (one, excluding, guarded, held is not None)
    params = {
        **({"p_task": task_id} if one else {}),
        **({"p_exclude": list(exclude)} if excluding else {}),
        **({"p_held": list(held)} if held is not None else {}),
        "p_project": worker.project_id,
        "p_repos": list(worker.repositories),
        "p_token": secrets.token_urlsafe(24),
        "p_worker": worker.id,
        "p_lease": lease_seconds,
    }
    if db.backend == "postgresql":
        data = {"lease_seconds": lease_seconds}
        statement = _PG_CLAIM[variant]
        if held is not None:
            # Under avoid, one such claim of a project at a time: the lock is taken before
            # the claim's statement reads, so that statement sees the claim before it
            # committed — two workers racing for overlapping tasks never both get one (SQLite's
            # one writer orders them the same way). docs/dispatch.md, "Racing claims".
            async with db.write() as tx:
                await tx.conn.execute(_PROJECT_LOCK, {"p_project": worker.project_id})
                if touch:
                    await tx.conn.execute(_TOUCH, {"p_worker": worker.id})
                return (await tx.conn.execute(statement, {**params, "p_data": data})).first()
        async with db.autocommit() as conn:
            if touch:
                await conn.execute(_TOUCH, {"p_worker": worker.id})
            return (await conn.execute(statement, {**params, "p_data": data})).first()
    async with db.write() as tx:
        if touch:
            await tx.conn.execute(_TOUCH, {"p_worker": worker.id})
        row = (await tx.conn.execute(_CLAIM[(db.backend, *variant)], params)).first()
        if row is None:
            return None
        await task_store.add_event(
            tx,
            row,
            "status",
            Actor.WORKER,
            actor_id=worker.id,
            from_status=TaskStatus.QUEUED.value,
            to_status=TaskStatus.CLAIMED.value,
            worker_id=worker.id,
            data={"lease_seconds": lease_seconds},
        )
        return row


def holds(row: Row[Any], worker: WorkerIdentity, attempt: int, claim_token: str) -> bool:
    return same_fence(
        row.lease_owner_id, row.attempt, row.claim_token, worker, attempt, claim_token
    )


def same_fence(
    owner_id: int | None,
    held_attempt: int,
    held_token: str | None,
    worker: WorkerIdentity,
    attempt: int,
    claim_token: str,
) -> bool:
    """Whether ``worker``'s (attempt, claim token) is the one held (a task's lease, or a
    planning request's claim)."""
    return bool(
        owner_id == worker.id
        and held_attempt == attempt
        and held_token is not None
        # bytes: compare_digest raises TypeError on non-ASCII str (a fuzzed token gave a 500)
        and secrets.compare_digest(
            held_token.encode(), claim_token.encode("utf-8", "surrogatepass")
        )
    )


async def fenced(
    tx: Tx, worker: WorkerIdentity, task_id: int, attempt: int, token: str
) -> Row[Any] | None:
    """The task if this worker's fence still holds it; None if it is not in its project;
    raises StaleClaim if another attempt (or nobody) holds it now."""
    row = await task_store.load(tx, task_id)
    if row is None or row.project_id != worker.project_id:
        return None
    if not holds(row, worker, attempt, token):
        raise StaleClaim(row)
    return row


async def heartbeat(
    db: Database,
    worker: WorkerIdentity,
    task_id: int,
    attempt: int,
    token: str,
    lease_seconds: float,
) -> Row[Any] | None:
    """Extend the lease. Returns the task (its status tells the worker to go on or stop)."""
    async with db.write() as tx:
        row = (
            await tx.conn.execute(
                update(tasks)
                .where(
                    tasks.c.id == task_id,
                    tasks.c.project_id == worker.project_id,
                    tasks.c.attempt == attempt,
                    tasks.c.claim_token == token,
                    tasks.c.lease_owner_id == worker.id,
                    tasks.c.status.in_([s.value for s in LEASED]),
                )
                .values(**task_store.lease_values(HEARTBEAT, lease_seconds=lease_seconds))
                .returning(*tasks.c)
            )
        ).first()
        await touch_worker(tx, worker.id)
        if row is not None:
            return row
        # Not extended: either the task is no longer leased (cancelled, awaiting review…)
        # but still this attempt's, or the fence is stale.
        return await fenced(tx, worker, task_id, attempt, token)


async def touch_worker(tx: Tx, worker_id: int) -> None:
    await tx.conn.execute(_TOUCH, {"p_worker": worker_id})
