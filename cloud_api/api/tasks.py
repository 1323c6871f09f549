"""Tasks: create, list, edit, the user's state actions, the timeline (list and live SSE),
and artifacts. Every status change goes through cloud_api.store.tasks.transition."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field
from sqlalchemy import Row, Select, func, select, update

from cloud_api.api.context import Ctx
from cloud_api.api.errors import ApiError, conflict, field_problem, not_found
from cloud_api.api.paging import page
from cloud_api.api.people import check_people
from cloud_api.api.policy import Permission
from cloud_api.api.routing import Router
from cloud_api.api.sse import stream_events
from cloud_api.domain.permissions import Action
from cloud_api.domain.states import (
    ActionError,
    Actor,
    TaskStatus,
    TransitionError,
    UserAction,
    action_target,
)
from cloud_api.schemas.common import MAX_INT, Page, PageQuery, Query
from cloud_api.schemas.tasks import (
    AnswerIn,
    ArtifactContent,
    ArtifactOut,
    CommentIn,
    EventOut,
    EventQuery,
    FeedbackIn,
    TaskAction,
    TaskCreate,
    TaskOut,
    TaskQuery,
    TaskUpdate,
)
from cloud_api.store import tasks as task_store
from cloud_api.store.tables import artifacts, blobs, sprints, task_events, tasks
from cloud_api.store.task_search import matching
from cloud_api.store.types import db_now

router = Router("tasks")
#: Most task routes check one of these on the task's project.
READ_TASK = Permission(Action.READ, on="task_id")
WRITE_TASK = Permission(Action.WRITE_TASKS, on="task_id")


class StreamQuery(Query):
    after: int = Field(
        0, ge=0, le=MAX_INT, description="replay events after this id (or send Last-Event-ID)"
    )


def task_out(row: Row[Any]) -> TaskOut:
    return TaskOut.model_validate(row._mapping)


async def _check_sprint(ctx: Ctx, project_id: int, sprint_id: int | None) -> None:
    if sprint_id is None:
        return
    async with ctx.db.read() as conn:
        found = (
            await conn.execute(
                select(sprints.c.id).where(
                    sprints.c.id == sprint_id, sprints.c.project_id == project_id
                )
            )
        ).first()
    if found is None:
        raise field_problem(
            "body",
            "sprint_id",
            "no such sprint in this project",
            "list sprints: GET /projects/{id}/sprints",
        )


def transition_conflict(
    exc: ActionError | TransitionError | task_store.StaleVersion, row: Row[Any] | None
) -> ApiError:
    if isinstance(exc, ActionError | TransitionError):
        return conflict(str(exc), task_store.task_state(row) if row is not None else None)
    current = exc.current
    return conflict(
        "the task changed meanwhile; reload it and try again",
        task_store.task_state(current) if current is not None else None,
    )


@router.post(
    "/projects/{project_id}/tasks",
    summary="Create a task",
    status=201,
    permission=Permission(Action.WRITE_TASKS, on="project_id"),
)
async def create_task(ctx: Ctx, project_id: int, body: TaskCreate) -> TaskOut:
    await _check_sprint(ctx, project_id, body.sprint_id)
    values = body.model_dump()
    await check_people(ctx, project_id, values)
    async with ctx.db.write() as tx:
        row = await task_store.create(
            tx, project_id, Actor.USER, ctx.me.user_id, created_by=ctx.me.user_id, **values
        )
    return task_out(row)


def select_tasks(project_id: int, query: TaskQuery) -> Select[Any]:
    """The filters of the task list (labels aside: a JSON list, matched in Python). The
    dashboard's board runs the same statement, unpaged."""
    stmt = select(tasks).where(tasks.c.project_id == project_id)
    if query.status is not None:
        stmt = stmt.where(tasks.c.status == query.status.value)
    if query.sprint_id is not None:
        stmt = stmt.where(tasks.c.sprint_id == query.sprint_id)
    if query.worker_id is not None:
        stmt = stmt.where(tasks.c.lease_owner_id == query.worker_id)
    if query.assignee_id is not None:
        stmt = stmt.where(tasks.c.assignee_id == query.assignee_id)
    if query.q is not None:
        stmt = stmt.where(matching(query.q))
    return stmt


