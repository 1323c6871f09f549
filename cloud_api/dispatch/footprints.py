"""Conflict-aware dispatch, the IO half (the pure half is :mod:`cloud_api.domain.footprints`).

Footprints are computed in the API process, from the project's graph, and cached in memory
per replica: the ranking model per (project, ``graph_version``) — every graph write bumps the
version, so an upload invalidates it — and each task's footprint per (model, title,
description) — so a task text edit is a new key. Nothing is stored: a restart recomputes.

The plain claim statement carries a guard (:func:`guard`): while the project has no graph, its
policy is ``ignore``, or it is ``warn`` with no task held, a claim is the one statement it was.
Otherwise it takes nothing and the claim reads the policy and held tasks (one statement), the
first :data:`CANDIDATES` queued tasks, ranks them and claims a chosen one (docs/dispatch.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.orm import aliased

from cloud_api.domain import footprints as pure
from cloud_api.domain.footprints import Footprint, OverlapPolicy
from cloud_api.domain.states import HELD, TaskStatus
from cloud_api.store.db import Database
from cloud_api.store.graph import chunks
from cloud_api.store.tables import DISPATCH_ORDER, graph_edges, graph_nodes, projects, tasks

#: Queued tasks (in dispatch order) a claim looks at while some task is held: a claim whose
#: first CANDIDATES all overlap takes nothing, so ranking stays bounded per claim.
CANDIDATES = 50
#: Footprints kept per project before the cache starts over (task texts come and go).
_MAX_CACHED = 20_000

_HELD = [s.value for s in HELD]
#: One read: the policy, the graph's version and — only when they make it matter — the held
#: tasks of the project (a project with the policy off or no graph reads no task).
_STATE = (
    select(
        projects.c.dispatch_overlap,
        projects.c.graph_version,
        tasks.c.id,
        tasks.c.title,
        tasks.c.description,
    )
    .select_from(
        projects.outerjoin(
            tasks,
            and_(
                tasks.c.project_id == projects.c.id,
                tasks.c.status.in_(_HELD),
                projects.c.dispatch_overlap != OverlapPolicy.IGNORE.value,
                projects.c.graph_version > 0,
            ),
        )
    )
    .where(projects.c.id == bindparam("p_project"))
)


def held_unchanged() -> Any:
    """SQL true when no task of ``p_project`` is held but those of ``p_held``: the claim of a
    task chosen as overlapping none of them carries it, so a task that became held meanwhile
    makes the claim take nothing (and the caller look again). Within SQLite's one writer that
    closes the race; on PostgreSQL the project's claim lock, taken before the statement, does
    (docs/dispatch.md, "Racing claims")."""
    held = aliased(tasks)
    newly = select(held.c.id).where(
        held.c.project_id == bindparam("p_project"),
        held.c.status.in_(_HELD),
        held.c.id.not_in(bindparam("p_held", expanding=True)),
    )
    return ~newly.exists()


@dataclass
class _Project:
    version: int
    model: pure.Model
    footprints: dict[bytes, Footprint] = field(default_factory=dict)


_CACHE: weakref.WeakKeyDictionary[Database, dict[int, _Project]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Conflicts:
    """A project's policy, its graph's version and its held tasks' footprints (none read
    when the policy is ``ignore`` or the project has no graph)."""

    project_id: int
    policy: OverlapPolicy
    version: int
    held: dict[int, Footprint]

    @property
    def matter(self) -> bool:
        """Whether a claim must look at footprints now."""
        return bool(self.held)

    def of(self, task_id: int, found: Footprint) -> dict[int, tuple[str, ...]]:
        """The held tasks (other than ``task_id``) ``found`` overlaps, with the shared files."""
        return pure.overlaps(found, {i: f for i, f in self.held.items() if i != task_id})


async def conflicts(db: Database, project_id: int) -> Conflicts:
    """What a claim must respect in ``project_id`` now (one read)."""
    async with db.read() as conn:
        rows = (await conn.execute(_STATE, {"p_project": project_id})).all()
    policy, version = OverlapPolicy(rows[0].dispatch_overlap), int(rows[0].graph_version)
    held = [r for r in rows if r.id is not None]
    found = await footprints_of(db, project_id, version, held) if held else {}
    return Conflicts(project_id, policy, version, found)


def guard() -> Any:
    """SQL true when a claim of ``p_project`` need not look at footprints: the project has no
    graph, its policy is ``ignore``, or it is ``warn`` and no task is held. The plain claim
    statement carries it, so the common case stays one statement; when it is false the claim
    finds nothing and :func:`cloud_api.dispatch.claims.claim` takes the conflict-aware path.
    Under ``avoid`` every claim takes that path, even with nothing held: claims racing for
    overlapping tasks must be ordered (docs/dispatch.md, "Racing claims")."""
    held = aliased(tasks)
    anything_held = (
        select(held.c.id)
        .where(held.c.project_id == bindparam("p_project"), held.c.status.in_(_HELD))
        .exists()
    )
    relevant = select(projects.c.id).where(
        projects.c.id == bindparam("p_project"),
        projects.c.graph_version > 0,
        or_(
            projects.c.dispatch_overlap == OverlapPolicy.AVOID.value,
            and_(projects.c.dispatch_overlap == OverlapPolicy.WARN.value, anything_held),
        ),
    )
    return ~relevant.exists()


async def board_overlaps(db: Database, project_id: int) -> dict[int, dict[int, tuple[str, ...]]]:
    """Task id → the other tasks it may overlap, among the held tasks and the first
    :data:`CANDIDATES` queued ones (what claims look at): the board's "may overlap" notes.
    Empty when the policy is ``ignore`` or the project has no graph."""
    async with db.read() as conn:
        project = (
            await conn.execute(
                select(projects.c.dispatch_overlap, projects.c.graph_version).where(
                    projects.c.id == project_id
                )
            )
        ).one()
        if project.dispatch_overlap == OverlapPolicy.IGNORE.value or not project.graph_version:
            return {}
        columns = (tasks.c.id, tasks.c.title, tasks.c.description)
        held = await conn.execute(
            select(*columns).where(tasks.c.project_id == project_id, tasks.c.status.in_(_HELD))
        )
        queued = await conn.execute(
            select(*columns)
            .where(tasks.c.project_id == project_id, tasks.c.status == TaskStatus.QUEUED.value)
            .order_by(*DISPATCH_ORDER)
            .limit(CANDIDATES)
        )
        rows = [*held, *queued]
    found = await footprints_of(db, project_id, int(project.graph_version), rows)
    return pure.pairwise(found)


async def footprints_of(
    db: Database, project_id: int, version: int, rows: Iterable[Any]
) -> dict[int, Footprint]:
    """Task id → footprint, for ``rows`` (with ``id``, ``title``, ``description``), from the
    graph at ``version`` (cached)."""
    cached = await _project(db, project_id, version)
    keyed = [(row, _text_key(row.title, row.description)) for row in rows]
    missing = {
        key: (row.title, row.description) for row, key in keyed if key not in cached.footprints
    }
    if missing:
        # Ranking is CPU work (~20 ms a task over 5,000 files): off the event loop, so
        # heartbeats and other claims are answered meanwhile.
        computed = await asyncio.to_thread(_rank_all, cached.model, missing)
        if len(cached.footprints) + len(computed) > _MAX_CACHED:
            cached.footprints.clear()
        cached.footprints.update(computed)
    return {row.id: cached.footprints[key] for row, key in keyed}


def _text_key(title: str, description: str) -> bytes:
    # surrogatepass: a JSON body may carry a lone surrogate, which plain UTF-8 refuses.
    return hashlib.sha256(f"{title}\0{description}".encode("utf-8", "surrogatepass")).digest()


def _rank_all(graph: pure.Model, texts: dict[bytes, tuple[str, str]]) -> dict[bytes, Footprint]:
    return {key: pure.footprint(graph, title, text) for key, (title, text) in texts.items()}


async def candidates(
    db: Database, project_id: int, repositories: Sequence[str], exclude: Sequence[int]
) -> list[Any]:
    """The first :data:`CANDIDATES` queued tasks a worker serving ``repositories`` could
    claim, in dispatch order (the claim's own order)."""
    stmt = (
        select(tasks.c.id, tasks.c.title, tasks.c.description)
        .where(
            tasks.c.project_id == project_id,
            tasks.c.status == TaskStatus.QUEUED.value,
            or_(tasks.c.repository.is_(None), tasks.c.repository.in_(list(repositories))),
        )
        .order_by(*DISPATCH_ORDER)
        .limit(CANDIDATES)
    )
    if exclude:
        stmt = stmt.where(tasks.c.id.not_in(list(exclude)))
    async with db.read() as conn:
        return list((await conn.execute(stmt)).all())


async def _project(db: Database, project_id: int, version: int) -> _Project:
    per_db = _CACHE.setdefault(db, {})
    cached = per_db.get(project_id)
    if cached is None or cached.version != version:
        cached = _Project(version, await _load_model(db, project_id))
        per_db[project_id] = cached
    return cached


_SRC, _DST = aliased(graph_nodes), aliased(graph_nodes)


def _edges(project_id: int, kind: str, src_kind: str) -> Any:
    return (
        select(_SRC.c.key.label("src"), _DST.c.key.label("dst"), graph_edges.c.weight)
        .join(_SRC, _SRC.c.id == graph_edges.c.src_id)
        .join(_DST, _DST.c.id == graph_edges.c.dst_id)
        .where(
            graph_edges.c.project_id == project_id,
            graph_edges.c.kind == kind,
            _SRC.c.kind == src_kind,
            _DST.c.kind == "file",
        )
    )


async def _load_model(db: Database, project_id: int) -> pure.Model:
    """The project's merged graph as a ranking model: file nodes, task nodes with their
    ``touched`` files and their text from the tasks table, ``co_change`` edges."""
    node = graph_nodes.c
    async with db.read() as conn:
        file_keys = select(node.key).where(node.project_id == project_id, node.kind == "file")
        paths = list((await conn.execute(file_keys)).scalars())
        touched: dict[str, list[str]] = {}
        for row in await conn.execute(_edges(project_id, "touched", "task")):
            touched.setdefault(row.src, []).append(row.dst)
        co_change = [
            (r.src, r.dst, int(r.weight or 1))
            for r in await conn.execute(_edges(project_id, "co_change", "file"))
        ]
        # A task node's key is the task's id as the daemon uploads it; any other key (a
        # worker's upload is untrusted) is an earlier task with no text.
        ids = sorted({int(k) for k in touched if k.isascii() and k.isdigit() and len(k) < 16})
        texts: dict[str, tuple[str, int]] = {}
        for chunk in chunks(ids):
            rows = await conn.execute(
                select(tasks.c.id, tasks.c.title, tasks.c.description, tasks.c.created_at).where(
                    tasks.c.project_id == project_id, tasks.c.id.in_(chunk)
                )
            )
            for r in rows:
                when = int(r.created_at.timestamp()) if r.created_at else 0
                texts[str(r.id)] = (f"{r.title}\n{r.description}", when)
    earlier = []
    for key, files in touched.items():
        text, when = texts.get(key, ("", 0))
        earlier.append(pure.EarlierTask(key, text, tuple(files), when))
    return await asyncio.to_thread(pure.model, paths, earlier, co_change)
