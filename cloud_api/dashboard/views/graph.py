"""The project's knowledge graph as a page: what the workers serving it uploaded."""

from __future__ import annotations

from aiohttp import web

from cloud_api.api import graph as graph_api
from cloud_api.dashboard.graph_summary import summarise
from cloud_api.dashboard.views.projects import project_nav
from cloud_api.dashboard.web import Visitor, page, respond
from cloud_api.schemas.graph import EdgeOut, NodeOut

routes = web.RouteTableDef()
PAGE = 20000  # nodes per read (the API's largest page)


@routes.get("/projects/{project_id}/graph", name="dashboard.graph")
@page
async def graph(visitor: Visitor) -> web.StreamResponse:
    project = await project_nav(visitor, "graph")
    nodes: list[NodeOut] = []
    edges: list[EdgeOut] = []
    after = 0
    while True:
        got = await visitor.call(
            graph_api.get_graph, query=graph_api.GraphQuery(limit=PAGE, after=after)
        )
        nodes += got.nodes
        edges += got.edges
        if len(got.nodes) < PAGE:
            break
        after = got.nodes[-1].id
    return respond(visitor, "graph.html", project=project, graph=summarise(nodes, edges))
