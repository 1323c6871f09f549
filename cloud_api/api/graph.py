"""The knowledge graph of a project: metadata nodes and edges, never file contents."""

from __future__ import annotations

from pydantic import Field
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from cloud_api.api.context import Ctx
from cloud_api.api.errors import ApiError, conflict, field_problem, not_found
from cloud_api.api.policy import Permission
from cloud_api.api.routing import Router
from cloud_api.domain.permissions import Action
from cloud_api.schemas.common import MAX_INT, Query
from cloud_api.schemas.graph import (
    EdgeOut,
    GraphOut,
    GraphUploadOut,
    GraphUpsert,
    GraphUpsertOut,
    NodeKind,
    NodeOut,
)
from cloud_api.store import graph as store
from cloud_api.store import graph_sources as sources
from cloud_api.store.tables import graph_edges, graph_nodes

router = Router("graph")
WRITE_GRAPH = Permission(Action.WRITE_GRAPH, on="project_id")


class GraphQuery(Query):
    kind: NodeKind | None = None
    limit: int = Field(5000, ge=1, le=20000)
    after: int = Field(0, ge=0, le=MAX_INT)


# Not ``idempotent``: an Idempotency-Key would make the whole upload one transaction (the key's
# answer commits with the effect), holding SQLite's writer for seconds again, and the node ids
# read between chunks would miss the uncommitted nodes. An upsert needs no key: sending the
# same upload again is its retry.
@router.post(
    "/projects/{project_id}/graph",
    summary="Upsert knowledge-graph nodes and edges",
    permission=WRITE_GRAPH,
    idempotent=False,
)
async def upsert_graph(ctx: Ctx, project_id: int, body: GraphUpsert) -> GraphUpsertOut:
    """Nodes, then edges, each in short transactions (:mod:`cloud_api.store.graph`): every
    check that can refuse the upload runs before the first write."""
    await _write(ctx, project_id, body)
    await store.bump_version(ctx.db, project_id)
    return GraphUpsertOut(nodes=len(body.nodes), edges=len(body.edges))


# The route the daemon's outbox calls with the graph `locus graph show` prints.
@router.post(
    "/worker/projects/{project_id}/graph",
    summary="Upload this worker's graph of the project (replaces its previous upload)",
    permission=Permission(Action.WORK, on="project_id"),
    idempotent=False,
)
async def upload_graph(ctx: Ctx, project_id: int, body: GraphUpsert) -> GraphUploadOut:
    """The worker's whole graph of the project. Merged with other workers' uploads: nodes and
    edges are their union (a node's attributes and an edge's weight are the newest upload's);
    what this worker's previous upload had and this one has not is deleted unless another
    worker's upload holds it. The same body sent again changes nothing (the retry of a lost
    answer); chunked and not atomic like the upsert above."""
    worker = ctx.me.worker()
    node_ids, edge_keys = await _write(ctx, project_id, body)
    try:
        edge_ids = await store.edge_ids(ctx.db, project_id, edge_keys)
        if len(edge_ids) < len(set(edge_keys)):
            raise _deleted_meanwhile()
        removed_nodes, removed_edges = await sources.replace(
            ctx.db, worker.id, node_ids, edge_ids.values()
        )
    except IntegrityError:
        raise _deleted_meanwhile() from None
    await store.bump_version(ctx.db, project_id)
    return GraphUploadOut(
        nodes=len(body.nodes),
        edges=len(body.edges),
        removed_nodes=removed_nodes,
        removed_edges=removed_edges,
    )


async def _write(
    ctx: Ctx, project_id: int, body: GraphUpsert
) -> tuple[list[int], list[store.EdgeKey]]:
    """Upsert ``body``; the ids of its nodes and the keys of its edges."""
    nodes = {(n.kind, n.key): n.attrs for n in body.nodes}  # a repeated node: the last wins
    ends = [((e.src.kind, e.src.key), (e.dst.kind, e.dst.key)) for e in body.edges]
    known = await store.node_ids(
        ctx.db, project_id, {ref for pair in ends for ref in pair if ref not in nodes}
    )
    for i, pair in enumerate(ends):
        for end, ref in zip(("src", "dst"), pair, strict=True):
            if ref not in nodes and ref not in known:
                raise field_problem(
                    "body",
                    f"edges.{i}.{end}",
                    f"no node {ref[0]}:{ref[1]}",
                    "send the node in 'nodes' too",
                )
    await store.upsert_nodes(ctx.db, project_id, nodes)
    ids = await store.node_ids(ctx.db, project_id, [*nodes, *known])
    if len(ids) < len(nodes) + len(known):
        raise _deleted_meanwhile()
    # a repeated edge: the last weight wins
    edges = {
        (ids[src], ids[dst], e.kind): e.weight
        for (src, dst), e in zip(ends, body.edges, strict=True)
    }
    try:
        await store.upsert_edges(ctx.db, project_id, edges)
    except IntegrityError:
        raise _deleted_meanwhile() from None
    return [ids[ref] for ref in nodes], list(edges)


def _deleted_meanwhile() -> ApiError:
    return conflict(
        "a node this upload names was deleted while it was being written; send the upload "
        "again (it is an upsert: what was written already is not duplicated)"
    )


@router.get(
    "/projects/{project_id}/graph",
    summary="The project's knowledge graph",
    permission=Permission(Action.READ, on="project_id"),
)
async def get_graph(ctx: Ctx, project_id: int, query: GraphQuery) -> GraphOut:
    nodes_q = select(graph_nodes).where(
        graph_nodes.c.project_id == project_id, graph_nodes.c.id > query.after
    )
    if query.kind:
        nodes_q = nodes_q.where(graph_nodes.c.kind == query.kind)
    async with ctx.db.read() as conn:
        nodes = [
            NodeOut.model_validate(r._mapping)
            for r in await conn.execute(nodes_q.order_by(graph_nodes.c.id).limit(query.limit))
        ]
        node_ids = [n.id for n in nodes]
        edges: list[EdgeOut] = []
        for start in range(0, len(node_ids), 500):
            chunk = node_ids[start : start + 500]
            rows = await conn.execute(
                select(graph_edges).where(
                    graph_edges.c.project_id == project_id, graph_edges.c.src_id.in_(chunk)
                )
            )
            edges += [EdgeOut.model_validate(r._mapping) for r in rows]
    return GraphOut(nodes=nodes, edges=edges)


@router.delete(
    "/projects/{project_id}/graph/nodes/{node_id}",
    summary="Delete a node and its edges",
    permission=WRITE_GRAPH,
)
async def delete_node(ctx: Ctx, project_id: int, node_id: int) -> None:
    async with ctx.db.write() as tx:
        await tx.conn.execute(
            delete(graph_edges).where(
                graph_edges.c.project_id == project_id,
                (graph_edges.c.src_id == node_id) | (graph_edges.c.dst_id == node_id),
            )
        )
        result = await tx.conn.execute(
            delete(graph_nodes)
            .where(graph_nodes.c.project_id == project_id, graph_nodes.c.id == node_id)
            .returning(graph_nodes.c.id)
        )
        if result.first() is None:
            raise not_found(f"node {node_id}")
    await store.bump_version(ctx.db, project_id)
