"""A login flood is no outage: password hashing runs in a bounded thread pool, so the loop
keeps answering heartbeats and /readyz while hashes wait for a slot (issue 15, point 4)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import aiohttp
import pytest

from cloud_api.services import SERVICES
from tests.conftest import Cloud
from tests.support.client import Worker

FLOOD = 60
#: Throttling is off here: this test is about hashing under load, not about refusing it.
UNTHROTTLED = {"login_failures_per_account": 10_000, "login_failures_per_address": 0}


@pytest.mark.parametrize("settings_overrides", [UNTHROTTLED])
async def test_heartbeats_and_health_answer_while_a_login_flood_waits_for_hashing(
    cloud: Cloud,
) -> None:
    services = cloud.app[SERVICES]
    worker = await Worker.create(cloud.api, cloud.project_id, "w1")
    body = {"title": "t", "status": "queued"}
    (await cloud.api.post(f"/projects/{cloud.project_id}/tasks", body)).ok(201)
    claim = (await worker.claim()).ok()
    # Hold every hashing slot with work that finishes only when the test says so.
    gate = threading.Event()
    slots = services.settings.password_threads
    held = [asyncio.create_task(services.passwords.run(gate.wait)) for _ in range(slots)]
    wrong = {"email": cloud.first_start.email, "password": "not the password"}
    unlimited = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=unlimited) as flood_http:

        async def bad_login() -> int:
            async with flood_http.post(f"{cloud.url}/api/v1/auth/login", json=wrong) as reply:
                return reply.status

        logins = [asyncio.create_task(bad_login()) for _ in range(FLOOD)]
        try:
            # Every login reaches the server and waits for a slot; none is answered meanwhile.
            while services.passwords.pending < slots + FLOOD:
                assert not any(t.done() for t in logins), "a login was answered without a slot"
                await asyncio.sleep(0.01)
            # The loop is free: a worker's heartbeat and /readyz answer while all of them wait.
            (await worker.heartbeat(claim)).ok()
            async with flood_http.get(f"{cloud.url}/readyz") as health:
                assert health.status == 200
            assert not any(t.done() for t in logins)
        finally:
            gate.set()
        statuses = await asyncio.gather(*logins)
    await asyncio.gather(*held)
    assert statuses == [401] * FLOOD
    assert services.passwords.pending == 0
    # The right password still works once the flood has drained (throttling is off here).
    right: dict[str, Any] = {**wrong, "password": cloud.first_start.password}
    (await cloud.api.as_(None).post("/auth/login", right)).ok()
