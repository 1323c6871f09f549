"""Task writes shared by every path that changes a task: the user API, workers, the reaper.

A transition is checked against the pure state table, applied as a compare-and-set on the
version column (optimistic concurrency), and recorded in the append-only timeline in the same
transaction — so every change is in the timeline, and two writers never both win.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select, update

from cloud_api.dispatch.work_waiters import work_topic
from cloud_api.domain.states import HELD, Actor, TaskStatus, check_transition
from cloud_api.store.db import Tx
from cloud_api.store.tables import task_events, tasks
from cloud_api.store.types import db_now


class StaleVersion(Exception):
    """Someone else changed the task between our read and our write."""

    def __init__(self, current: Row[Any] | None) -> None:
        super().__init__("the task changed concurrently")
        self.current = current


def task_state(row: Row[Any]) -> dict[str, Any]:
    """What a 409 shows of the task: enough for a client to decide what to do next."""
    return {"id": row.id, "status": row.status, "version": row.version, "attempt": row.attempt}


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
    queued = values.get("status") == TaskStatus.QUEUED.value
    row = (
        await tx.conn.execute(
            tasks.insert()
            .values(project_id=project_id, queued_at=db_now() if queued else None, **values)
            .returning(*tasks.c)
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
) -> Row[Any]:
    """Move ``task`` (as read) to ``target``; raises TransitionError or StaleVersion."""
    current = TaskStatus(task.status)
    check_transition(current, target, actor)
    values = dict(values or {})
    if target is TaskStatus.QUEUED:
        values.setdefault("lease_owner_id", None)
        values.setdefault("claim_token", None)
        values.setdefault("lease_expires_at", None)
        if actor is Actor.USER:
            # A person queued it: its age starts now, with a fresh set of attempts. A task
            # back from an expired lease or a give-back keeps its place in the queue.
            values.setdefault("queued_at", db_now())
            values["expired_leases"] = 0
    if target in (TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELLED):
        values.setdefault("lease_expires_at", None)
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
    if holder is not None and target is TaskStatus.CANCELLED:
        tx.notify(f"worker:{holder}")
    return updated
