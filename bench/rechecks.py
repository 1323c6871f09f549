"""What re-authorising open event streams costs: ``.venv/bin/python -m bench.rechecks [--json]``.

A real `locus-cloud serve` (SQLite, its own process) holds ``--streams`` (500) open
`GET /projects/{id}/events/stream` connections of one user while a task is created every
``--interval`` seconds, so every stream also delivers events. It runs twice: with re-checks
effectively off (``sse_recheck_seconds`` an hour, its maximum: the baseline) and with the default (every
5 s, each stream re-reads its caller's token and membership). Figures per run: the server's CPU
seconds per wall second, events delivered per stream (the same in both runs, or the streams
lost some), and the ratio of the two runs' server CPU — what issue 15's re-check costs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import aiohttp

from bench.cloud import cpu_seconds, running_cloud
from bench.daemon import workdir
from bench.figures import (
    Figure,
    cancelled_on_sigterm,
    environment,
    machine,
    output_flags,
    parser_for,
    progress,
    result_of,
    suite_main,
    work_directory,
)

RUNS = {
    "recheck off": {"LOCUS_CLOUD_SSE_RECHECK_SECONDS": "3600"},
    "recheck 5 s": {},
}


async def _follow(
    http: aiohttp.ClientSession, url: str, token: str, opened: asyncio.Event, counts: list[int]
) -> None:
    """One stream: count the events it delivers (``id:`` lines) until cancelled."""
    headers = {"Authorization": f"Bearer {token}"}
    async with http.get(url, headers=headers) as reply:
        reply.raise_for_status()
        counts.append(0)
        slot = len(counts) - 1
        opened.set()
        async for line in reply.content:
            if line.startswith(b"id:"):
                counts[slot] += 1


async def measure_one(args: argparse.Namespace, name: str, env: dict[str, str]) -> list[Figure]:
    counts: list[int] = []
    with environment(env), work_directory(workdir(f"rechecks-{_key(name)}"), args.keep) as where:
        async with (
            running_cloud("sqlite", where, lease_seconds=600.0) as cloud,
            aiohttp.ClientSession() as session,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
        ):
            admin = cloud.admin(session)
            stream = f"{cloud.url}/api/v1/projects/{cloud.project_id}/events/stream"
            progress(f"{name}: opening {args.streams} streams")
            followers = []
            for _ in range(args.streams):
                opened = asyncio.Event()
                followers.append(
                    asyncio.create_task(_follow(http, stream, cloud.admin_token, opened, counts))
                )
                await opened.wait()
            progress(f"{name}: {args.seconds:g} s with a task every {args.interval:g} s")
            before, started = cpu_seconds(cloud), time.perf_counter()
            created = 0
            while time.perf_counter() - started < args.seconds:
                body = {"title": f"event {created}"}
                (await admin.post(f"/projects/{cloud.project_id}/tasks", body)).ok(201)
                created += 1
                await asyncio.sleep(args.interval)
            await asyncio.sleep(1.0)  # let the last event reach every stream
            elapsed = time.perf_counter() - started
            after = cpu_seconds(cloud)
            for follower in followers:
                follower.cancel()
            await asyncio.gather(*followers, return_exceptions=True)
    server = (after["server"] - before["server"]) / elapsed
    delivered = min(counts) if counts else 0
    return [
        Figure(name, f"{_key(name)}_server_cpu", "server CPU per second", server, "s", "", None),
        Figure(name, f"{_key(name)}_events_min", "events delivered, least per stream",
               delivered, "", f"= {created}", delivered == created),
    ]  # fmt: skip


def _key(name: str) -> str:
    return name.replace(" ", "_")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = parser_for("python -m bench.rechecks", __doc__)
    parser.add_argument("--streams", type=int, default=500, help="open event streams")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured time per run")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between events")
    output_flags(parser)
    args = parser.parse_args(argv)
    if args.streams < 1 or args.seconds <= 0 or args.interval <= 0:
        parser.error("--streams must be at least 1, --seconds and --interval above 0")
    return args


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    info = machine()
    figures: list[Figure] = []
    with cancelled_on_sigterm():
        for name, env in RUNS.items():
            figures += await measure_one(args, name, env)
    off, on = (f.value for f in figures if f.key.endswith("_server_cpu"))
    figures.append(
        Figure("ratio", "recheck_cpu_ratio", "server CPU, recheck 5 s ÷ off", on / off, "x", "",
               None)
    )  # fmt: skip
    return result_of(info, args, figures, started, notes=[])


def main(argv: list[str] | None = None) -> int:
    return suite_main(argv, parse_args, run, "Locus cloud with open event streams", group="run")


if __name__ == "__main__":
    sys.exit(main())
