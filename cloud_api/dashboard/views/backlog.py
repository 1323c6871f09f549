"""Backlog and sprints: new tasks, ordering by priority, planning tasks into a sprint,
starting and closing sprints, and queueing a sprint's tasks for the agents."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloud_api.api import projects as projects_api
from cloud_api.api.tasks import select_tasks
from cloud_api.dashboard.views.projects import project_nav
from cloud_api.dashboard.web import Visitor, action, done, page, respond
from cloud_api.domain.states import TERMINAL, TaskStatus
from cloud_api.schemas.common import PageQuery
from cloud_api.schemas.projects import SprintCreate, SprintUpdate
from cloud_api.schemas.tasks import TaskQuery
from cloud_api.store.tables import tasks

routes = web.RouteTableDef()


@routes.get("/projects/{project_id}/backlog", name="dashboard.backlog")
@page
async def backlog(visitor: Visitor) -> web.StreamResponse:
    project = await project_nav(visitor, "backlog")
    sprints = await visitor.every(projects_api.list_sprints, PageQuery)
    # The task list's own statement (as the board's), open tasks only, by priority.
    stmt = (
        select_tasks(project.id, TaskQuery())
        .where(tasks.c.status.not_in([s.value for s in TERMINAL]))
        .order_by(tasks.c.priority.desc(), tasks.c.id)
    )
    async with visitor.ctx.db.read() as conn:
        rows = (await conn.execute(stmt)).all()
    in_sprint: dict[int | None, list[Any]] = {None: []}
    for sprint in sprints:
        in_sprint[sprint.id] = []
    for row in rows:
        in_sprint.setdefault(row.sprint_id, []).append(row)
    return respond(
        visitor,
        "backlog.html",
        project=project,
        sprints=[s for s in sprints if s.state != "closed"],
        closed=[s for s in sprints if s.state == "closed"],
        in_sprint=in_sprint,
        backlog_status=TaskStatus.BACKLOG.value,
    )


@routes.post("/projects/{project_id}/sprints")
@action
async def create_sprint(visitor: Visitor) -> web.StreamResponse:
    f = visitor.field
    values = {"name": f("name"), "goal": f("goal")}
    values |= {k: f(k) for k in ("starts_on", "ends_on") if f(k)}
    sprint = await visitor.call(
        projects_api.create_sprint, body=visitor.body(SprintCreate, **values)
    )
    return done(visitor, f"/projects/{sprint.project_id}/backlog", f"Sprint {sprint.name} planned.")


@routes.post("/sprints/{sprint_id}")
@action
async def edit_sprint(visitor: Visitor) -> web.StreamResponse:
    """Start (→ active), close (→ closed), or edit; only the fields the form sends change."""
    assert visitor.form is not None
    values: dict[str, str | None] = {
        k: visitor.field(k) for k in ("name", "goal", "state") if k in visitor.form
    }
    values |= {k: visitor.field(k) or None for k in ("starts_on", "ends_on") if k in visitor.form}
    sprint = await visitor.call(
        projects_api.update_sprint, body=visitor.body(SprintUpdate, **values)
    )
    return done(
        visitor, f"/projects/{sprint.project_id}/backlog", f"Sprint {sprint.name}: {sprint.state}."
    )


@routes.post("/sprints/{sprint_id}/queue")
@action
async def queue_sprint(visitor: Visitor) -> web.StreamResponse:
    result = await visitor.call(projects_api.queue_sprint)
    sprint = await visitor.call(projects_api.get_sprint)
    count = len(result.queued)
    message = f"{count} task{'s' if count != 1 else ''} of {sprint.name} queued for the agents."
    return done(visitor, f"/projects/{sprint.project_id}/backlog", message)
