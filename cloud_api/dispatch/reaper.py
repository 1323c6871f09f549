"""The reaper: returns tasks whose lease ran out to the queue, or fails them after max attempts;
and forgets Idempotency-Keys once they are older than their retention.

Leases are compared with the database clock only. On PostgreSQL several replicas may reap at
once; ``SKIP LOCKED`` and the version compare-and-set keep them from doing it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import delete, select

from cloud_api.domain.states import LEASED, Actor, TaskStatus, lease_expiry_target
from cloud_api.store import tasks as task_store
from cloud_api.store.db import Database
from cloud_api.store.tables import idempotency_keys, tasks
from cloud_api.store.types import db_now

log = logging.getLogger("cloud_api.reaper")
BATCH = 200


async def reap_once(db: Database, max_attempts: int) -> int:
    """Reap every expired lease now; returns how many tasks moved."""
    moved = 0
    while True:
        query = (
            select(tasks)
            .where(
                tasks.c.status.in_([s.value for s in LEASED]), tasks.c.lease_expires_at < db_now()
            )
            .order_by(tasks.c.lease_expires_at)
            .limit(BATCH)
        )
        if db.backend == "postgresql":
            query = query.with_for_update(skip_locked=True)
        async with db.write() as tx:
            rows = (await tx.conn.execute(query)).all()
            for row in rows:
                expired = row.expired_leases + 1
                target = lease_expiry_target(expired, max_attempts)
                reason = (
                    f"lease of attempt {row.attempt} expired (worker {row.lease_owner_id})"
                    if target is TaskStatus.QUEUED
                    else f"failed after {expired} expired leases (max_attempts={max_attempts})"
                )
                try:
                    await task_store.transition(
                        tx,
                        row,
                        target,
                        Actor.SYSTEM,
                        # The lease table drops the fence and counts the expiry.
                        values={"status_reason": reason},
                        data={
                            "reason": reason,
                            "expired_leases": expired,
                            "worker_id": row.lease_owner_id,
                        },
                    )
                    moved += 1
                except task_store.StaleVersion:
                    continue  # a heartbeat or the worker got there first
        if len(rows) < BATCH:
            return moved


async def prune_idempotency_keys(db: Database, older_than_seconds: float) -> int:
    """Forget Idempotency-Keys older than the retention: a retry comes within minutes, and
    without this the table grows with every POST ever made. Returns how many were removed."""
    async with db.write() as tx:
        removed = (
            await tx.conn.execute(
                delete(idempotency_keys)
                .where(idempotency_keys.c.created_at < db_now(-older_than_seconds))
                .returning(idempotency_keys.c.id)
            )
        ).all()
    return len(removed)


class Reaper:
    """Background housekeeping on the database clock: expired leases every ``interval``, old
    Idempotency-Keys every ``PRUNE_EVERY`` seconds."""

    PRUNE_EVERY = 60.0

    def __init__(
        self,
        db: Database,
        max_attempts: int,
        interval: float,
        key_retention_seconds: float = 86400.0,
    ) -> None:
        self._db, self._max_attempts, self._interval = db, max_attempts, interval
        self._retention = key_retention_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="reaper")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_prune = loop.time()
        while True:
            try:
                await reap_once(self._db, self._max_attempts)
                if loop.time() >= next_prune:
                    next_prune = loop.time() + self.PRUNE_EVERY
                    await prune_idempotency_keys(self._db, self._retention)
            except Exception:
                log.exception("reaper pass failed; will retry")
            await asyncio.sleep(self._interval)