@router.get(
    "/projects/{project_id}/tasks",
    summary="Tasks of a project, filtered",
    permission=Permission(Action.READ, on="project_id"),
)
async def list_tasks(ctx: Ctx, project_id: int, query: TaskQuery) -> Page[TaskOut]:
    stmt = select_tasks(project_id, query)
    async with ctx.db.read() as conn:
        if query.label is None:
            return await page(conn, stmt, tasks.c.id, query, TaskOut)
        # Labels are a JSON list; filter in Python over a bounded scan to stay portable.
        found: list[TaskOut] = []
        after = query.after
        while len(found) <= query.limit:
            rows = (
                await conn.execute(stmt.where(tasks.c.id > after).order_by(tasks.c.id).limit(500))
            ).all()
            found += [task_out(r) for r in rows if query.label in (r.labels or [])]
            if len(rows) < 500:
                break
            after = rows[-1].id
        items = found[: query.limit]
        more = len(found) > query.limit
        return Page[TaskOut](items=items, next_cursor=items[-1].id if more else None)


@router.get("/tasks/{task_id}", summary="One task", permission=READ_TASK)
async def get_task(ctx: Ctx, task_id: int) -> TaskOut:
    async with ctx.db.read() as conn:
        row = await task_store.load(conn, task_id)
    if row is None:
        raise not_found(f"task {task_id}")
    return task_out(row)


@router.patch(
    "/tasks/{task_id}", summary="Edit a task's fields (not its status)", permission=WRITE_TASK
)
async def update_task(ctx: Ctx, task_id: int, body: TaskUpdate) -> TaskOut:
    project_id = ctx.project_id
    values = body.model_dump(exclude_unset=True, exclude={"version"})
    for required in ("title", "description", "priority", "labels"):
        if required in values and values[required] is None:
            raise field_problem("body", required, "cannot be null", "omit the field to keep it")
    await _check_sprint(ctx, project_id, values.get("sprint_id"))
    await check_people(ctx, project_id, values)
    async with ctx.db.write() as tx:
        row = await task_store.load(tx, task_id)
        assert row is not None
        expected = body.version or row.version
        if row.version != expected:
            raise conflict(
                "the task changed since you read it; reload and retry", task_store.task_state(row)
            )
        if not values:
            return task_out(row)
        updated = (
            await tx.conn.execute(
                update(tasks)
                .where(tasks.c.id == task_id, tasks.c.version == expected)
                .values(version=tasks.c.version + 1, updated_at=db_now(), **values)
                .returning(*tasks.c)
            )
        ).first()
        if updated is None:
            raise conflict("the task changed meanwhile; reload and retry")
        await task_store.add_event(
            tx,
            updated,
            "updated",
            Actor.USER,
            actor_id=ctx.me.user_id,
            # The new values too (not the description: it can be long), so a timeline can
            # say "moved it to sprint 3", not "edited sprint_id".
            data={
                "fields": sorted(values),
                "to": {k: v for k, v in values.items() if k != "description"},
            },
        )
        if updated.status == TaskStatus.QUEUED.value:
            # Its repository may have changed (other waiters can take it now), and on
            # PostgreSQL claims passed over the row while this transaction held it.
            task_store.notify_claimable(tx, updated)
    return task_out(updated)


