"""Projects (with the git remotes they serve) and their sprints."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError

from cloud_api.api.context import Ctx
from cloud_api.api.errors import field_problem
from cloud_api.api.paging import page
from cloud_api.api.policy import Permission
from cloud_api.api.routing import Router
from cloud_api.domain.permissions import Action, Role
from cloud_api.domain.states import Actor, TaskStatus
from cloud_api.schemas.common import Page, PageQuery
from cloud_api.schemas.projects import (
    ProjectCreate,
    ProjectOut,
    ProjectUpdate,
    SprintCreate,
    SprintOut,
    SprintQueued,
    SprintUpdate,
)
from cloud_api.store import tasks as task_store
from cloud_api.store.tables import memberships, projects, sprints, tasks

router = Router("projects")
WRITE_SPRINT = Permission(Action.WRITE_TASKS, on="sprint_id")


class ProjectQuery(PageQuery):
    org_id: int | None = None


@router.post(
    "/projects",
    summary="Create a project in an organisation (owners, members)",
    status=201,
    permission=Permission(Action.WRITE_TASKS, on="org_id"),
)
async def create_project(ctx: Ctx, body: ProjectCreate) -> ProjectOut:
    try:
        async with ctx.db.write() as tx:
            row = (
                await tx.conn.execute(
                    projects.insert()
                    .values(
                        org_id=body.org_id,
                        name=body.name,
                        slug=body.slug,
                        remotes=sorted(set(body.remotes)),
                    )
                    .returning(*projects.c)
                )
            ).one()
    except IntegrityError:
        raise field_problem(
            "body", "slug", f"'{body.slug}' is taken in this organisation", "choose another slug"
        ) from None
    return ProjectOut.model_validate({**row._mapping, "role": ctx.role})


@router.get("/projects", summary="Projects you can see", signed_in=True)
async def list_projects(ctx: Ctx, query: ProjectQuery) -> Page[ProjectOut]:
    me = ctx.me
    stmt: Any = select(projects, memberships.c.role).outerjoin(
        memberships,
        and_(memberships.c.org_id == projects.c.org_id, memberships.c.user_id == me.user_id),
    )
    if me.is_worker:
        stmt = select(projects).where(projects.c.id == me.project_id)
    elif not me.is_admin:
        stmt = stmt.where(memberships.c.role.is_not(None))
    if query.org_id is not None:
        stmt = stmt.where(projects.c.org_id == query.org_id)
    async with ctx.db.read() as conn:
        result = await page(conn, stmt, projects.c.id, query, ProjectOut)
    for item in result.items:
        item.role = Role.WORKER if me.is_worker else (Role.OWNER if me.is_admin else item.role)
    return result


async def _project(ctx: Ctx, project_id: int, role: Role) -> ProjectOut:
    async with ctx.db.read() as conn:
        row = (await conn.execute(select(projects).where(projects.c.id == project_id))).one()
    return ProjectOut.model_validate({**row._mapping, "role": role})


@router.get(
    "/projects/{project_id}",
    summary="One project",
    permission=Permission(Action.READ, on="project_id"),
)
async def get_project(ctx: Ctx, project_id: int) -> ProjectOut:
    return await _project(ctx, project_id, ctx.role)


@router.patch(
    "/projects/{project_id}",
    summary="Rename a project or change its remotes (owners)",
    permission=Permission(Action.MANAGE, on="project_id"),
)
async def update_project(ctx: Ctx, project_id: int, body: ProjectUpdate) -> ProjectOut:
    values = body.model_dump(exclude_unset=True, exclude_none=True)
    if "remotes" in values:
        values["remotes"] = sorted(set(values["remotes"]))
    if values:
        async with ctx.db.write() as tx:
            await tx.conn.execute(
                update(projects).where(projects.c.id == project_id).values(**values)
            )
    return await _project(ctx, project_id, ctx.role)


@router.post(
    "/projects/{project_id}/sprints",
    summary="Create a sprint",
    status=201,
    permission=Permission(Action.WRITE_TASKS, on="project_id"),
)
async def create_sprint(ctx: Ctx, project_id: int, body: SprintCreate) -> SprintOut:
    async with ctx.db.write() as tx:
        row = (
            await tx.conn.execute(
                sprints.insert()
                .values(project_id=project_id, **body.model_dump())
                .returning(*sprints.c)
            )
        ).one()
    return SprintOut.model_validate(row._mapping)


@router.get(
    "/projects/{project_id}/sprints",
    summary="Sprints of a project",
    permission=Permission(Action.READ, on="project_id"),
)
async def list_sprints(ctx: Ctx, project_id: int, query: PageQuery) -> Page[SprintOut]:
    async with ctx.db.read() as conn:
        return await page(
            conn,
            select(sprints).where(sprints.c.project_id == project_id),
            sprints.c.id,
            query,
            SprintOut,
        )


@router.get(
    "/sprints/{sprint_id}", summary="One sprint", permission=Permission(Action.READ, on="sprint_id")
)
async def get_sprint(ctx: Ctx, sprint_id: int) -> SprintOut:
    async with ctx.db.read() as conn:
        row = (await conn.execute(select(sprints).where(sprints.c.id == sprint_id))).one()
    return SprintOut.model_validate(row._mapping)


@router.patch("/sprints/{sprint_id}", summary="Edit a sprint", permission=WRITE_SPRINT)
async def update_sprint(ctx: Ctx, sprint_id: int, body: SprintUpdate) -> SprintOut:
    values = body.model_dump(exclude_unset=True)
    for required in ("name", "goal", "state"):
        if values.get(required, "") is None:
            raise field_problem("body", required, "cannot be null", "omit the field to keep it")
    async with ctx.db.write() as tx:
        stmt = update(sprints).where(sprints.c.id == sprint_id).returning(*sprints.c)
        row = (
            await tx.conn.execute(
                stmt.values(**values)
                if values
                else select(sprints).where(sprints.c.id == sprint_id)
            )
        ).one()
        if row.starts_on and row.ends_on and row.ends_on < row.starts_on:
            raise field_problem(
                "body", "ends_on", "is before starts_on", "swap them or move ends_on later"
            )
    return SprintOut.model_validate(row._mapping)


@router.post(
    "/sprints/{sprint_id}/queue",
    summary="Queue the sprint's backlog tasks for the agents (highest priority first)",
    permission=WRITE_SPRINT,
)
async def queue_sprint(ctx: Ctx, sprint_id: int) -> SprintQueued:
    queued: list[int] = []
    async with ctx.db.write() as tx:
        rows = (
            await tx.conn.execute(
                select(tasks)
                .where(tasks.c.sprint_id == sprint_id, tasks.c.status == TaskStatus.BACKLOG.value)
                .order_by(tasks.c.priority.desc(), tasks.c.id)
            )
        ).all()
        for row in rows:
            await task_store.transition(
                tx,
                row,
                TaskStatus.QUEUED,
                Actor.USER,
                actor_id=ctx.me.user_id,
                data={"comment": f"sprint {sprint_id} queued"},
            )
            queued.append(row.id)
    return SprintQueued(sprint_id=sprint_id, queued=queued)
