"""Knowledge-graph writes: ordered, batched, and in short transactions.

*Ordered*: rows are written sorted by their unique key, so concurrent uploads take PostgreSQL's
row locks in one order and cannot deadlock. *Batched*: one executemany per chunk, not one
statement per row. *Short*: each chunk of :data:`CHUNK_ROWS` rows is its own write transaction,
so on SQLite, whose one writer serialises every write of the process, a heartbeat or a claim
queued behind an upload runs between two chunks rather than after the whole upload.

An upload is therefore not atomic: if the process dies half way, some chunks are committed and
the client gets no answer. Every write is an upsert, so sending the same upload again completes
it (see docs/rest-api.md and docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import select, tuple_, update

from cloud_api.store.db import Database
from cloud_api.store.tables import graph_edges, graph_nodes, projects
from cloud_api.store.types import db_now
from cloud_api.store.upsert import insert_for

#: Rows per write transaction. A chunk of maximal nodes (three 400-character attributes each)
#: holds SQLite's writer for tens of milliseconds (bench.graphupload), not the seconds a whole upload
#: took in one transaction.
CHUNK_ROWS = 500
#: Node references per ``(kind, key) IN (...)`` look-up (SQLite caps a statement's variables).
LOOKUP_ROWS = 500

NodeKey = tuple[str, str]  # (kind, key): unique within a project
EdgeKey = tuple[int, int, str]  # (src_id, dst_id, kind): unique within a project
T = TypeVar("T")


def chunks(rows: Sequence[T], size: int = CHUNK_ROWS) -> Iterable[Sequence[T]]:
    return (rows[start : start + size] for start in range(0, len(rows), size))


async def upsert_nodes(
    db: Database, project_id: int, nodes: Mapping[NodeKey, Mapping[str, Any]]
) -> None:
    """Insert each node or replace its attributes, in key order, a chunk per transaction."""
    stmt = insert_for(db.backend, graph_nodes)
    stmt = stmt.on_conflict_do_update(
        index_elements=[graph_nodes.c.project_id, graph_nodes.c.kind, graph_nodes.c.key],
        set_={"attrs": stmt.excluded.attrs, "updated_at": db_now()},
    )
    rows = [
        {"project_id": project_id, "kind": kind, "key": key, "attrs": dict(nodes[kind, key])}
        for kind, key in sorted(nodes)
    ]
    for chunk in chunks(rows):
        async with db.write() as tx:
            await tx.conn.execute(stmt, chunk)


async def node_ids(db: Database, project_id: int, refs: Iterable[NodeKey]) -> dict[NodeKey, int]:
    """The ids of those of ``refs`` that exist (a read: it never holds SQLite's writer)."""
    wanted = sorted(set(refs))
    ids: dict[NodeKey, int] = {}
    async with db.read() as conn:
        for chunk in chunks(wanted, LOOKUP_ROWS):
            rows = await conn.execute(
                select(graph_nodes.c.id, graph_nodes.c.kind, graph_nodes.c.key).where(
                    graph_nodes.c.project_id == project_id,
                    tuple_(graph_nodes.c.kind, graph_nodes.c.key).in_(chunk),
                )
            )
            ids.update({(r.kind, r.key): r.id for r in rows})
    return ids


async def upsert_edges(db: Database, project_id: int, edges: Mapping[EdgeKey, int | None]) -> None:
    """Insert each edge or replace its weight, in key order, a chunk per transaction. Raises
    IntegrityError if a node they name was deleted meanwhile."""
    stmt = insert_for(db.backend, graph_edges)
    stmt = stmt.on_conflict_do_update(
        index_elements=[
            graph_edges.c.project_id,
            graph_edges.c.src_id,
            graph_edges.c.dst_id,
            graph_edges.c.kind,
        ],
        set_={"weight": stmt.excluded.weight},
    )
    rows = [
        {"project_id": project_id, "src_id": src, "dst_id": dst, "kind": kind, "weight": weight}
        for (src, dst, kind), weight in sorted(edges.items())
    ]
    for chunk in chunks(rows):
        async with db.write() as tx:
            await tx.conn.execute(stmt, chunk)


async def edge_ids(db: Database, project_id: int, keys: Iterable[EdgeKey]) -> dict[EdgeKey, int]:
    """The ids of those of ``keys`` that exist (a read)."""
    wanted = sorted(set(keys))
    ids: dict[EdgeKey, int] = {}
    c = graph_edges.c
    async with db.read() as conn:
        for chunk in chunks(wanted, LOOKUP_ROWS // 3):  # three variables a key
            rows = await conn.execute(
                select(c.id, c.src_id, c.dst_id, c.kind).where(
                    c.project_id == project_id, tuple_(c.src_id, c.dst_id, c.kind).in_(chunk)
                )
            )
            ids.update({(r.src_id, r.dst_id, r.kind): r.id for r in rows})
    return ids


async def bump_version(db: Database, project_id: int) -> None:
    """Mark the project's graph changed: the footprints cached from it are recomputed
    (cloud_api.dispatch.footprints). Called once a write is complete, not per chunk."""
    async with db.write() as tx:
        await tx.conn.execute(
            update(projects)
            .where(projects.c.id == project_id)
            .values(graph_version=projects.c.graph_version + 1)
        )
