"""Claim throughput: N racing workers drain a pre-filled queue, over HTTP and straight against
the database (``cloud_api.dispatch.claims.claim``), in the same run, so the HTTP overhead shows
as a ratio. Every claim is recorded for the double-claim check (:mod:`bench.overlap`)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from sqlalchemy import Row

from bench.cloud import Cloud, cpu_seconds
from cloud_api.dispatch.claims import WorkerIdentity, claim
from cloud_api.domain.states import TaskStatus
from cloud_api.store.tables import tasks
from cloud_api.store.types import db_now
from tests.support.client import Worker

SEED_BATCH = 1000
MAX_ERRORS = 50
CLAIM_BODY = b'{"wait_seconds": 0}'


@dataclass(frozen=True)
class Observed:
    """One claim as its claimer saw it."""

    task_id: int
    attempt: int
    claim_token: str
    worker_id: int
    lease_expires_at: datetime


@dataclass
class DrainResult:
    kind: str  # http | raw
    tasks: int
    workers: int
    seconds: float
    claims: list[Observed]
    errors: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds used during the drain

    @property
    def per_second(self) -> float:
        return len(self.claims) / self.seconds if self.seconds > 0 else 0.0


async def seed_tasks(
    cloud: Cloud,
    count: int,
    label: str,
    *,
    title: Callable[[int], str] | None = None,
    status: TaskStatus = TaskStatus.QUEUED,
) -> list[int]:
    """Insert ``count`` tasks directly (setup, not measured), titled ``label i`` or
    ``title(i)``, in ``status`` (queued); returns their ids."""
    ids: list[int] = []
    stmt = (
        tasks.insert()
        .values(project_id=cloud.project_id, status=status.value, queued_at=db_now())
        .returning(tasks.c.id)
    )
    named = title or (lambda i: f"{label} {i}")
    for start in range(0, count, SEED_BATCH):
        rows = [{"title": named(i)} for i in range(start, min(count, start + SEED_BATCH))]
        async with cloud.db.write() as tx:
            result = await tx.conn.execute(stmt, rows)
            ids.extend(int(r) for r in result.scalars().all())
    if len(ids) != count:
        raise RuntimeError(f"seeded {len(ids)} tasks, wanted {count}")
    return ids


def _deadline(count: int) -> float:
    """A generous bound so the run always ends, even at a tenth of the slowest target."""
    return 60.0 + count / 25


async def _http_worker(
    session: aiohttp.ClientSession,
    url: str,
    worker: Worker,
    out: list[Observed],
    errors: list[str],
    keyed: bool,
) -> None:
    assert worker.id is not None and worker.api.token is not None
    headers = {"Authorization": f"Bearer {worker.api.token}", "Content-Type": "application/json"}
    while True:
        if keyed:  # as locusd sends every POST: the claim and its key commit together
            headers["Idempotency-Key"] = str(uuid.uuid4())
        async with session.post(url, data=CLAIM_BODY, headers=headers) as resp:
            if resp.status == 204:
                return
            body: Any = await resp.json(content_type=None)
            if resp.status != 200:
                errors.append(f"{resp.status}: {body}")
                if len(errors) >= MAX_ERRORS:
                    raise RuntimeError(f"too many failed claims, e.g. {errors[0]}")
                continue
        out.append(
            Observed(
                body["task"]["id"],
                body["attempt"],
                body["claim_token"],
                worker.id,
                datetime.fromisoformat(body["lease_expires_at"]),
            )
        )


async def http_drain(
    cloud: Cloud,
    session: aiohttp.ClientSession,
    workers: list[Worker],
    count: int,
    keyed: bool = False,
) -> DrainResult:
    """Each worker loops POST /worker/claim (wait_seconds=0) until it gets 204; ``keyed``:
    each with a fresh ``Idempotency-Key``, as the daemon sends them."""
    url = f"{cloud.url}/api/v1/worker/claim"
    claims: list[Observed] = []
    errors: list[str] = []
    cpu_before = cpu_seconds(cloud)
    started = time.perf_counter()
    async with asyncio.timeout(_deadline(count)), asyncio.TaskGroup() as group:
        for worker in workers:
            group.create_task(_http_worker(session, url, worker, claims, errors, keyed))
    elapsed = time.perf_counter() - started
    cpu_after = cpu_seconds(cloud)
    cpu = {k: cpu_after[k] - cpu_before.get(k, 0.0) for k in cpu_after}
    return DrainResult("http", count, len(workers), elapsed, claims, errors, cpu)


def _observed(row: Row[Any]) -> Observed:
    return Observed(row.id, row.attempt, row.claim_token, row.lease_owner_id, row.lease_expires_at)


async def raw_drain(cloud: Cloud, workers: list[Worker], count: int) -> DrainResult:
    """The same race without HTTP: coroutines call the claim function on the database."""
    claims: list[Observed] = []

    async def run(identity: WorkerIdentity) -> None:
        while (row := await claim(cloud.db, identity, cloud.lease_seconds)) is not None:
            claims.append(_observed(row))

    identities = []
    for worker in workers:
        assert worker.id is not None
        identities.append(WorkerIdentity(worker.id, cloud.project_id, ()))
    cpu_before = cpu_seconds(cloud)
    started = time.perf_counter()
    async with asyncio.timeout(_deadline(count)), asyncio.TaskGroup() as group:
        for identity in identities:
            group.create_task(run(identity))
    elapsed = time.perf_counter() - started
    cpu_after = cpu_seconds(cloud)
    cpu = {k: cpu_after[k] - cpu_before.get(k, 0.0) for k in cpu_after}
    return DrainResult("raw", count, len(workers), elapsed, claims, [], cpu)
