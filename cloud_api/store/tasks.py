"""Task writes shared by every path that changes a task: the user API, workers, the reaper.

A transition is checked against the pure state table, applied as a compare-and-set on the
version column (optimistic concurrency), and recorded in the append-only timeline in the same
transaction — so every change is in the timeline, and two writers never both win. The lease
columns are written only here, by :func:`lease_values` from the lease table
(``cloud_api.domain.states.LEASE_RULES``): transitions, the claim statement and the heartbeat.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Row, bindparam, select, update

from cloud_api.dispatch.footprints import CANDIDATES
from cloud_api.dispatch.work_waiters import work_topic
from cloud_api.domain.footprints import OverlapPolicy
from cloud_api.domain.states import (
    HELD,
    Actor,
    Count,
    Hold,
    Lease,
    LeaseRule,
    Stamp,
    TaskStatus,
    check_transition,
    lease_rule,
)
from cloud_api.store.db import Tx
from cloud_api.store.tables import DISPATCH_ORDER, projects, task_events, tasks
from cloud_api.store.types import db_now


class StaleVersion(Exception):
    """Someone else changed the task between our read and our write."""

    def __init__(self, current: Row[Any] | None) -> None:
        super().__init__("the task changed concurrently")
        self.current = current


def task_state(row: Row[Any]) -> dict[str, Any]:
    """What a 409 shows of the task: enough for a client to decide what to do next."""
    return {"id": row.id, "status": row.status, "version": row.version, "attempt": row.attempt}


#: Columns no caller may set: their every write comes from a LeaseRule through lease_values.
LEASE_COLUMNS = frozenset(
    {"lease_expires_at", "lease_owner_id", "claim_token", "attempt", "expired_leases", "queued_at"}
)


def lease_values(
    rule: LeaseRule,
    *,
    lease_seconds: float | ColumnElement[float] | None = None,
    owner: int | ColumnElement[int] | None = None,
    token: str | ColumnElement[str] | None = None,
) -> dict[str, Any]:
    """The lease columns' new values (SQL expressions) for ``rule``. A claim (Hold.TAKE)
    needs the worker and its token; a renewal needs the lease length."""
    values: dict[str, Any] = {}
    if rule.lease is Lease.RENEW:
        if lease_seconds is None:
            raise ValueError("this move renews the lease: pass lease_seconds")
        values["lease_expires_at"] = db_now(lease_seconds)
    else:
        values["lease_expires_at"] = None
    for column, hold, given in (
        ("lease_owner_id", rule.owner, owner),
        ("claim_token", rule.token, token),
    ):
        if hold is Hold.TAKE:
            if given is None:
                raise ValueError(f"this move is a claim: pass the new {column}")
            values[column] = given
        elif hold is Hold.DROP:
            values[column] = None
    if rule.owner is Hold.TAKE:
        values["attempt"] = tasks.c.attempt + 1
    if rule.expiries is Count.ADD_ONE:
        values["expired_leases"] = tasks.c.expired_leases + 1
    elif rule.expiries is Count.RESET:
        values["expired_leases"] = 0
    if rule.queued_at is Stamp.NOW:
        values["queued_at"] = db_now()
    return values


def _refuse_lease_columns(values: dict[str, Any]) -> None:
    if forbidden := LEASE_COLUMNS & values.keys():
        raise ValueError(
            f"{', '.join(sorted(forbidden))} follow the lease table (LEASE_RULES), not values"
        )


async def load(tx_or_conn: Any, task_id: int) -> Row[Any] | None:
    conn = tx_or_conn.conn if isinstance(tx_or_conn, Tx) else tx_or_conn
    return (await conn.execute(select(tasks).where(tasks.c.id == task_id))).first()


#: Built once (values come as parameters): every status change and log chunk runs it.
_INSERT_EVENT = task_events.insert().returning(task_events.c.id)


async def add_event(
    tx: Tx,
    task: Row[Any],
    kind: str,
    actor: Actor,
    *,
    actor_id: int | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    worker_id: int | None = None,
    seq: int | None = None,
    attempt: int | None = None,
    data: dict[str, Any] | None = None,
) -> int:
    result = await tx.conn.execute(
        _INSERT_EVENT,
        {
            "task_id": task.id,
            "project_id": task.project_id,
            "kind": kind,
            "actor": actor.value,
            "actor_id": actor_id,
            "attempt": task.attempt if attempt is None else attempt,
            "from_status": from_status,
            "to_status": to_status,
            "worker_id": worker_id,
            "seq": seq,
            "data": data or {},
        },
    )
    tx.notify(f"task:{task.id}", f"project:{task.project_id}")
    return int(result.scalar_one())


#: The queued tasks an ``avoid`` claim may have passed over while a task was held (the first
#: :data:`~cloud_api.dispatch.footprints.CANDIDATES` a claim looks at): none unless the
#: project dispatches with footprints (a graph, and a policy other than ``ignore``).
_PASSED_OVER = (
    select(tasks.c.id, tasks.c.project_id, tasks.c.repository)
    .where(
        tasks.c.project_id == bindparam("p_project"),
        tasks.c.status == TaskStatus.QUEUED.value,
        select(projects.c.id)
        .where(
            projects.c.id == bindparam("p_project"),
            projects.c.graph_version > 0,
            projects.c.dispatch_overlap != OverlapPolicy.IGNORE.value,
        )
        .exists(),
    )
    .order_by(*DISPATCH_ORDER)
    .limit(CANDIDATES)
)


async def _wake_passed_over(tx: Tx, project_id: int) -> None:
    """A task left a held status: the queued tasks a claim passed over for overlapping it
    may be claimable now, so their long-polls are woken (docs/dispatch.md) rather than left
    to their deadline."""
    for row in await tx.conn.execute(_PASSED_OVER, {"p_project": project_id}):
        tx.notify(work_topic(row.project_id, row.id, row.repository))


def notify_claimable(tx: Tx, task: Row[Any]) -> None:
    """Once ``tx`` commits, wake one claim long-poll that can take ``task`` (now queued)."""
    tx.notify(work_topic(task.project_id, task.id, task.repository))


async def create(
    tx: Tx,
    project_id: int,
    actor: Actor,
    actor_id: int | None,
    data: dict[str, Any] | None = None,
    **values: Any,
) -> Row[Any]:
    """Insert a task (status backlog or queued) with its 'created' event; wakes workers if it
    is claimable at once."""
    _refuse_lease_columns(values)
    queued = values.get("status") == TaskStatus.QUEUED.value
    if queued:  # created queued: as if a person queued it (its age starts now)
        values.update(lease_values(lease_rule(TaskStatus.QUEUED, Actor.USER)))
    row = (
        await tx.conn.execute(
            tasks.insert().values(project_id=project_id, **values).returning(*tasks.c)
        )
    ).one()
    await add_event(tx, row, "created", actor, actor_id=actor_id, to_status=row.status, data=data)
    if queued:
        notify_claimable(tx, row)
    return row


async def transition(
    tx: Tx,
    task: Row[Any],
    target: TaskStatus,
    actor: Actor,
    *,
    actor_id: int | None = None,
    values: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    fence: dict[str, Any] | None = None,
    lease_seconds: float | None = None,
) -> Row[Any]:
    """Move ``task`` (as read) to ``target``; raises TransitionError or StaleVersion.

    The lease columns follow the lease table (never ``values``); ``lease_seconds`` is the
    lease a move onto the clock (running) starts. ``status_reason`` says why the task is in
    its *current* status, so every move replaces it: the mover's reason in ``values``, or
    none (a re-queued task no longer shows why it was cancelled or failed before)."""
    current = TaskStatus(task.status)
    check_transition(current, target, actor)
    values = {"status_reason": None, **(values or {})}
    _refuse_lease_columns(values)
    values.update(lease_values(lease_rule(target, actor), lease_seconds=lease_seconds))
    stmt = (
        update(tasks)
        .where(tasks.c.id == task.id, tasks.c.version == task.version)
        .values(status=target.value, version=tasks.c.version + 1, updated_at=db_now(), **values)
        .returning(*tasks.c)
    )
    for column, expected in (fence or {}).items():
        stmt = stmt.where(tasks.c[column] == expected)
    updated = (await tx.conn.execute(stmt)).first()
    if updated is None:
        raise StaleVersion(await load(tx, task.id))
    # A cancellation is routed to the worker holding the task (its signal channel).
    holder = task.lease_owner_id if current in HELD else None
    await add_event(
        tx,
        updated,
        "status",
        actor,
        actor_id=actor_id,
        from_status=current.value,
        to_status=target.value,
        worker_id=holder,
        data=data,
    )
    if target is TaskStatus.QUEUED:
        notify_claimable(tx, updated)
    elif current in HELD and target not in HELD:
        await _wake_passed_over(tx, updated.project_id)
    if holder is not None and target is TaskStatus.CANCELLED:
        tx.notify(f"worker:{holder}")
    return updated