async def user_transition(
    ctx: Ctx,
    task_id: int,
    action: UserAction,
    version: int | None,
    *,
    values: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> TaskOut:
    async with ctx.db.write() as tx:
        row = await task_store.load(tx, task_id)
        assert row is not None
        if version is not None and row.version != version:
            raise conflict(
                f"the task is at version {row.version}, not {version}; reload and retry",
                task_store.task_state(row),
            )
        try:
            target = action_target(action, TaskStatus(row.status))
            updated = await task_store.transition(
                tx, row, target, Actor.USER, actor_id=ctx.me.user_id, values=values, data=data
            )
        except (ActionError, TransitionError, task_store.StaleVersion) as exc:
            raise transition_conflict(exc, row) from None
    return task_out(updated)


def _comment(body: TaskAction) -> dict[str, Any] | None:
    return {"comment": body.comment} if body.comment else None


@router.post(
    "/tasks/{task_id}/queue",
    summary="backlog → queued: make the task claimable",
    permission=WRITE_TASK,
)
async def queue_task(ctx: Ctx, task_id: int, body: TaskAction) -> TaskOut:
    return await user_transition(ctx, task_id, UserAction.QUEUE, body.version, data=_comment(body))


@router.post(
    "/tasks/{task_id}/cancel",
    summary="Cancel (any non-terminal state); a running agent is told at once",
    permission=WRITE_TASK,
)
async def cancel_task(ctx: Ctx, task_id: int, body: TaskAction) -> TaskOut:
    return await user_transition(ctx, task_id, UserAction.CANCEL, body.version, data=_comment(body))


@router.post("/tasks/{task_id}/retry", summary="failed | cancelled → queued", permission=WRITE_TASK)
async def retry_task(ctx: Ctx, task_id: int, body: TaskAction) -> TaskOut:
    return await user_transition(
        ctx,
        task_id,
        UserAction.RETRY,
        body.version,
        values={"status_reason": None},
        data=_comment(body),
    )


@router.post("/tasks/{task_id}/approve", summary="verification → done", permission=WRITE_TASK)
async def approve_task(ctx: Ctx, task_id: int, body: TaskAction) -> TaskOut:
    return await user_transition(
        ctx, task_id, UserAction.APPROVE, body.version, data=_comment(body)
    )


@router.post(
    "/tasks/{task_id}/request-changes",
    summary="verification → queued, handing the feedback to the next attempt",
    permission=WRITE_TASK,
)
async def request_changes(ctx: Ctx, task_id: int, body: FeedbackIn) -> TaskOut:
    return await user_transition(
        ctx,
        task_id,
        UserAction.REQUEST_CHANGES,
        body.version,
        values={"feedback": body.feedback},
        data={"feedback": body.feedback},
    )


@router.post(
    "/tasks/{task_id}/answer",
    summary="needs_input → queued, with the answer for the agent",
    permission=WRITE_TASK,
)
async def answer_task(ctx: Ctx, task_id: int, body: AnswerIn) -> TaskOut:
    return await user_transition(
        ctx,
        task_id,
        UserAction.ANSWER,
        body.version,
        values={"feedback": body.answer},
        data={"answer": body.answer},
    )


@router.post(
    "/tasks/{task_id}/comments",
    summary="Add a comment to the timeline",
    status=201,
    permission=WRITE_TASK,
)
async def add_comment(ctx: Ctx, task_id: int, body: CommentIn) -> EventOut:
    async with ctx.db.write() as tx:
        row = await task_store.load(tx, task_id)
        assert row is not None
        event_id = await task_store.add_event(
            tx, row, "comment", Actor.USER, actor_id=ctx.me.user_id, data={"body": body.body}
        )
        event = (
            await tx.conn.execute(select(task_events).where(task_events.c.id == event_id))
        ).one()
    return EventOut.model_validate(event._mapping)


@router.get(
    "/tasks/{task_id}/events", summary="The task's timeline, oldest first", permission=READ_TASK
)
async def list_events(ctx: Ctx, task_id: int, query: EventQuery) -> Page[EventOut]:
    stmt = select(task_events).where(task_events.c.task_id == task_id)
    if query.kind:
        stmt = stmt.where(task_events.c.kind == query.kind)
    # Pages end at the settled horizon, so ?after= polling never skips an event that commits
    # later (cloud_api.store.horizon).
    newest = select(func.max(task_events.c.id)).where(task_events.c.task_id == task_id)
    horizon = await ctx.db.horizon.covering(ctx.db.read, newest)
    if horizon is not None:
        stmt = stmt.where(task_events.c.id <= horizon)
    async with ctx.db.read() as conn:
        return await page(conn, stmt, task_events.c.id, query, EventOut)


@router.get(
    "/tasks/{task_id}/events/stream",
    summary="The task's timeline as server-sent events",
    permission=READ_TASK,
)
async def stream_task_events(ctx: Ctx, task_id: int, query: StreamQuery) -> web.StreamResponse:
    return await stream_events(
        ctx,
        task_events.c.task_id == task_id,
        f"task:{task_id}",
        query.after,
    )


@router.get(
    "/projects/{project_id}/events/stream",
    summary="Every task event of a project, as SSE",
    permission=Permission(Action.READ, on="project_id"),
)
async def stream_project_events(
    ctx: Ctx, project_id: int, query: StreamQuery
) -> web.StreamResponse:
    return await stream_events(
        ctx,
        task_events.c.project_id == project_id,
        f"project:{project_id}",
        query.after,
    )


@router.get(
    "/tasks/{task_id}/artifacts",
    summary="Artifacts of a task (patch, summary, evidence…)",
    permission=READ_TASK,
)
async def list_artifacts(ctx: Ctx, task_id: int, query: PageQuery) -> Page[ArtifactOut]:
    async with ctx.db.read() as conn:
        return await page(
            conn,
            select(artifacts).where(artifacts.c.task_id == task_id),
            artifacts.c.id,
            query,
            ArtifactOut,
        )


@router.get(
    "/tasks/{task_id}/artifacts/{artifact_id}",
    summary="One artifact with its content",
    permission=READ_TASK,
)
async def get_artifact(ctx: Ctx, task_id: int, artifact_id: int) -> ArtifactContent:
    async with ctx.db.read() as conn:
        row = (
            await conn.execute(
                select(artifacts, blobs.c.content)
                .join(blobs, blobs.c.sha256 == artifacts.c.sha256)
                .where(artifacts.c.id == artifact_id, artifacts.c.task_id == task_id)
            )
        ).first()
    if row is None:
        raise not_found(f"artifact {artifact_id}")
    return ArtifactContent.model_validate(
        {**row._mapping, "content": row.content.decode("utf-8", "replace")}
    )
