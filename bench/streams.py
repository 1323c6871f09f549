"""Event streams under concurrent writers: ``.venv/bin/python -m bench.streams [--json] [--quick]``.

A real `locus-cloud serve` (its own process) per backend, one project event stream open
(SSE). Writers post comments back to back, each on its own connection; for every comment the
clock runs from just before its POST is sent to the moment the stream delivered its frame.
*Quiet* blocks have one writer, *busy* blocks ``--writers`` (8); they alternate, so a change in
the machine's load hits both. On PostgreSQL a stream hands out an event only once no
transaction that may hold a smaller id is still open (the settled horizon,
``cloud_api/store/horizon.py``): under many writers that holds events back for as long as
the writes in flight at their commit take. Figures: delivery p50/p95 per block kind, the
busy ÷ quiet p95 ratio, the POST round trip alone (the baseline: delivery cannot beat it),
and on PostgreSQL the cost of one stream read, in process: the horizon's two statements plus
the batch query against the batch query alone, alternated, as a ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from sqlalchemy import select

from bench.cloud import Backend, Cloud, running_cloud
from bench.daemon import Latencies, workdir
from bench.figures import (
    Figure,
    cancelled_on_sigterm,
    machine,
    output_flags,
    parse_sized,
    parser_for,
    progress,
    result_of,
    suite_main,
    work_directory,
)
from cloud_api.store.db import Database
from cloud_api.store.tables import task_events
from tests.support.client import Api

SIZES: dict[str, tuple[float, float]] = {
    "seconds": (4.0, 1.5),
    "blocks": (3, 1),
    "reads": (500, 100),
}
TASKS = 8


@dataclass
class Block:
    delivery: Latencies = field(default_factory=Latencies)
    posts: Latencies = field(default_factory=Latencies)


@dataclass
class Clock:
    sent: dict[int, float] = field(default_factory=dict)
    received: dict[int, float] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


async def _follow(http: aiohttp.ClientSession, cloud: Cloud, clock: Clock) -> None:
    """Reads the project stream; stamps each frame's id as it arrives."""
    headers = {"Authorization": f"Bearer {cloud.admin_token}"}
    url = f"{cloud.url}/api/v1/projects/{cloud.project_id}/events/stream"
    timeout = aiohttp.ClientTimeout(total=None)
    async with http.get(url, headers=headers, timeout=timeout) as response:
        async for raw in response.content:
            if raw.startswith(b"id: "):
                clock.received[int(raw[4:])] = time.perf_counter()
                clock.arrived.set()


async def _write(
    api: Api, tasks: list[int], seconds: float, clock: Clock, into: Block, offset: int
) -> None:
    started = time.perf_counter()
    n = offset
    while time.perf_counter() - started < seconds:
        n += 1
        t0 = time.perf_counter()
        event = (await api.post(f"/tasks/{tasks[n % len(tasks)]}/comments", {"body": "c"})).ok(201)
        into.posts.samples_ms.append((time.perf_counter() - t0) * 1000)
        clock.sent[event["id"]] = t0


async def _block(
    api: Api, tasks: list[int], seconds: float, writers: int, clock: Clock, into: Block
) -> None:
    before = set(clock.sent)
    await asyncio.gather(*(_write(api, tasks, seconds, clock, into, w) for w in range(writers)))
    mine = set(clock.sent) - before
    async with asyncio.timeout(60):  # every frame arrives; this only bounds a broken stream
        while True:
            clock.arrived.clear()
            if mine <= clock.received.keys():
                break
            await clock.arrived.wait()
    into.delivery.samples_ms += [(clock.received[i] - clock.sent[i]) * 1000 for i in mine]


