"""The cost of conflict-aware claims in a project with a graph: ``.venv/bin/python -m
bench.footprints [--files N] [--earlier N] [--queued N] [--claims N] [--backends B] [--json]``.

On SQLite and on PostgreSQL (each a real ``locus-cloud serve`` with its database): a project
whose graph is uploaded through the real route (``--files`` files, ``--earlier`` earlier tasks
with their titles and the files they touched, co-change edges between files of one area),
:data:`HELD` tasks held by one worker and ``--queued`` queued tasks, every other one naming a
module a held task touches (so it overlaps) and the rest another area. Another worker's
``--claims`` claims are timed straight on the database (``cloud_api.dispatch.claims.claim``),
each given back after it is timed so every claim sees the same queue and held tasks: under
policy ``ignore`` (the baseline: the one claim statement), ``avoid`` with the footprints
cached, ``warn``, and ``avoid`` right after the graph changed (the version bumped as an upload
ends it: the model is rebuilt and the held tasks and candidates ranked, in a thread); then
over HTTP (``POST /worker/claim``) under ``ignore`` and ``avoid``, the server's own cache
warmed first. Each is also shown as a ratio to its baseline of the same run. Separately: the
model build per graph version and the footprint computation per task. Context figures only:
no bars (docs/benchmarks.md, "Conflict-aware claims").
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, get_args

import aiohttp
from sqlalchemy import select

from bench.claims import seed_tasks
from bench.cloud import Backend, Cloud, make_workers, running_cloud
from bench.daemon import workdir
from bench.figures import (
    Figure,
    at_least_one,
    measured,
    output_flags,
    parser_for,
    progress,
    suite_main,
    work_directory,
)
from bench.stats import Samples
from cloud_api.dispatch import footprints
from cloud_api.dispatch.claims import WorkerIdentity, claim
from cloud_api.domain.states import Actor, TaskStatus
from cloud_api.store import tasks as task_store
from cloud_api.store.graph import bump_version
from cloud_api.store.tables import tasks
from tests.support.client import Api, Worker

T = TypeVar("T")

LEASE_S = 60.0
#: Tasks held while the claims are timed (by one worker, each in an area of its own).
HELD = 5
#: Files are ``src/<area>/<module>.py``; an earlier task touches three files of one area.
AREAS = 30
TOUCHED = 3
#: Model builds (graph versions) timed for the build and per-task figures.
VERSIONS = 5
#: What one upload may carry (the schema's caps): the graph is one upload.
MAX_NODES, MAX_EDGES = 5000, 20000
SYLLABLES = ("ka", "lo", "mi", "ra", "tu", "ve", "shi", "no", "pe", "zo")
#: What is timed straight on the database (policy, or ``cold``: avoid after a graph change)
#: and over HTTP; each kind's first is its baseline.
POLICIES = ("ignore", "avoid", "warn", "cold")
HTTP = ("http_ignore", "http_avoid")
NAMES = {
    "ignore": "ignore (baseline)",
    "avoid": "avoid, footprints cached",
    "warn": "warn",
    "cold": "avoid, right after a graph change",
    "http_ignore": "HTTP, ignore (baseline)",
    "http_avoid": "HTTP, avoid, footprints cached",
}


# --- the workload (pure) -------------------------------------------------------------------


def word(i: int) -> str:
    """A made-up word per number (four syllables), so names match only where meant."""
    return "".join(SYLLABLES[int(d)] for d in f"{i:04d}")


def area(a: int) -> str:
    return word(9000 + a)


def path(i: int) -> str:
    """File ``i``: in area ``i % AREAS``, its module named by its own word."""
    return f"src/{area(i % AREAS)}/{word(i)}.py"


def touched(e: int, files: int) -> list[int]:
    """The files earlier task ``e`` touched: :data:`TOUCHED` of area ``e % AREAS``."""
    per_area = files // AREAS
    first = (e // AREAS) * TOUCHED
    return [e % AREAS + AREAS * ((first + j) % per_area) for j in range(TOUCHED)]


def earlier_title(e: int, files: int) -> str:
    names = [word(i) for i in touched(e, files)]
    return f"fix {names[0]} and {names[1]} in {area(e % AREAS)}"


def held_title(h: int, files: int) -> str:
    """Held task ``h``: about what earlier task ``h`` (area ``h``) touched."""
    return f"rework {word(touched(h, files)[0])} in {area(h)}"


def queued_title(q: int, files: int) -> str:
    """Even: the module of a held task's area (it overlaps); odd: another area's."""
    if q % 2 == 0:
        return f"{word(touched(q // 2 % HELD, files)[0])}: handle {area(q // 2 % HELD)} errors"
    other = HELD + q // 2 % (AREAS - HELD)
    return f"{word(touched(other, files)[0])}: handle {area(other)} errors"


def graph(files: int, earlier: list[int]) -> dict[str, Any]:
    """The upload: the files, the earlier tasks (keyed by their ids, as the daemon sends
    them) with ``touched`` edges, and ``co_change`` edges between neighbours of an area."""

    def ref(kind: str, key: str) -> dict[str, str]:
        return {"kind": kind, "key": key}

    nodes = [ref("file", path(i)) for i in range(files)]
    nodes += [ref("task", str(task_id)) for task_id in earlier]
    edges: list[dict[str, Any]] = [
        {"src": ref("task", str(task_id)), "dst": ref("file", path(i)), "kind": "touched"}
        for e, task_id in enumerate(earlier)
        for i in touched(e, files)
    ]
    edges += [
        {
            "src": ref("file", path(i)),
            "dst": ref("file", path(i + AREAS)),
            "kind": "co_change",
            "weight": 1 + i % 4,
        }
        for i in range(files - AREAS)
    ]
    return {"nodes": nodes, "edges": edges}


# --- the measurement -----------------------------------------------------------------------


@dataclass
class Measured:
    backend: Backend
    claims: dict[str, Samples]
    model_ms: Samples
    footprint_ms: Samples
    candidates: int  # queued tasks a claim looks at
    overlapping: int  # of those, how many overlap a held task
    changes: int  # graph versions the cold claims (the untimed one too) each came after

    def figures(self) -> list[Figure]:
        b = self.backend
        found = []
        for kind in (POLICIES, HTTP):
            base = self.claims[kind[0]]
            for policy in kind:
                got, name = self.claims[policy], NAMES[policy]
                found += [
                    Figure(b, f"{b}_{policy}_p50_ms", f"claim p50, {name}", got.p50, "ms", "",
                           None),
                    Figure(b, f"{b}_{policy}_p95_ms", f"claim p95, {name}", got.p95, "ms", "",
                           None),
                ]  # fmt: skip
                if policy != kind[0]:
                    found += [
                        Figure(b, f"{b}_{policy}_ratio_p50", f"p50 {policy} ÷ {kind[0]}",
                               got.p50 / base.p50, "x", "", None),
                        Figure(b, f"{b}_{policy}_ratio_p95", f"p95 {policy} ÷ {kind[0]}",
                               got.p95 / base.p95, "x", "", None),
                    ]  # fmt: skip
        return [
            *found,
            Figure(b, f"{b}_model_ms", "model build per graph version, p50",
                   self.model_ms.p50, "ms", "", None),
            Figure(b, f"{b}_footprint_ms", "footprint per task, p50",
                   self.footprint_ms.p50, "ms", "", None),
            Figure(b, f"{b}_candidates", "queued tasks a claim looks at",
                   self.candidates, "", "", None),
            Figure(b, f"{b}_overlapping", "of those, overlapping a held task",
                   self.overlapping, "", "", None),
            Figure(b, f"{b}_cold_graph_changes", "graph changes behind the cold claims",
                   self.changes, "", "", None),
        ]  # fmt: skip


async def _set_policy(admin: Api, project_id: int, policy: str) -> None:
    (await admin.patch(f"/projects/{project_id}", {"dispatch_overlap": policy})).ok()


async def _project(cloud: Cloud, admin: Api, args: argparse.Namespace) -> Worker:
    """The project as the docstring says; returns the worker to time."""
    pid, files = cloud.project_id, args.files
    await _set_policy(admin, pid, "ignore")
    earlier = await seed_tasks(
        cloud, args.earlier, "earlier",
        title=lambda e: earlier_title(e, files), status=TaskStatus.DONE,
    )  # fmt: skip
    (await admin.post(f"/projects/{pid}/graph", graph(files, earlier))).ok()
    holder, timed = await make_workers(admin, pid, 2, "footprints")
    await seed_tasks(cloud, HELD, "held", title=lambda h: held_title(h, files))
    assert holder.id is not None and timed.id is not None
    for _ in range(HELD):
        if await claim(cloud.db, WorkerIdentity(holder.id, pid, ()), LEASE_S) is None:
            raise RuntimeError("the held tasks could not be claimed")
    await seed_tasks(cloud, args.queued, "queued", title=lambda q: queued_title(q, files))
    return timed


async def _give_back(cloud: Cloud, row: Any) -> None:
    """The claimed task back to the queue, as its worker would (not timed)."""
    async with cloud.db.write() as tx:
        await task_store.transition(
            tx, row, TaskStatus.QUEUED, Actor.WORKER, actor_id=row.lease_owner_id
        )


async def _timed(
    count: int,
    take: Callable[[], Awaitable[T | None]],
    give_back: Callable[[T], Awaitable[None]],
    *,
    before: Callable[[], Awaitable[None]] | None = None,
    warm: int = 1,
) -> Samples:
    """``count`` claims made by ``take`` (after ``before`` each, not timed), each given back;
    ``warm`` untimed claims first fill what the policy caches."""
    into = Samples()
    for i in range(warm + count):
        if before is not None:
            await before()
        started = time.perf_counter()
        got = await take()
        elapsed = (time.perf_counter() - started) * 1000
        if got is None:
            raise RuntimeError("a claim took nothing: every candidate overlaps a held task")
        if i >= warm:
            into.samples_ms.append(elapsed)
        await give_back(got)
    return into


def _over_http(
    worker: Worker,
) -> tuple[Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]]:
    """A claim over ``POST /worker/claim`` and its give-back (``status: queued``)."""

    async def take() -> dict[str, Any] | None:
        reply = await worker.claim()
        return None if reply.status == 204 else dict(reply.ok())

    async def give_back(got: dict[str, Any]) -> None:
        (await worker.status(got, "queued")).ok()

    return take, give_back


async def _queued(cloud: Cloud) -> list[Any]:
    async with cloud.db.read() as conn:
        stmt = select(tasks.c.id, tasks.c.title, tasks.c.description).where(
            tasks.c.project_id == cloud.project_id, tasks.c.status == TaskStatus.QUEUED.value
        )
        return list((await conn.execute(stmt)).all())


async def _model_and_footprints(cloud: Cloud) -> tuple[Samples, Samples]:
    """Per graph version: the model build (no task ranked), then the footprint of each of
    the first :data:`footprints.CANDIDATES` queued tasks, per task."""
    model, per_task = Samples(), Samples()
    rows = (await _queued(cloud))[: footprints.CANDIDATES]
    for _ in range(VERSIONS):
        await bump_version(cloud.db, cloud.project_id)
        version = await _version(cloud)
        started = time.perf_counter()
        await footprints.footprints_of(cloud.db, cloud.project_id, version, [])
        built = time.perf_counter()
        await footprints.footprints_of(cloud.db, cloud.project_id, version, rows)
        model.samples_ms.append((built - started) * 1000)
        per_task.samples_ms.append((time.perf_counter() - built) * 1000 / len(rows))
    return model, per_task


async def _version(cloud: Cloud) -> int:
    return (await footprints.conflicts(cloud.db, cloud.project_id)).version


async def _overlapping(cloud: Cloud, worker: WorkerIdentity) -> tuple[int, int]:
    """The queued tasks a claim looks at, and how many of them overlap a held task."""
    found = await footprints.conflicts(cloud.db, cloud.project_id)
    queued = await footprints.candidates(cloud.db, cloud.project_id, worker.repositories, ())
    mine = await footprints.footprints_of(cloud.db, cloud.project_id, found.version, queued)
    return len(queued), sum(bool(found.of(r.id, mine[r.id])) for r in queued)


async def measure(backend: Backend, args: argparse.Namespace) -> Measured:
    with work_directory(workdir(f"footprints-{backend}"), args.keep) as where:
        async with (
            running_cloud(backend, where, lease_seconds=LEASE_S) as cloud,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session,
        ):
            admin, pid = cloud.admin(session), cloud.project_id
            progress(f"{backend}: {args.files} files, {args.earlier} earlier tasks")
            timed = await _project(cloud, admin, args)
            assert timed.id is not None
            worker = WorkerIdentity(timed.id, pid, ())
            progress(f"{backend}: model build and footprints, {VERSIONS} graph versions")
            model, per_task = await _model_and_footprints(cloud)

            async def raw() -> Any:
                return await claim(cloud.db, worker, LEASE_S)

            async def give_back(row: Any) -> None:
                await _give_back(cloud, row)

            claims: dict[str, Samples] = {}
            changes = 0
            for policy in POLICIES:
                progress(f"{backend}: {args.claims} claims, {NAMES[policy]}")
                await _set_policy(admin, pid, "avoid" if policy == "cold" else policy)
                if policy == "avoid":  # every queued task's footprint cached
                    queued = await _queued(cloud)
                    await footprints.footprints_of(cloud.db, pid, await _version(cloud), queued)
                changed = (lambda: bump_version(cloud.db, pid)) if policy == "cold" else None
                first = await _version(cloud)
                claims[policy] = await _timed(args.claims, raw, give_back, before=changed)
                if policy == "cold":
                    changes = await _version(cloud) - first
            take, put_back = _over_http(timed)
            for policy in HTTP:
                progress(f"{backend}: {args.claims} claims, {NAMES[policy]}")
                await _set_policy(admin, pid, policy.removeprefix("http_"))
                # The server keeps its own cache: as many untimed claims as tasks fill it.
                warm = args.queued if policy == "http_avoid" else 1
                claims[policy] = await _timed(args.claims, take, put_back, warm=warm)
            looked, overlapping = await _overlapping(cloud, worker)
    return Measured(backend, claims, model, per_task, looked, overlapping, changes)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = parser_for("python -m bench.footprints", __doc__)
    parser.add_argument("--files", type=int, default=3000, help="files in the graph (3000)")
    parser.add_argument("--earlier", type=int, default=300, help="earlier tasks (300)")
    parser.add_argument("--queued", type=int, default=200, help="queued tasks (200)")
    parser.add_argument("--claims", type=int, default=50, help="timed claims per policy (50)")
    parser.add_argument(
        "--backends", default="sqlite,postgresql", help="comma-separated (sqlite,postgresql)"
    )
    output_flags(parser)
    args = parser.parse_args(argv)
    at_least_one(parser, args, "earlier", "claims")
    if args.files < 2 * AREAS:
        parser.error(f"--files must be at least {2 * AREAS} (two files an area)")
    if args.queued < 2:
        parser.error("--queued must be at least 2 (one overlapping, one not)")
    if (
        args.files + args.earlier > MAX_NODES
        or args.files + args.earlier * TOUCHED > MAX_EDGES + AREAS
    ):
        parser.error(
            f"--files and --earlier must fit one graph upload ({MAX_NODES} nodes: files +"
            f" earlier; {MAX_EDGES} edges: files - {AREAS} + {TOUCHED} x earlier)"
        )
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not args.backends or set(args.backends) - set(get_args(Backend)):
        parser.error("--backends takes sqlite and/or postgresql")
    return args


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async def every_backend() -> list[Figure]:
        return [f for b in args.backends for f in (await measure(b, args)).figures()]

    return await measured(args, every_backend, notes=[])


def main(argv: list[str] | None = None) -> int:
    return suite_main(
        argv, parse_args, run, "Conflict-aware claims in a project with a graph", group="backend"
    )


if __name__ == "__main__":
    sys.exit(main())
