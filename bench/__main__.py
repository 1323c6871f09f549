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
import json
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.claims import http_drain, raw_drain, seed_tasks
from bench.cloud import Backend, cleanup, make_workers, running_cloud
from bench.overlap import check_claims
from bench.pickup import measure_pickup
from bench.profiling import sampling
from bench.report import BackendRun, all_passed, load, machine, render

BACKENDS: dict[str, list[Backend]] = {
    "sqlite": ["sqlite"],
    "postgresql": ["postgresql"],
    "all": ["sqlite", "postgresql"],
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="all")
    parser.add_argument("--tasks", type=int, default=5000, help="queued tasks per drain")
    parser.add_argument("--workers", type=int, default=32, help="racing claimers per drain")
    parser.add_argument("--samples", type=int, default=200, help="pick-up latency samples")
    parser.add_argument(
        "--lease-seconds",
        type=float,
        default=600.0,
        help="server lease; longer than the run, so no lease expires and every task must be"
        " claimed exactly once",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="sample the server with py-spy during the HTTP drain into DIR/<backend>.txt",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, db)")
    args = parser.parse_args(argv)
    for name in ("tasks", "workers", "samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


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
                http = await http_drain(cloud, session, workers, args.tasks)
            progress(f"{backend}: {args.workers} coroutines drain {args.tasks} tasks on the DB")
            raw_ids = await seed_tasks(cloud, args.tasks, "raw")
            raw = await raw_drain(cloud, workers, args.tasks)
            progress(f"{backend}: checking for double claims")
            http_check = await check_claims(cloud.db, http_ids, http.claims, args.lease_seconds)
            raw_check = await check_claims(cloud.db, raw_ids, raw.claims, args.lease_seconds)
    return BackendRun(backend, pickup, http, raw, http_check, raw_check)


async def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="locus-bench-"))
    started = time.monotonic()
    load_start = load()
    try:
        runs = [
            await run_backend(backend, args, workdir / backend)
            for backend in BACKENDS[args.backend]
        ]
    finally:
        if args.keep:
            progress(f"work directory kept: {workdir}")
        else:
            cleanup(workdir)
    info = {**machine(), "load_start": load_start, "load_end": load()}
    if args.json:
        result = {
            "machine": info,
            "args": {k: str(v) for k, v in vars(args).items()},
            "seconds": time.monotonic() - started,
            "backends": {r.backend: r.as_json() for r in runs},
            "passed": all_passed(runs),
        }
        print(json.dumps(result, indent=2))
    else:
        print(render(runs, info))
        print(f"\ntotal {time.monotonic() - started:.0f} s")
    return 0 if all_passed(runs) else 1


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
