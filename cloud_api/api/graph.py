"""The knowledge graph of a project: metadata nodes and edges, never file contents."""

from __future__ import annotations

from pydantic import Field
from sqlalchemy import delete, select, tuple_

from cloud_api.api.context import Ctx
from cloud_api.api.errors import field_problem, not_found
from cloud_api.api.policy import Permission
from cloud_api.api.routing import Router
from cloud_api.domain.permissions import Action
from cloud_api.schemas.common import MAX_INT, Query
from cloud_api.schemas.graph import (
    EdgeOut,
    GraphOut,
    GraphUpsert,
    GraphUpsertOut,
    NodeKind,
    NodeOut,
)
from cloud_api.store.tables import graph_edges, graph_nodes
from cloud_api.store.types import db_now
from cloud_api.store.upsert import insert_for

router = Router("graph")
WRITE_GRAPH = Permission(Action.WRITE_GRAPH, on="project_id")


class GraphQuery(Query):
    kind: NodeKind | None = None
    limit: int = Field(5000, ge=1, le=20000)
    after: int = Field(0, ge=0, le=MAX_INT)


@router.post(
    "/projects/{project_id}/graph",
    summary="Upsert knowledge-graph nodes and edges",
    permission=WRITE_GRAPH,
)
async def upsert_graph(ctx: Ctx, project_id: int, body: GraphUpsert) -> GraphUpsertOut:
    refs = {(n.kind, n.key) for n in body.nodes}
    refs |= {(ref.kind, ref.key) for edge in body.edges for ref in (edge.src, edge.dst)}
    async with ctx.db.write() as tx:
        for node in body.nodes:
            stmt = insert_for(ctx.db.backend, graph_nodes).values(
                project_id=project_id, kind=node.kind, key=node.key, attrs=node.attrs
            )
            await tx.conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[
                        graph_nodes.c.project_id,
                        graph_nodes.c.kind,
                        graph_nodes.c.key,
                    ],
                    set_={"attrs": node.attrs, "updated_at": db_now()},
                )
            )
        ids: dict[tuple[str, str], int] = {}
        wanted = sorted(refs)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = await tx.conn.execute(
                select(graph_nodes.c.id, graph_nodes.c.kind, graph_nodes.c.key).where(
                    graph_nodes.c.project_id == project_id,
                    tuple_(graph_nodes.c.kind, graph_nodes.c.key).in_(chunk),
                )
            )
            ids.update({(r.kind, r.key): r.id for r in rows})
        for i, edge in enumerate(body.edges):
            src, dst = (edge.src.kind, edge.src.key), (edge.dst.kind, edge.dst.key)
            for end, ref in (("src", src), ("dst", dst)):
                if ref not in ids:
                    raise field_problem(
                        "body",
                        f"edges.{i}.{end}",
                        f"no node {ref[0]}:{ref[1]}",
                        "send the node in 'nodes' too",
                    )
            await tx.conn.execute(
                insert_for(ctx.db.backend, graph_edges)
                .values(project_id=project_id, src_id=ids[src], dst_id=ids[dst], kind=edge.kind)
                .on_conflict_do_nothing()
            )
    return GraphUpsertOut(nodes=len(body.nodes), edges=len(body.edges))


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
