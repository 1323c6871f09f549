"""Workers serving a project: online or not, what they hold, last heartbeat, capacity."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from cloud_api.api import workers as workers_api
from cloud_api.dashboard.views.projects import project_nav
from cloud_api.dashboard.web import Visitor, page, respond
from cloud_api.schemas.common import PageQuery

routes = web.RouteTableDef()


@routes.get("/projects/{project_id}/workers", name="dashboard.workers")
@page
async def workers(visitor: Visitor) -> web.StreamResponse:
    project = await project_nav(visitor, "workers")
    found = await visitor.every(workers_api.list_workers, PageQuery)
    # A worker that missed a whole lease's worth of heartbeats has lost its tasks: offline.
    window = visitor.ctx.services.settings.lease_seconds
    now = datetime.now(UTC)
    online = {w.id: (now - w.last_seen_at).total_seconds() <= window for w in found}
    found.sort(key=lambda w: (not online[w.id], w.name))
    return respond(visitor, "workers.html", project=project, workers=found, online=online, now=now)
