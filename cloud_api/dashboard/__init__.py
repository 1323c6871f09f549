"""The web dashboard: server-rendered pages (Jinja2) over the REST API's own handlers, live
updates over SSE, and a little plain JavaScript; no build step, no third-party front-end code.

Layout: ``web`` (sessions, CSRF, errors, how views call the API), ``render`` (templates and
filters), ``diffs`` (a reported patch, coloured), ``moves`` (the board's wordless moves),
``views/`` (one module per page area),
``templates/`` and ``static/`` (one stylesheet, one script).
"""

from __future__ import annotations

from aiohttp.web import Application

from cloud_api.dashboard.render import HERE
from cloud_api.dashboard.views import (
    auth,
    backlog,
    board,
    bulk,
    graph,
    needs_you,
    plans,
    projects,
    tasks,
    workers,
)

VIEWS = [auth, projects, board, bulk, backlog, plans, tasks, workers, graph, needs_you]


def install(app: Application) -> None:
    for module in VIEWS:
        app.router.add_routes(module.routes)
    app.router.add_static("/static/", HERE / "static", name="dashboard.static")
