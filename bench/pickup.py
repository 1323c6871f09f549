"""Pick-up latency: an idle worker is already long-polling in POST /worker/claim when a task is
created straight into the queue; the clock runs from just before the create request is sent to
the moment the claim response arrives.

Measured twice in one run: with that one idle waiter, and in a crowd of many idle long-polls of
the same project (any of which may take the task), printed as a ratio of the two. With every
waiter woken per task the crowd multiplied pick-up and the server's CPU per task; with one
waiter woken per task (dispatch.work_waiters) it should not."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

from bench.cloud import Cloud, cpu_seconds, make_workers
from bench.stats import Samples
from tests.support.client import Api, Worker

WAIT_SECONDS = 30
WAITER_TIMEOUT_S = 10.0
WAITER_METRIC = "locus_claim_waiters"
WAKEUP_METRIC = "locus_claim_wakeups_total"
#: Worker identities the crowd's long-polls share (a daemon runs several claims at once).
CROWD_WORKERS = 20
#: Used only when the server exposes no waiter gauge: time for the claim to reach its wait.
FALLBACK_SETTLE_S = 0.05


@dataclass(kw_only=True)
class PickupResult(Samples):
    observed_waiter: bool  # whether each sample saw the worker waiting before creating the task


async def _metric(session: aiohttp.ClientSession, url: str, name: str) -> float | None:
    """The sum of a metric's samples in /metrics (all label values); None if not exported."""
    async with session.get(f"{url}/metrics") as resp:
        text = await resp.text()
    found = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((name + " ", name + "{"))
    ]
    return sum(found) if found else None


async def _waiters(session: aiohttp.ClientSession, url: str) -> float | None:
    """The server's count of workers parked in the claim long-poll; None if not exported."""
    return await _metric(session, url, WAITER_METRIC)


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


@dataclass(kw_only=True)
class CrowdResult(Samples):
    idle: int  # long-polls parked when each task was created
    wakeups_per_task: float  # long-polls the server woke per task (its wake-up counter)
    server_cpu_ms_per_task: float  # the API process's CPU per task, all it did included


async def _until_parked(session: aiohttp.ClientSession, url: str, count: int) -> None:
    """Wait until ``count`` long-polls are parked again (after the last pick-up, and after
    whatever it woke has gone back to sleep), within a deadline."""
    deadline = time.monotonic() + WAITER_TIMEOUT_S * 6
    while (await _waiters(session, url) or 0) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} long-polls were not parked within {deadline:.0f} s")
        await asyncio.sleep(0.002)


async def measure_crowd(
    cloud: Cloud, session: aiohttp.ClientSession, idle: int, samples: int
) -> CrowdResult:
    """Pick-up latency while ``idle`` long-polls of the project wait: each loops on the claim
    (a 204 after its 30 s, or a task it got, and it claims again), so the crowd stays parked;
    whichever gets the task ends the sample."""
    admin: Api = cloud.admin(session)
    workers = await make_workers(admin, cloud.project_id, CROWD_WORKERS, "crowd")
    arrivals: dict[int, asyncio.Future[float]] = {}
    connector = aiohttp.TCPConnector(limit=0)  # one connection per long-poll
    timeout = aiohttp.ClientTimeout(total=WAIT_SECONDS + 30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as crowd_session:

        async def long_poll(worker: Worker) -> None:
            api = Api(crowd_session, cloud.url, worker.api.token)
            while True:
                reply = await api.post("/worker/claim", {"wait_seconds": WAIT_SECONDS})
                arrived = time.perf_counter()
                if reply.status == 200:
                    task_id = reply.body["task"]["id"]
                    arrivals.setdefault(task_id, asyncio.get_running_loop().create_future())
                    arrivals[task_id].set_result(arrived)
                elif reply.status != 204:
                    raise RuntimeError(f"crowd claim: {reply.status} {reply.body}")

        polls = [asyncio.create_task(long_poll(workers[i % len(workers)])) for i in range(idle)]
        try:
            await _until_parked(session, cloud.url, idle)
            latencies: list[float] = []
            woken_before = await _metric(session, cloud.url, WAKEUP_METRIC) or 0.0
            cpu_before = cpu_seconds(cloud)["server"]
            for i in range(samples):
                await _until_parked(session, cloud.url, idle)
                started = time.perf_counter()
                created = await admin.post(
                    f"/projects/{cloud.project_id}/tasks",
                    {"title": f"crowd {i}", "status": "queued"},
                )
                task_id = created.ok(201)["id"]
                arrival = arrivals.setdefault(task_id, asyncio.get_running_loop().create_future())
                arrived = await asyncio.wait_for(arrival, WAIT_SECONDS + 5)
                latencies.append((arrived - started) * 1000)
            await _until_parked(session, cloud.url, idle)
            cpu = cpu_seconds(cloud)["server"] - cpu_before
            woken = (await _metric(session, cloud.url, WAKEUP_METRIC) or 0.0) - woken_before
        finally:
            for poll in polls:
                poll.cancel()
            await asyncio.gather(*polls, return_exceptions=True)
    return CrowdResult(
        latencies,
        idle=idle,
        wakeups_per_task=woken / samples,
        server_cpu_ms_per_task=cpu / samples * 1000,
    )