async def _read_cost(db_url: str, reads: int) -> tuple[float, float]:
    """ms per stream read: (batch query alone, horizon + batch query), alternated."""
    db = Database(db_url)
    query = select(task_events).where(task_events.c.id > 0).order_by(task_events.c.id).limit(500)
    alone: list[float] = []
    bounded: list[float] = []
    try:
        for _ in range(reads):
            for into, horizon in ((alone, False), (bounded, True)):
                t0 = time.perf_counter()
                async with db.read() as conn:
                    if horizon:
                        await db.horizon.settled(conn)
                    (await conn.execute(query)).all()
                into.append((time.perf_counter() - t0) * 1000)
    finally:
        await db.close()
    return sorted(alone)[len(alone) // 2], sorted(bounded)[len(bounded) // 2]


async def measure(args: argparse.Namespace, backend: Backend) -> list[Figure]:
    quiet, busy = Block(), Block()
    clock = Clock()
    with work_directory(workdir(f"streams-{backend}"), args.keep) as where:
        async with running_cloud(backend, where, lease_seconds=600.0) as cloud:
            unlimited = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=unlimited) as http:
                admin = cloud.admin(http)
                path = f"/projects/{cloud.project_id}/tasks"
                tasks = [
                    (await admin.post(path, {"title": f"t{i}"})).ok(201)["id"] for i in range(TASKS)
                ]
                follower = asyncio.create_task(_follow(http, cloud, clock))
                try:
                    for block in range(args.blocks):
                        progress(f"{backend}: quiet/busy block pair {block + 1} of {args.blocks}")
                        await _block(admin, tasks, args.seconds, 1, clock, quiet)
                        await _block(admin, tasks, args.seconds, args.writers, clock, busy)
                finally:
                    follower.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await follower
            cost = await _read_cost(cloud.db_url, args.reads) if backend == "postgresql" else None
    q, b = quiet.delivery, busy.delivery
    figures = [
        Figure(backend, f"{backend}_quiet_post_p50_ms", "POST comment, quiet p50", quiet.posts.p50, "ms", "", None),
        Figure(backend, f"{backend}_post_p50_ms", "POST comment, busy p50", busy.posts.p50, "ms", "", None),
        Figure(backend, f"{backend}_quiet_p50_ms", "delivery, quiet p50", q.p50, "ms", "", None),
        Figure(backend, f"{backend}_quiet_p95_ms", "delivery, quiet p95", q.p95, "ms", "", None),
        Figure(backend, f"{backend}_busy_p50_ms", "delivery, busy p50", b.p50, "ms", "", None),
        Figure(backend, f"{backend}_busy_p95_ms", "delivery, busy p95", b.p95, "ms", "", None),
        Figure(backend, f"{backend}_ratio_p95", "ratio busy / quiet, p95", b.p95 / q.p95, "x", "", None),
        Figure(backend, f"{backend}_events", "comments delivered", len(q.samples_ms) + len(b.samples_ms), "", "", None),
    ]  # fmt: skip
    if cost is not None:
        alone, bounded = cost
        figures += [
            Figure(backend, f"{backend}_read_ms", "stream read, query alone p50", alone, "ms", "", None),
            Figure(backend, f"{backend}_read_horizon_ms", "stream read, horizon + query p50", bounded, "ms", "", None),
            Figure(backend, f"{backend}_read_ratio", "ratio horizon + query / query", bounded / alone, "x", "", None),
        ]  # fmt: skip
    return figures


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = parser_for("python -m bench.streams", __doc__)
    parser.add_argument("--seconds", type=float, help="length of one block (4)")
    parser.add_argument("--blocks", type=int, help="quiet/busy block pairs per backend (3)")
    parser.add_argument("--reads", type=int, help="stream reads timed each way (500)")
    parser.add_argument("--writers", type=int, default=8, help="writers in a busy block")
    parser.add_argument("--quick", action="store_true", help="1 block pair of 1.5 s")
    output_flags(parser)
    args = parse_sized(parser, argv, SIZES)
    if args.seconds <= 0 or args.blocks < 1 or args.writers < 1 or args.reads < 1:
        parser.error("--seconds must be > 0; --blocks, --writers and --reads at least 1")
    return args


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    info = machine()
    with cancelled_on_sigterm():
        figures = await measure(args, "sqlite")
        figures += await measure(args, "postgresql")
    return result_of(info, args, figures, started, notes=[])


def main(argv: list[str] | None = None) -> int:
    return suite_main(
        argv, parse_args, run, "Locus event streams under concurrent writers", group="run"
    )


if __name__ == "__main__":
    sys.exit(main())
