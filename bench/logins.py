"""The cloud under a login flood: ``.venv/bin/python -m bench.logins [--json] [--quick]``.

A real `locus-cloud serve` (SQLite, its own process) leases a task to one worker, whose
heartbeats are timed back to back. In *flood* blocks ``--flooders`` clients (150) post wrong
passwords to ``POST /api/v1/auth/login`` in a loop, each on its own connection; in *quiet*
blocks they stop. The blocks alternate, so a change in the machine's load hits both. It runs
twice: with login throttling off (every login costs an argon2 hash: what the hashing threads
alone give) and with the default throttling (the flood is answered 429 without hashing).
Figures: heartbeat p50/p99/max per block kind, the flood ÷ quiet p99 ratio, logins answered per
second. Bar (issue 15): the slowest heartbeat under the flood stays under a second.
Issue 15 measured 17 s with hashing on the event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.cloud import make_workers, running_cloud
from bench.daemon import Latencies, workdir
from bench.figures import (
    Figure,
    cancelled_on_sigterm,
    environment,
    machine,
    output_flags,
    parse_sized,
    parser_for,
    progress,
    result_of,
    suite_main,
    work_directory,
)
from tests.support.client import Api

HEARTBEAT_MAX_MS = 1000.0
SIZES: dict[str, tuple[float, float]] = {"seconds": (5.0, 2.0), "blocks": (3, 1)}
UNTHROTTLED = {
    "LOCUS_CLOUD_LOGIN_FAILURES_PER_ACCOUNT": "1000000000",
    "LOCUS_CLOUD_LOGIN_FAILURES_PER_ADDRESS": "0",
}


@dataclass
class Phase:
    heartbeats: Latencies = field(default_factory=Latencies)
    logins: Counter[int] = field(default_factory=Counter)


async def _flood(http: aiohttp.ClientSession, url: str, stop: asyncio.Event, into: Phase) -> None:
    wrong = {"email": "admin@localhost", "password": "not the password"}
    while not stop.is_set():
        async with http.post(f"{url}/api/v1/auth/login", json=wrong) as reply:
            await reply.read()
            into.logins[reply.status] += 1


async def _heartbeats(
    api: Api, path: str, body: dict[str, Any], seconds: float, into: Phase
) -> None:
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        t0 = time.perf_counter()
        (await api.post(path, body)).ok()
        into.heartbeats.samples_ms.append((time.perf_counter() - t0) * 1000)
    into.heartbeats.seconds += time.perf_counter() - started


async def measure_one(args: argparse.Namespace, name: str, env: dict[str, str]) -> list[Figure]:
    quiet, flood = Phase(), Phase()
    with environment(env), work_directory(workdir(f"logins-{name}"), args.keep) as where:
        async with (
            running_cloud("sqlite", where, lease_seconds=600.0) as cloud,
            aiohttp.ClientSession() as session,
        ):
            admin = cloud.admin(session)
            (worker,) = await make_workers(admin, cloud.project_id, 1, "heart")
            task = {"title": "held", "status": "queued"}
            (await admin.post(f"/projects/{cloud.project_id}/tasks", task)).ok(201)
            claim = (await worker.claim()).ok()
            path = f"/worker/tasks/{claim['task']['id']}/heartbeat"
            body = {"attempt": claim["attempt"], "claim_token": claim["claim_token"]}
            unlimited = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=unlimited) as http:
                for block in range(args.blocks):
                    progress(f"{name}: quiet/flood block pair {block + 1} of {args.blocks}")
                    await _heartbeats(worker.api, path, body, args.seconds, quiet)
                    stop = asyncio.Event()
                    floods = [
                        asyncio.create_task(_flood(http, cloud.url, stop, flood))
                        for _ in range(args.flooders)
                    ]
                    await _heartbeats(worker.api, path, body, args.seconds, flood)
                    stop.set()
                    await asyncio.gather(*floods)
    q, f = quiet.heartbeats, flood.heartbeats
    answered = sum(flood.logins.values())
    return [
        Figure(name, f"{name}_quiet_p50_ms", "heartbeat, quiet p50", q.p50, "ms", "", None),
        Figure(name, f"{name}_quiet_p99_ms", "heartbeat, quiet p99", q.p99, "ms", "", None),
        Figure(name, f"{name}_flood_p50_ms", "heartbeat, flood p50", f.p50, "ms", "", None),
        Figure(name, f"{name}_flood_p99_ms", "heartbeat, flood p99", f.p99, "ms", "", None),
        Figure(name, f"{name}_flood_max_ms", "heartbeat, flood max", f.max, "ms",
               f"< {HEARTBEAT_MAX_MS:g} ms", f.max < HEARTBEAT_MAX_MS),
        Figure(name, f"{name}_ratio_p99", "ratio flood / quiet, p99", f.p99 / q.p99, "x", "",
               None),
        Figure(name, f"{name}_logins_per_s", "logins answered", answered / f.seconds, "/s", "",
               None),
        Figure(name, f"{name}_logins_429_pct", "logins answered 429",
               100 * flood.logins[429] / max(1, answered), "%", "", None),
    ]  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = parser_for("python -m bench.logins", __doc__)
    parser.add_argument("--seconds", type=float, help="length of one block (5)")
    parser.add_argument("--blocks", type=int, help="quiet/flood block pairs per run (3)")
    parser.add_argument("--flooders", type=int, default=150, help="clients posting bad logins")
    parser.add_argument("--quick", action="store_true", help="1 block pair of 2 s")
    output_flags(parser)
    args = parse_sized(parser, argv, SIZES)
    if args.seconds <= 0 or args.blocks < 1 or args.flooders < 1:
        parser.error("--seconds must be > 0, --blocks and --flooders at least 1")
    return args


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    info = machine()
    with cancelled_on_sigterm():
        figures = await measure_one(args, "unthrottled", UNTHROTTLED)
        figures += await measure_one(args, "throttled", {})
    return result_of(info, args, figures, started, notes=[])


def main(argv: list[str] | None = None) -> int:
    return suite_main(argv, parse_args, run, "Locus cloud under a login flood", group="run")


if __name__ == "__main__":
    sys.exit(main())
