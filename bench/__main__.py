"""Dispatch benchmarks, one command: ``.venv/bin/python -m bench`` (from the repo root).

For each backend (SQLite, a throwaway PostgreSQL) it starts a real `locus-cloud serve` in its
own process and measures, in one run:

* pick-up latency of an idle long-polling worker, task created → claim response (p50/p99);
* claims per second over HTTP with N racing workers draining a pre-filled queue, next to the
  raw claim rate of the same race straight against the database (the HTTP/raw ratio);
* double claims, from duplicate responses and from overlapping leases in the timeline.

Each figure is printed with its target (brief §9) and PASS/MISS; the exit code is 1 on a MISS.
Everything is bounded in time and only talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.claims import http_drain, raw_drain, seed_tasks
from bench.cloud import Backend, make_workers, running_cloud
from bench.figures import (
    at_least_one,
    finish,
    load,
    output_flags,
    parser_for,
    progress,
    work_directory,
)
from bench.overlap import check_claims
from bench.pickup import measure_pickup
from bench.profiling import sampling
from bench.report import BackendRun, all_passed, machine, render

BACKENDS: dict[str, list[Backend]] = {
    "sqlite": ["sqlite"],
    "postgresql": ["postgresql"],
    "all": ["sqlite", "postgresql"],
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = parser_for("python -m bench", __doc__)
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="all")
    parser.add_argument("--tasks", type=int, default=5000, help="queued tasks per drain")
    parser.add_argument("--workers", type=int, default=32, help="racing claimers per drain")
    parser.add_argument("--samples", type=int, default=200, help="pick-up latency samples")
    parser.add_argument(
        "--idempotency-keys",
        action="store_true",
        help="send every HTTP claim with a fresh Idempotency-Key, as locusd does",
    )
    parser.add_argument(
        "--lease-seconds",
        type=float,
        default=600.0,
        help="server lease; longer than the run, so no lease expires and every task must be"
        " claimed exactly once",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="sample the server with py-spy during the HTTP drain into DIR/<backend>.txt",
    )
    output_flags(parser, "logs, db")
    args = parser.parse_args(argv)
    at_least_one(parser, args, "tasks", "workers", "samples")
    return args


async def run_backend(backend: Backend, args: argparse.Namespace, workdir: Path) -> BackendRun:
    progress(f"{backend}: starting the server")
    async with running_cloud(backend, workdir, lease_seconds=args.lease_seconds) as cloud:
        connector = aiohttp.TCPConnector(limit=args.workers + 8)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            progress(f"{backend}: pick-up latency, {args.samples} samples")
            pickup = await measure_pickup(cloud, session, args.samples)
            workers = await make_workers(
                cloud.admin(session), cloud.project_id, args.workers, "drain"
            )
            progress(f"{backend}: {args.workers} workers drain {args.tasks} tasks over HTTP")
            http_ids = await seed_tasks(cloud, args.tasks, "http")
            profile = args.profile / f"{backend}.txt" if args.profile else None
            with sampling(cloud.process.pid, profile):
                http = await http_drain(cloud, session, workers, args.tasks, args.idempotency_keys)
            progress(f"{backend}: {args.workers} coroutines drain {args.tasks} tasks on the DB")
            raw_ids = await seed_tasks(cloud, args.tasks, "raw")
            raw = await raw_drain(cloud, workers, args.tasks)
            progress(f"{backend}: checking for double claims")
            http_check = await check_claims(cloud.db, http_ids, http.claims, args.lease_seconds)
            raw_check = await check_claims(cloud.db, raw_ids, raw.claims, args.lease_seconds)
    return BackendRun(backend, pickup, http, raw, http_check, raw_check)


async def run(args: argparse.Namespace) -> tuple[dict[str, Any], list[BackendRun]]:
    """The JSON result (the figures per backend) and the runs it was made of."""
    started = time.monotonic()
    info = machine()
    with work_directory(Path(tempfile.mkdtemp(prefix="locus-bench-")), args.keep) as workdir:
        runs = [
            await run_backend(backend, args, workdir / backend)
            for backend in BACKENDS[args.backend]
        ]
    result = {
        "machine": {**info, "load_end": load()},
        "args": {k: str(v) for k, v in vars(args).items()},
        "seconds": time.monotonic() - started,
        "backends": {r.backend: r.as_json() for r in runs},
        "passed": all_passed(runs),
    }
    return result, runs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result, runs = asyncio.run(run(args))
    return finish(result, args.json, lambda result: render(runs, result["machine"]))


if __name__ == "__main__":
    sys.exit(main())
