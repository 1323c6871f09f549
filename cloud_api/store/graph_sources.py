"""Which worker's upload holds which graph node and edge, so uploads from several workers of one
project merge: a worker's upload replaces only its own set, and a node or edge is deleted when
the last worker holding it uploads without it (a person's upsert holds nothing, so the
collection never deletes what a person wrote and no worker holds).

Like :mod:`cloud_api.store.graph`, every step is a short transaction over a sorted chunk, and
every step is idempotent, so the same upload sent again completes an interrupted one. Deletes
lock in the order ``delete_node`` does: the nodes (``FOR UPDATE``, by id), then their edges,
then the nodes themselves.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Table, delete, exists, or_, select

from cloud_api.store.db import Database
from cloud_api.store.graph import chunks
from cloud_api.store.tables import graph_edge_sources, graph_edges, graph_node_sources, graph_nodes
from cloud_api.store.upsert import insert_for


async def replace(
    db: Database, worker_id: int, nodes: Collection[int], edges: Collection[int]
) -> tuple[int, int]:
    """Make ``worker_id``'s held sets exactly ``nodes`` and ``edges``; delete what it dropped
    and no other worker holds. Returns how many nodes and edges were deleted."""
    await _hold(db, graph_node_sources, worker_id, nodes)
    await _hold(db, graph_edge_sources, worker_id, edges)
    removed_edges = 0
    for chunk in chunks(sorted(await _held(db, graph_edge_sources, worker_id) - set(edges))):
        async with db.write() as tx:
            await tx.conn.execute(_release(graph_edge_sources, worker_id, chunk))
            gone = await tx.conn.execute(
                delete(graph_edges)
                .where(
                    graph_edges.c.id.in_(chunk), ~_held_by_anyone(graph_edge_sources, graph_edges)
                )
                .returning(graph_edges.c.id)
            )
            removed_edges += len(gone.all())
    removed_nodes = 0
    for chunk in chunks(sorted(await _held(db, graph_node_sources, worker_id) - set(nodes))):
        async with db.write() as tx:
            await tx.conn.execute(_release(graph_node_sources, worker_id, chunk))
            orphans = (
                (
                    await tx.conn.execute(
                        select(graph_nodes.c.id)
                        .where(
                            graph_nodes.c.id.in_(chunk),
                            ~_held_by_anyone(graph_node_sources, graph_nodes),
                        )
                        .order_by(graph_nodes.c.id)
                        .with_for_update()
                    )
                )
                .scalars()
                .all()
            )
            if not orphans:
                continue
            await tx.conn.execute(
                delete(graph_edges).where(
                    or_(graph_edges.c.src_id.in_(orphans), graph_edges.c.dst_id.in_(orphans))
                )
            )
            await tx.conn.execute(delete(graph_nodes).where(graph_nodes.c.id.in_(orphans)))
            removed_nodes += len(orphans)
    return removed_nodes, removed_edges


def _held_column(sources: Table) -> Any:
    return sources.c.node_id if sources is graph_node_sources else sources.c.edge_id


def _held_by_anyone(sources: Table, target: Table) -> Any:
    return exists().where(_held_column(sources) == target.c.id)


def _release(sources: Table, worker_id: int, ids: Collection[int]) -> Any:
    return delete(sources).where(sources.c.worker_id == worker_id, _held_column(sources).in_(ids))


async def _hold(db: Database, sources: Table, worker_id: int, ids: Collection[int]) -> None:
    """Record that the worker holds ``ids`` (the ones it held already stay as they are).
    Raises IntegrityError if one was deleted meanwhile."""
    column = _held_column(sources).name
    stmt = insert_for(db.backend, sources).on_conflict_do_nothing()
    for chunk in chunks([{column: i, "worker_id": worker_id} for i in sorted(set(ids))]):
        async with db.write() as tx:
            await tx.conn.execute(stmt, chunk)


async def _held(db: Database, sources: Table, worker_id: int) -> set[int]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(_held_column(sources)).where(sources.c.worker_id == worker_id)
        )
        return {int(r[0]) for r in rows}
