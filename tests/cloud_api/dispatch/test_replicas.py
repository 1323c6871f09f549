"""Scale-out: two API replicas (separate processes) on one PostgreSQL.

A worker long-polls replica A; a task created through replica B must wake it — which only
happens if the wake-up crossed processes through LISTEN/NOTIFY (without it, A's long-poll
would sit out its 30 s and answer 204).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.cloud_api.dispatch.test_dispatch import wait_for_waiters
from tests.conftest import Template
from tests.support.client import Api, Worker
from tests.support.cloudproc import start_cloud_process


@pytest.fixture
async def replicas(pg_template: Template, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    db_url = pg_template.new_url(tmp_path)
    procs = [await start_cloud_process(db_url) for _ in range(2)]
    try:
        yield procs[0][1], procs[1][1]
    finally:
        for proc, _ in procs:
            proc.terminate()
            await proc.wait()


async def test_task_created_on_b_wakes_worker_waiting_on_a(
    replicas: tuple[str, str], pg_template: Template
) -> None:
    url_a, url_b = replicas
    token, pid = pg_template.first_start.token, pg_template.first_start.project_id
    async with aiohttp.ClientSession() as session:
        admin_a, admin_b = Api(session, url_a, token), Api(session, url_b, token)
        worker = await Worker.create(admin_a, pid, "on-a")
        for round_ in range(3):
            waiting = asyncio.create_task(worker.claim(wait=30))
            await wait_for_waiters(admin_a, 1)
            started = time.perf_counter()
            task = (
                await admin_b.post(
                    f"/projects/{pid}/tasks", {"title": f"r{round_}", "status": "queued"}
                )
            ).ok(201)
            claim = (await asyncio.wait_for(waiting, 60)).ok()
            elapsed = time.perf_counter() - started
            assert claim["task"]["id"] == task["id"]
            print(f"pick-up across replicas, round {round_}: {elapsed * 1000:.1f} ms")

        # Cancellation crosses replicas too: cancel on B, the worker's signal long-poll on A wakes.
        (await worker.status(claim, "running")).ok()
        signal = asyncio.create_task(worker.api.get("/worker/signals", params={"wait": 30}))
        (await admin_b.post(f"/tasks/{claim['task']['id']}/cancel")).ok()
        got = (await asyncio.wait_for(signal, 60)).ok()
        assert [c["task_id"] for c in got["cancellations"]] == [claim["task"]["id"]]
