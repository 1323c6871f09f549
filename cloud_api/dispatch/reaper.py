"""The reaper: returns tasks whose lease ran out to the queue, or fails them after max attempts.

Leases are compared with the database clock only. On PostgreSQL several replicas may reap at
once; ``SKIP LOCKED`` and the version compare-and-set keep them from doing it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import select

from cloud_api.domain.states import LEASED, Actor, TaskStatus, lease_expiry_target
from cloud_api.store import tasks as task_store
from cloud_api.store.db import Database
from cloud_api.store.tables import tasks
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
                        values={
                            "expired_leases": expired,
                            "lease_owner_id": None,
                            "claim_token": None,
                            "lease_expires_at": None,
                            "status_reason": reason,
                        },
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


class Reaper:
    def __init__(self, db: Database, max_attempts: int, interval: float) -> None:
        self._db, self._max_attempts, self._interval = db, max_attempts, interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="reaper")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await reap_once(self._db, self._max_attempts)
            except Exception:
                log.exception("reaper pass failed; will retry")
            await asyncio.sleep(self._interval)
