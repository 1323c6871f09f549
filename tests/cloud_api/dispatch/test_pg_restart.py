"""A PostgreSQL restart costs nothing but the requests made while it is down: the pool drops
dead connections (pool_pre_ping), the LISTEN connection comes back by itself, and a worker
long-polling afterwards is still woken by a new task."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.cloud_api.dispatch.test_dispatch import wait_for_waiters
from tests.conftest import _prepare, start_cloud
from tests.support.client import Api, Worker
from tests.support.pgserver import PostgresServer


@pytest.fixture
async def own_pg(tmp_path: Path) -> AsyncIterator[PostgresServer]:
    """A server of this test's own: restarting the shared one would disturb other tests."""
    server = PostgresServer(tmp_path / "pg")
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


async def wait_ready(api: Api) -> None:
    """Poll /readyz (there is no event to wait on for a reconnect) with a generous deadline."""
    async with asyncio.timeout(60):
        while (await api.get(f"{api.base_url}/readyz")).status != 200:
            await asyncio.sleep(0.05)


async def test_cloud_survives_a_database_restart(own_pg: PostgresServer) -> None:
    url = await asyncio.to_thread(own_pg.create_database, "locus")
    first = await _prepare(url)
    runner, base_url, _app = await start_cloud(url)
    try:
        async with aiohttp.ClientSession() as session:
            admin = Api(session, base_url, first.token)
            worker = await Worker.create(admin, first.project_id, "survivor")
            assert (await worker.claim()).status == 204  # the pool holds live connections now

            await asyncio.to_thread(own_pg.restart)
            # Pooled connections died with the server; the very next requests must still work
            # (each checkout is pinged and replaced if dead), not fail once and then recover.
            task = (
                await admin.post(
                    f"/projects/{first.project_id}/tasks", {"title": "after", "status": "queued"}
                )
            ).ok(201)
            assert (await worker.claim()).ok()["task"]["id"] == task["id"]

            # And the re-established LISTEN still wakes a waiting worker.
            await wait_ready(admin)
            waiting = asyncio.create_task(worker.claim(wait=30))
            await wait_for_waiters(admin, 1)
            second = (
                await admin.post(
                    f"/projects/{first.project_id}/tasks", {"title": "woken", "status": "queued"}
                )
            ).ok(201)
            assert (await asyncio.wait_for(waiting, 60)).ok()["task"]["id"] == second["id"]
    finally:
        await runner.cleanup()
