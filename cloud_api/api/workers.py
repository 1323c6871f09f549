"""Worker endpoints (worker tokens): register, claim (long-poll), heartbeat, fenced status
updates, log chunks, artifacts, cancellation signals, follow-up tasks. Plus the people's view
of a project's workers."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from sqlalchemy import Row, select

from cloud_api.api.context import Ctx
from cloud_api.api.errors import ApiError, conflict, field_problem, not_found
from cloud_api.api.paging import page
from cloud_api.api.policy import Permission
from cloud_api.api.routing import Router
from cloud_api.api.tasks import task_out, transition_conflict
from cloud_api.dispatch import claims
from cloud_api.domain.permissions import Action
from cloud_api.domain.states import Actor, TaskStatus, TransitionError
from cloud_api.schemas.common import Page, PageQuery
from cloud_api.schemas.tasks import ArtifactOut, TaskOut
from cloud_api.schemas.workers import (
    ArtifactIn,
    CancelSignal,
    ClaimIn,
    ClaimOut,
    Fence,
    HeartbeatOut,
    LogIn,
    LogOut,
    ReviewIn,
    ReviewOut,
    SignalsOut,
    SignalsQuery,
    StatusIn,
    WorkerOut,
    WorkerRegister,
    WorkerTaskCreate,
)
from cloud_api.store import tasks as task_store
from cloud_api.store.db import Tx
from cloud_api.store.horizon import SETTLE_POLL, settled_rows
from cloud_api.store.tables import artifacts, blobs, projects, task_events, tasks, workers
from cloud_api.store.types import db_now
from cloud_api.store.upsert import insert_for

router = Router("workers")

#: Worker writes (logs, artifacts) are refused once the attempt is over for good.
_CLOSED = {TaskStatus.CANCELLED.value, TaskStatus.DONE.value}


def stale(exc: claims.StaleClaim) -> ApiError:
    row = exc.current
    return conflict(
        f"your claim is stale: task {row.id} is '{row.status}' at attempt {row.attempt};"
        " stop working on it",
        task_store.task_state(row),
    )


async def _fenced(tx: Tx, ctx: Ctx, task_id: int, fence: Fence) -> Row[Any]:
    try:
        row = await claims.fenced(tx, ctx.me.worker(), task_id, fence.attempt, fence.claim_token)
    except claims.StaleClaim as exc:
        raise stale(exc) from None
    if row is None:
        raise not_found(f"task {task_id}")
    return row


@router.post(
    "/worker/register",
    summary="Register (or update) the worker this token names",
    worker_only=True,
)
async def register(ctx: Ctx, body: WorkerRegister) -> WorkerOut:
    me = ctx.me
    assert me.project_id is not None and me.worker_name is not None
    async with ctx.db.read() as conn:
        remotes = (
            await conn.execute(select(projects.c.remotes).where(projects.c.id == me.project_id))
        ).scalar_one()
    if remotes and body.repositories and not set(body.repositories) & set(remotes):
        raise field_problem(
            "body",
            "repositories",
            "none of these repositories belongs to the project",
            f"serve one of: {', '.join(remotes)}",
        )
    values = {
        "host": body.host,
        "capacity": body.capacity,
        "repositories": body.repositories,
        "version": body.version,
    }
    async with ctx.db.write() as tx:
        stmt = insert_for(ctx.db.backend, workers).values(
            project_id=me.project_id, name=me.worker_name, **values
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[workers.c.project_id, workers.c.name],
            set_={**values, "last_seen_at": db_now()},
        )
        await tx.conn.execute(stmt)
        row = (
            await tx.conn.execute(
                select(workers).where(
                    workers.c.project_id == me.project_id, workers.c.name == me.worker_name
                )
            )
        ).one()
    return WorkerOut.model_validate(row._mapping)


@router.post(
    "/worker/claim",
    summary="Claim the next task; with wait_seconds, long-poll until one is queued",
    worker_only=True,
)
async def claim(ctx: Ctx, body: ClaimIn) -> ClaimOut | None:
    worker = ctx.me.worker()
    lease = ctx.services.settings.lease_seconds
    loop = asyncio.get_running_loop()
    deadline = loop.time() + body.wait_seconds
    # Register before looking, so a task queued between the look and the wait still wakes us.
    # A queued task wakes one waiter that can take it; leaving without taking it (hung up, or
    # took another task) passes its wake-up on (dispatch.work_waiters).
    waiting = ctx.services.metrics.waiting
    hub = ctx.services.hub
    with hub.work.waiting(
        worker.project_id, worker.repositories, body.task_id, body.exclude
    ) as waiter:
        while True:
            touch = ctx.services.should_touch(worker.id)
            waiter.begin_check()
            row = await claims.claim(
                ctx.db, worker, lease, touch=touch, task_id=body.task_id, exclude=body.exclude
            )
            waiter.checked(row.id if row is not None else None)
            if row is not None:
                ctx.services.metrics.claims.inc()
                return ClaimOut(
                    task=task_out(row),
                    attempt=row.attempt,
                    claim_token=row.claim_token,
                    lease_expires_at=row.lease_expires_at,
                    lease_seconds=lease,
                )
            remaining = deadline - loop.time()
            if remaining <= 0 or ctx.gone():
                return None  # (gone: a request read after shutdown began was never woken)
            # Nothing to take: what this attempt wrote (the worker's last-seen) is not the
            # answer, so it must not hold an Idempotency-Key's transaction while waiting.
            await ctx.db.checkpoint()
            with waiting.track_inprogress():
                await waiter.wait(remaining)
            if ctx.gone():
                return None  # do not lease a task nobody will receive


@router.post(
    "/worker/tasks/{task_id}/heartbeat",
    summary="Extend the lease; the answer says whether to stop",
    worker_only=True,
)
async def heartbeat(ctx: Ctx, task_id: int, body: Fence) -> HeartbeatOut:
    try:
        row = await claims.heartbeat(
            ctx.db,
            ctx.me.worker(),
            task_id,
            body.attempt,
            body.claim_token,
            ctx.services.settings.lease_seconds,
        )
    except claims.StaleClaim as exc:
        raise stale(exc) from None
    if row is None:
        raise not_found(f"task {task_id}")
    return HeartbeatOut(
        status=row.status,
        cancel=row.status == TaskStatus.CANCELLED.value,
        lease_expires_at=row.lease_expires_at,
    )


@router.post(
    "/worker/tasks/{task_id}/status",
    summary="Report a status change of the attempt you hold",
    worker_only=True,
)
async def report_status(ctx: Ctx, task_id: int, body: StatusIn) -> TaskOut:
    worker = ctx.me.worker()
    target = TaskStatus(body.status)
    if target is TaskStatus.NEEDS_INPUT and not body.question:
        raise field_problem(
            "body", "question", "needs_input requires the question", "send the agent's question"
        )
    async with ctx.db.write() as tx:
        row = await _fenced(tx, ctx, task_id, body)
        if row.status == target.value:
            # A retry of a report that took effect (its answer was lost): the attempt and
            # claim token still hold the task, so it is success, not "cannot move".
            return task_out(row)
        values: dict[str, Any] = {}
        data: dict[str, Any] = {}
        if body.summary is not None:
            values["summary"] = body.summary
            data["summary"] = body.summary
        if body.reason is not None or target is TaskStatus.FAILED:
            values["status_reason"] = body.reason or "failed by the worker"
            data["reason"] = values["status_reason"]
        if body.usage is not None:
            data["usage"] = body.usage.model_dump()
        if target is TaskStatus.NEEDS_INPUT:
            values["status_reason"] = body.question
            data["question"] = body.question
        try:
            updated = await task_store.transition(
                tx,
                row,
                target,
                Actor.WORKER,
                actor_id=worker.id,
                values=values,
                data=data,
                fence={"attempt": body.attempt, "claim_token": body.claim_token},
                lease_seconds=ctx.services.settings.lease_seconds,
            )
        except (TransitionError, task_store.StaleVersion) as exc:
            raise transition_conflict(exc, row) from None
    return task_out(updated)


def _open(row: Row[Any]) -> None:
    if row.status in _CLOSED:
        raise conflict(
            f"task {row.id} is '{row.status}': stop working on it", task_store.task_state(row)
        )


@router.post(
    "/worker/tasks/{task_id}/logs",
    summary="Append an agent log chunk (seq makes retries safe)",
    worker_only=True,
)
async def append_log(ctx: Ctx, task_id: int, body: LogIn) -> LogOut:
    async with ctx.db.write() as tx:
        row = await _fenced(tx, ctx, task_id, body)
        _open(row)
        stmt = (
            insert_for(ctx.db.backend, task_events)
            .values(
                task_id=row.id,
                project_id=row.project_id,
                kind="log",
                actor=Actor.WORKER.value,
                actor_id=row.lease_owner_id,
                attempt=body.attempt,
                seq=body.seq,
                data={"text": body.text, "stream": body.stream},
            )
            .on_conflict_do_nothing()
            .returning(task_events.c.id)
        )
        inserted = (await tx.conn.execute(stmt)).scalar()
        if inserted is not None:
            tx.notify(f"task:{row.id}", f"project:{row.project_id}")
            return LogOut(event_id=inserted, duplicate=False)
        existing = (
            await tx.conn.execute(
                select(task_events.c.id).where(
                    task_events.c.task_id == row.id,
                    task_events.c.attempt == body.attempt,
                    task_events.c.kind == "log",
                    task_events.c.seq == body.seq,
                )
            )
        ).scalar_one()
        return LogOut(event_id=existing, duplicate=True)


@router.post(
    "/worker/tasks/{task_id}/artifacts",
    summary="Upload an artifact (content-addressed by sha256)",
    status=201,
    worker_only=True,
)
async def upload_artifact(ctx: Ctx, task_id: int, body: ArtifactIn) -> ArtifactOut:
    content = body.content.encode()
    digest = hashlib.sha256(content).hexdigest()
    async with ctx.db.write() as tx:
        row = await _fenced(tx, ctx, task_id, body)
        _open(row)
        await tx.conn.execute(
            insert_for(ctx.db.backend, blobs)
            .values(sha256=digest, size=len(content), content=content)
            .on_conflict_do_nothing()
        )
        same = (
            await tx.conn.execute(
                select(artifacts).where(
                    artifacts.c.task_id == row.id,
                    artifacts.c.attempt == body.attempt,
                    artifacts.c.kind == body.kind,
                    artifacts.c.sha256 == digest,
                )
            )
        ).first()
        if same is not None:
            return ArtifactOut.model_validate(same._mapping)
        artifact = (
            await tx.conn.execute(
                artifacts.insert()
                .values(
                    task_id=row.id,
                    project_id=row.project_id,
                    attempt=body.attempt,
                    kind=body.kind,
                    media_type=body.media_type,
                    sha256=digest,
                    size=len(content),
                )
                .returning(*artifacts.c)
            )
        ).one()
        await task_store.add_event(
            tx,
            row,
            "artifact",
            Actor.WORKER,
            actor_id=row.lease_owner_id,
            data={
                "artifact_id": artifact.id,
                "kind": body.kind,
                "sha256": digest,
                "size": len(content),
            },
        )
    return ArtifactOut.model_validate(artifact._mapping)


@router.post(
    "/worker/tasks/{task_id}/review",
    summary="Report a person's review decisions and comments (shown on the timeline)",
    status=201,
    worker_only=True,
)
async def report_review(ctx: Ctx, task_id: int, body: ReviewIn) -> ReviewOut:
    async with ctx.db.write() as tx:
        row = await _fenced(tx, ctx, task_id, body)
        _open(row)
        event_id = await task_store.add_event(
            tx,
            row,
            "review",
            Actor.WORKER,
            actor_id=row.lease_owner_id,
            attempt=body.attempt,
            data={"files": [file.model_dump() for file in body.files]},
        )
    return ReviewOut(event_id=event_id)


@router.get(
    "/worker/signals",
    summary="Cancellations of tasks this worker holds; long-polls with ?wait=",
    worker_only=True,
)
async def signals(ctx: Ctx, query: SignalsQuery) -> SignalsOut:
    worker = ctx.me.worker()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + query.wait
    stmt = (
        select(task_events.c.id, task_events.c.task_id, task_events.c.attempt)
        .where(
            task_events.c.worker_id == worker.id,
            task_events.c.kind == "status",
            task_events.c.to_status == TaskStatus.CANCELLED.value,
            task_events.c.id > query.after,
        )
        .order_by(task_events.c.id)
        .limit(100)
    )
    with ctx.services.hub.subscribe([f"worker:{worker.id}"]) as sub:
        while True:
            async with ctx.db.read() as conn:
                # The cursor stops at the settled horizon: a cancellation that commits later
                # with a smaller id is not passed over (cloud_api.store.horizon).
                horizon = await ctx.db.horizon.settled(conn)
                rows, held = settled_rows((await conn.execute(stmt)).all(), horizon)
            remaining = deadline - loop.time()
            if rows or remaining <= 0 or ctx.gone():
                return SignalsOut(
                    cancellations=[
                        CancelSignal(task_id=r.task_id, attempt=r.attempt, event_id=r.id)
                        for r in rows
                    ],
                    cursor=rows[-1].id if rows else query.after,
                )
            await sub.wait(min(remaining, SETTLE_POLL) if held else remaining)


@router.post(
    "/worker/tasks",
    summary="Propose a follow-up task (lands in the backlog)",
    status=201,
    worker_only=True,
)
async def create_follow_up(ctx: Ctx, body: WorkerTaskCreate) -> TaskOut:
    worker = ctx.me.worker()
    async with ctx.db.write() as tx:
        row = await task_store.create(
            tx,
            worker.project_id,
            Actor.WORKER,
            worker.id,
            data={"parent_task_id": body.parent_task_id} if body.parent_task_id else None,
            title=body.title,
            description=body.description,
            status=TaskStatus.BACKLOG.value,
        )
    return task_out(row)


@router.get(
    "/projects/{project_id}/workers",
    summary="Workers serving a project, with what they hold",
    permission=Permission(Action.READ, on="project_id"),
)
async def list_workers(ctx: Ctx, project_id: int, query: PageQuery) -> Page[WorkerOut]:
    async with ctx.db.read() as conn:
        result = await page(
            conn,
            select(workers).where(workers.c.project_id == project_id),
            workers.c.id,
            query,
            WorkerOut,
        )
        ids = [w.id for w in result.items]
        held = await conn.execute(
            select(tasks.c.id, tasks.c.lease_owner_id).where(
                tasks.c.lease_owner_id.in_(ids),
                tasks.c.status.in_([TaskStatus.CLAIMED.value, TaskStatus.RUNNING.value]),
            )
        )
        by_worker: dict[int, list[int]] = {}
        for task_id, owner in held:
            by_worker.setdefault(owner, []).append(task_id)
    for item in result.items:
        item.current_task_ids = sorted(by_worker.get(item.id, []))
    return result
