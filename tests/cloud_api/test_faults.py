"""The cloud under faults: racing workers and a user, against the real ``locus-cloud serve``
process through a fault-injecting proxy, with the cloud killed (SIGKILL) and — on PostgreSQL —
the database crashed (``pg_ctl restart -m immediate``) during the run. The total-queue checker
then reads the final rows and every client's log: nothing lost, duplicated, stranded, no stale
write accepted, no two workers holding one task, and no retry stalled past outage + 1 s.

Deterministic where it can be: the proxy's faults and the clients' choices come from seeds;
the interleaving is the machine's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from cloud_api.bootstrap import FirstStart
from cloud_api.store.db import Database
from cloud_api.store.tables import task_events, tasks
from tests.conftest import Template, _prepare
from tests.support import racers
from tests.support.client import Api
from tests.support.cloudproc import CloudProcess
from tests.support.faultproxy import FaultPlan, FaultProxy
from tests.support.pgserver import PostgresServer
from tests.support.queuecheck import EventRow, Outage, Report, TaskRow, busy, check, latencies
from tests.support.retrying import RetryingApi, session

SEED = 15
WORKERS = 16
TASKS = 150
LEASE = 5.0
FAULT_RATE = 0.08
GIVE_UP = 90.0  # a call still unanswered after this is reported, not waited for
RUN_LIMIT = 150.0
CREATE_SPAN = 16.0  # tasks keep coming while the outages (at 4-14 s) happen


@dataclass
class Target:
    backend: str
    db_url: str
    first_start: FirstStart
    pg: PostgresServer | None


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """A fresh database; on PostgreSQL a server of this test's own, since it gets crashed."""
    if request.param == "sqlite":
        template: Template = request.getfixturevalue("sqlite_template")
        yield Target("sqlite", template.new_url(tmp_path), template.first_start, None)
        return
    # The test server's synchronous_commit=off would lose the last commits in the crash
    # (acknowledged, then gone): a production setting keeps them, and so must this run.
    with PostgresServer(tmp_path / "pg", synchronous_commit="on") as pg:
        url = pg.create_database("locus")
        yield Target("postgresql", url, asyncio.run(_prepare(url)), pg)


async def inject(cloud: CloudProcess, pg: PostgresServer | None, t0: float) -> list[Outage]:
    """The run's outages at fixed times: kill -9 of the cloud, and a database crash."""
    plan = (
        [(4.0, "database"), (9.0, "cloud"), (14.0, "database")]
        if pg
        else [(4.0, "cloud"), (12.0, "cloud")]
    )
    outages = []
    for at, kind in plan:
        await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
        start = time.monotonic()
        if kind == "cloud":
            await cloud.kill()
            await cloud.start()
        else:
            assert pg is not None
            await asyncio.to_thread(pg.restart, "immediate")
        outages.append(Outage(kind, start, time.monotonic()))
    return outages


async def loop_lag(stop: asyncio.Event) -> float:
    """The longest this process's event loop was late (clients, proxy and checker share it: a
    busy loop makes every call here look slower than the cloud made it)."""
    worst = 0.0
    while not stop.is_set():
        before = time.monotonic()
        await asyncio.sleep(0.05)
        worst = max(worst, time.monotonic() - before - 0.05)
    return worst


async def final_rows(db_url: str) -> tuple[list[TaskRow], list[EventRow]]:
    db = Database(db_url)
    try:
        async with db.read() as conn:
            task_rows = (await conn.execute(select(tasks))).mappings().all()
            event_rows = (await conn.execute(select(task_events))).mappings().all()
    finally:
        await db.close()
    return [TaskRow.of(r) for r in task_rows], [EventRow.of(r) for r in event_rows]


async def run_under_faults(target: Target, tmp_path: Path) -> Report:
    cloud = CloudProcess(target.db_url, tmp_path / "cloud.log", lease_seconds=LEASE)
    await cloud.start()
    proxy = FaultProxy(cloud.port, FaultPlan(SEED, FAULT_RATE))
    proxy_url = f"http://127.0.0.1:{await proxy.start()}"
    first = target.first_start
    faults: asyncio.Task[list[Outage]] | None = None
    try:
        async with aiohttp.ClientSession() as direct, session() as http:
            admin = Api(direct, cloud.url, first.token)
            tokens = [
                (
                    await admin.post(
                        f"/projects/{first.project_id}/tokens", {"worker_name": f"w{i}"}
                    )
                ).ok(201)["token"]
                for i in range(WORKERS)
            ]
            t0 = time.monotonic()
            run = racers.Run(first.project_id, LEASE, t0 + RUN_LIMIT)
            user = RetryingApi(http, proxy_url, first.token, "user", GIVE_UP, SEED)
            workers = [
                RetryingApi(http, proxy_url, token, f"w{i}", GIVE_UP, SEED + 1 + i)
                for i, token in enumerate(tokens)
            ]
            proxy.enabled = True
            faults = asyncio.create_task(inject(cloud, target.pg, t0))
            lag = asyncio.create_task(loop_lag(run.stop))
            await asyncio.gather(
                racers.user(user, run, TASKS, CREATE_SPAN),
                *(racers.worker(w, run, SEED * 1000 + i) for i, w in enumerate(workers)),
            )
            outages = await faults
            lagged = await lag
            elapsed = time.monotonic() - t0
    finally:
        if faults is not None and not faults.done():
            faults.cancel()
        await proxy.close()
        await cloud.stop()
    rows, events = await final_rows(target.db_url)
    calls = [c for api in (user, *workers) for c in api.calls]
    report = check(rows, events, calls, outages)
    print(
        f"\n{target.backend}: {len(rows)} tasks, {len(calls)} calls, "
        f"{sum(bool(c.failures) for c in calls)} retried, {elapsed:.1f} s; "
        f"outages {[f'{o.kind} {o.end - o.start:.2f} s' for o in outages]}; "
        f"proxy faults { ({str(k): n for k, n in proxy.injected.items()}) }; "
        f"longest stall {report.longest_stall():.2f} s; counts {report.counts()}; "
        f"{cloud.log_path.read_text().count(' ERROR ')} errors logged in {cloud.log_path}"
    )
    speed = {
        op: f"{mid * 1000:.0f}/{top * 1000:.0f} ms" for op, (mid, top) in latencies(calls).items()
    }
    print(
        f"  unfaulted calls, median/slowest: {speed}; a retry may take {busy(calls):.2f} s more;"
        f" this process's event loop was up to {lagged:.2f} s late; without that allowance "
        f"{sum(s.seconds > s.allowed - busy(calls) for s in report.stalls)} stalls would be over"
    )
    for kind, found in report.details().items():
        print(f"  {kind}: " + "\n    ".join(found))
    return report


@pytest.mark.timeout(280)
async def test_the_queue_holds_under_faults(target: Target, tmp_path: Path) -> None:
    report = await run_under_faults(target, tmp_path)
    assert report.counts() == dict.fromkeys(report.counts(), 0), report.details()
