"""Planning requests (``locus plan`` from the dashboard): people with work permission ask, a
worker of the project claims one (fenced, as a task's claim) and reports the proposals of the
planning run it ran locally, people accept some or all into the backlog. The lifecycle is
the table in :mod:`cloud_api.domain.plans`, checked on every write here."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from sqlalchemy import Row, Select, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud_api.api.context import Ctx
from cloud_api.api.errors import conflict, field_problem, not_found
from cloud_api.api.paging import page
from cloud_api.api.policy import Permission
from cloud_api.api.routing import Router
from cloud_api.api.tasks import task_out
from cloud_api.dispatch import claims
from cloud_api.domain import plans as rules
from cloud_api.domain.permissions import Action
from cloud_api.domain.plans import Mover, PlanStatus
from cloud_api.domain.priorities import LEVELS
from cloud_api.domain.states import Actor, TaskStatus
from cloud_api.schemas.common import Page, PageQuery
from cloud_api.schemas.plans import (
    PlanAccept,
    PlanAccepted,
    PlanClaimIn,
    PlanClaimOut,
    PlanCreate,
    PlanOut,
    PlanReport,
)
from cloud_api.store import tasks as task_store
from cloud_api.store.sqlite_writer import ThreadConnection
from cloud_api.store.tables import plan_requests
from cloud_api.store.types import db_now

router = Router("plans")

#: Accepted proposals land in the backlog at the lowest priority, as ``locus plan``'s do.
PRIORITY = LEVELS[-1].value


def topic(project_id: int) -> str:
    """What a new request wakes: the workers of its project waiting to claim one."""
    return f"plans:{project_id}"


def plan_out(row: Row[Any]) -> PlanOut:
    return PlanOut.model_validate(row._mapping)


async def _load(
    conn: AsyncConnection | ThreadConnection, project_id: int, plan_id: int, *, lock: bool = False
) -> Row[Any]:
    """The request (404 unless in the project); ``lock``: held until the write commits, so
    two acceptances or reports of one request take turns (PostgreSQL; SQLite's one writer
    serialises them anyway)."""
    stmt = select(plan_requests).where(
        plan_requests.c.id == plan_id, plan_requests.c.project_id == project_id
    )
    if lock:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).first()
    if row is None:
        raise not_found(f"planning request {plan_id}")
    return row


@router.post(
    "/projects/{project_id}/plans",
    summary="Ask the project's workers for a planning run (they propose tasks)",
    status=201,
    permission=Permission(Action.WRITE_TASKS, on="project_id"),
)
async def create_plan(ctx: Ctx, project_id: int, body: PlanCreate) -> PlanOut:
    async with ctx.db.write() as tx:
        row = (
            await tx.conn.execute(
                plan_requests.insert()
                .values(
                    project_id=project_id,
                    goal=body.goal,
                    requested_by=ctx.user_id,
                    status=PlanStatus.PENDING.value,
                    attempt=0,
                    proposals=[],
                )
                .returning(*plan_requests.c)
            )
        ).one()
        tx.notify(topic(project_id))
    return plan_out(row)


@router.get(
    "/projects/{project_id}/plans",
    summary="The project's planning requests, oldest first",
    permission=Permission(Action.READ, on="project_id"),
)
async def list_plans(ctx: Ctx, project_id: int, query: PageQuery) -> Page[PlanOut]:
    async with ctx.db.read() as conn:
        stmt = select(plan_requests).where(plan_requests.c.project_id == project_id)
        return await page(conn, stmt, plan_requests.c.id, query, PlanOut)


@router.get(
    "/projects/{project_id}/plans/{plan_id}",
    summary="One planning request with its proposals",
    permission=Permission(Action.READ, on="project_id"),
)
async def get_plan(ctx: Ctx, project_id: int, plan_id: int) -> PlanOut:
    async with ctx.db.read() as conn:
        return plan_out(await _load(conn, project_id, plan_id))


@router.post(
    "/projects/{project_id}/plans/{plan_id}/accept",
    summary="Make backlog tasks of these proposals (a proposal is made a task once)",
    permission=Permission(Action.WRITE_TASKS, on="project_id"),
)
async def accept_plan(ctx: Ctx, project_id: int, plan_id: int, body: PlanAccept) -> PlanAccepted:
    created = []
    async with ctx.db.write() as tx:
        row = await _load(tx.conn, project_id, plan_id, lock=ctx.db.backend == "postgresql")
        if row.status != PlanStatus.PROPOSED.value:
            raise conflict(
                f"planning request {plan_id} is '{row.status}': only proposals can be accepted",
                {"status": row.status},
            )
        acceptance = rules.accepting(row.proposals, body.numbers)
        if acceptance.unknown:
            raise field_problem(
                "body",
                "numbers",
                f"no proposal {', '.join(map(str, acceptance.unknown))} in this request",
                f"choose from 1 to {len(row.proposals)}",
            )
        proposals = list(row.proposals)
        for proposal in acceptance.create:
            task = await task_store.create(
                tx,
                project_id,
                Actor.USER,
                ctx.user_id,
                data={"plan_id": plan_id, "proposal": proposal["number"]},
                title=proposal["title"],
                description=proposal["description"],
                priority=PRIORITY,
                status=TaskStatus.BACKLOG.value,
                created_by=ctx.user_id,
            )
            proposals = rules.with_task(proposals, proposal["number"], task.id)
            created.append(task_out(task))
        if acceptance.create:
            row = (
                await tx.conn.execute(
                    update(plan_requests)
                    .where(plan_requests.c.id == plan_id)
                    .values(proposals=proposals)
                    .returning(*plan_requests.c)
                )
            ).one()
            tx.notify(f"project:{project_id}")
    return PlanAccepted(plan=plan_out(row), created=created)


# --- workers ---------------------------------------------------------------------------------


def _claimable(project_id: int) -> Select[Any]:
    """The oldest request of the project a claim may take: pending, or claimed by a worker
    whose lease is over."""
    return (
        select(plan_requests.c.id)
        .where(
            plan_requests.c.project_id == project_id,
            plan_requests.c.status.in_(rules.claimable_from()),
            or_(
                plan_requests.c.status == PlanStatus.PENDING.value,
                and_(
                    plan_requests.c.lease_expires_at.is_not(None),
                    plan_requests.c.lease_expires_at < db_now(),
                ),
            ),
        )
        .order_by(plan_requests.c.id)
        .limit(1)
    )


async def _claim_one(ctx: Ctx) -> Row[Any] | None:
    worker = ctx.me.worker()
    candidate = _claimable(worker.project_id)
    if ctx.db.backend == "postgresql":
        candidate = candidate.with_for_update(skip_locked=True)
    async with ctx.db.write() as tx:
        await claims.touch_worker(tx, worker.id)
        return (
            await tx.conn.execute(
                update(plan_requests)
                .where(plan_requests.c.id == candidate.scalar_subquery())
                .values(
                    status=PlanStatus.PLANNING.value,
                    worker_id=worker.id,
                    attempt=plan_requests.c.attempt + 1,
                    claim_token=secrets.token_urlsafe(24),
                    lease_expires_at=db_now(rules.PLAN_LEASE_SECONDS),
                    updated_at=db_now(),
                )
                .returning(*plan_requests.c)
            )
        ).first()


@router.post(
    "/worker/plans/claim",
    summary="Claim the next planning request; with wait_seconds, long-poll until one comes",
    worker_only=True,
)
async def claim_plan(ctx: Ctx, body: PlanClaimIn) -> PlanClaimOut | None:
    worker = ctx.me.worker()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + body.wait_seconds
    with ctx.services.hub.subscribe([topic(worker.project_id)]) as sub:
        while True:
            row = await _claim_one(ctx)
            if row is not None:
                return PlanClaimOut(
                    plan=plan_out(row),
                    attempt=row.attempt,
                    claim_token=row.claim_token,
                    lease_expires_at=row.lease_expires_at,
                )
            remaining = deadline - loop.time()
            if remaining <= 0 or ctx.gone():
                return None
            await ctx.db.checkpoint()  # what the look wrote (last seen) is not the answer
            await sub.wait(remaining)
            if ctx.gone():
                return None


@router.post(
    "/worker/plans/{plan_id}/report",
    summary="Report the planning run's proposals (or why it has none) for the claim you hold",
    worker_only=True,
)
async def report_plan(ctx: Ctx, plan_id: int, body: PlanReport) -> PlanOut:
    worker = ctx.me.worker()
    target = PlanStatus.PROPOSED if body.proposals else PlanStatus.FAILED
    async with ctx.db.write() as tx:
        row = await _load(tx.conn, worker.project_id, plan_id, lock=ctx.db.backend == "postgresql")
        held = (row.worker_id, row.attempt, row.claim_token)
        if not claims.same_fence(*held, worker, body.attempt, body.claim_token):
            raise conflict(
                f"your claim is stale: planning request {plan_id} is '{row.status}' at"
                f" attempt {row.attempt}; drop its proposals",
                {"status": row.status, "attempt": row.attempt},
            )
        if row.status == target.value:
            return plan_out(row)  # a retry of a report that took effect
        try:
            rules.check_move(PlanStatus(row.status), Mover.WORKER_REPORT, target)
        except rules.PlanMoveError as exc:
            raise conflict(str(exc), {"status": row.status}) from None
        proposals = [
            {"number": number, **p.model_dump(), "task_id": None}
            for number, p in enumerate(body.proposals, 1)
        ]
        reason = None if proposals else (body.reason or "the planning run proposed nothing")
        row = (
            await tx.conn.execute(
                update(plan_requests)
                .where(plan_requests.c.id == plan_id)
                .values(
                    status=target.value,
                    proposals=proposals,
                    reason=reason,
                    lease_expires_at=None,
                    updated_at=db_now(),
                )
                .returning(*plan_requests.c)
            )
        ).one()
        tx.notify(f"project:{worker.project_id}")
    return plan_out(row)
