"""Pick-up latency: an idle worker is already long-polling in POST /worker/claim when a task is
created straight into the queue; the clock runs from just before the create request is sent to
the moment the claim response arrives."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

from bench.cloud import Cloud
from bench.stats import Samples
from tests.support.client import Api, Worker

WAIT_SECONDS = 30
WAITER_TIMEOUT_S = 10.0
WAITER_METRIC = "locus_claim_waiters"
#: Used only when the server exposes no waiter gauge: time for the claim to reach its wait.
FALLBACK_SETTLE_S = 0.05


@dataclass(kw_only=True)
class PickupResult(Samples):
    observed_waiter: bool  # whether each sample saw the worker waiting before creating the task


async def _waiters(session: aiohttp.ClientSession, url: str) -> float | None:
    """The server's count of workers parked in the claim long-poll; None if not exported."""
    async with session.get(f"{url}/metrics") as resp:
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith(WAITER_METRIC + " "):
            return float(line.split()[1])
    return None


async def _until_waiting(
    session: aiohttp.ClientSession, url: str, claim: asyncio.Task[object]
) -> bool:
    """Wait until the worker's claim is parked in the long-poll (or the gauge is missing).

    There is no event to subscribe to from outside the server, so this polls the gauge with a
    deadline; the measured interval starts only after it returns."""
    deadline = time.monotonic() + WAITER_TIMEOUT_S
    while time.monotonic() < deadline:
        if claim.done():
            raise RuntimeError(
                f"the idle claim returned before a task was created: {claim.result()}"
            )
        count = await _waiters(session, url)
        if count is None:
            await asyncio.sleep(FALLBACK_SETTLE_S)
            return False
        if count >= 1:
            return True
        await asyncio.sleep(0.002)
    raise RuntimeError(f"the worker was not seen waiting within {WAITER_TIMEOUT_S:.0f} s")


async def _claim(worker: Worker) -> tuple[float, int, object]:
    """Long-poll for a task; returns (arrival time, HTTP status, body)."""
    reply = await worker.claim(wait=WAIT_SECONDS)
    return time.perf_counter(), reply.status, reply.body


async def measure_pickup(
    cloud: Cloud, session: aiohttp.ClientSession, samples: int
) -> PickupResult:
    admin: Api = cloud.admin(session)
    worker = await Worker.create(admin, cloud.project_id, "pickup")
    latencies: list[float] = []
    observed = True
    for i in range(samples):
        claim = asyncio.create_task(_claim(worker))
        observed &= await _until_waiting(session, cloud.url, claim)
        started = time.perf_counter()
        created = await admin.post(
            f"/projects/{cloud.project_id}/tasks", {"title": f"pickup {i}", "status": "queued"}
        )
        task = created.ok(201)
        arrived, status, body = await asyncio.wait_for(claim, WAIT_SECONDS + 5)
        if status != 200 or not isinstance(body, dict) or body["task"]["id"] != task["id"]:
            raise RuntimeError(f"pick-up {i}: expected task {task['id']}, got {status} {body}")
        latencies.append((arrived - started) * 1000)
    return PickupResult(latencies, observed_waiter=observed)
