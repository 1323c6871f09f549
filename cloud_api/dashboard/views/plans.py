"""``locus plan`` from the dashboard: ask the project's workers for a planning run (a goal),
see the proposals a worker reported, and accept some or all into the backlog."""

from __future__ import annotations

from aiohttp import web

from cloud_api.api import plans as plans_api
from cloud_api.dashboard.views.projects import project_nav
from cloud_api.dashboard.web import Visitor, action, done, page, respond
from cloud_api.schemas.common import PageQuery
from cloud_api.schemas.plans import PlanAccept, PlanCreate

routes = web.RouteTableDef()


@routes.get("/projects/{project_id}/plans", name="dashboard.plans")
@page
async def plans(visitor: Visitor) -> web.StreamResponse:
    project = await project_nav(visitor, "plans")
    requests = await visitor.every(plans_api.list_plans, PageQuery)
    return respond(visitor, "plans.html", project=project, requests=requests[::-1])


@routes.post("/projects/{project_id}/plans")
@action
async def ask(visitor: Visitor) -> web.StreamResponse:
    body = visitor.body(PlanCreate, goal=visitor.field("goal"))
    asked = await visitor.call(plans_api.create_plan, body=body)
    return done(
        visitor,
        f"/projects/{asked.project_id}/plans",
        f"Planning request {asked.id} sent: a worker of the project reads the code and"
        " proposes tasks (reload to see them).",
    )


@routes.post("/projects/{project_id}/plans/{plan_id}/accept")
@action
async def accept(visitor: Visitor) -> web.StreamResponse:
    assert visitor.form is not None
    numbers = [n for n in visitor.form.getall("numbers", []) if isinstance(n, str)]
    accepted = await visitor.call(
        plans_api.accept_plan, body=visitor.body(PlanAccept, numbers=numbers)
    )
    count = len(accepted.created)
    message = (
        f"{count} task{'s' if count != 1 else ''} added to the backlog."
        if count
        else "Already in the backlog: nothing new was created."
    )
    return done(visitor, f"/projects/{accepted.plan.project_id}/plans", message)
