"""Organisations and their members (roles: owner, member, viewer)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from cloud_api.api.context import Ctx
from cloud_api.api.errors import conflict, field_problem, not_found
from cloud_api.api.paging import page
from cloud_api.api.policy import Permission, org_role_query
from cloud_api.api.routing import Router
from cloud_api.domain.permissions import Action, Role
from cloud_api.schemas.common import Page, PageQuery
from cloud_api.schemas.orgs import MemberAdd, MemberOut, MemberUpdate, OrgCreate, OrgOut, OrgUpdate
from cloud_api.store.db import Tx
from cloud_api.store.tables import memberships, organisations, users

router = Router("organisations")
READ_ORG = Permission(Action.READ, on="org_id")
MANAGE_ORG = Permission(Action.MANAGE, on="org_id")


@asynccontextmanager
async def owner_write(ctx: Ctx, org_id: int) -> AsyncIterator[Tx]:
    """A write transaction for an owner's change to the organisation, holding its row locked.

    The route's policy let an owner in (404 / 403 before anything is locked); owner changes
    of one organisation run one after another, and the caller's role is checked again under
    the lock, so the check and the change are atomic: two owners demoting or
    removing each other at once leave one owner, and the loser gets a 409. PostgreSQL:
    ``FOR NO KEY UPDATE`` on the organisation's row (it does not block inserts that only
    reference it); SQLite: its single writer already serialises write transactions (SQLAlchemy
    leaves the clause out there)."""
    async with ctx.db.write() as tx:
        locked = org_role_query(ctx, org_id).with_for_update(of=organisations, key_share=True)
        row = (await tx.conn.execute(locked)).first()
        if row is None:
            raise not_found(f"organisation {org_id}")
        if not ctx.me.is_admin and row.role != Role.OWNER.value:
            raise conflict(
                "you are no longer an owner of this organisation (a concurrent change removed "
                "the role); reload the members and try again if it still applies"
            )
        yield tx


@router.post(
    "/orgs",
    summary="Create an organisation (you become its owner)",
    status=201,
    people_only=True,
)
async def create_org(ctx: Ctx, body: OrgCreate) -> OrgOut:
    try:
        async with ctx.db.write() as tx:
            org = (
                await tx.conn.execute(
                    organisations.insert()
                    .values(name=body.name, slug=body.slug)
                    .returning(*organisations.c)
                )
            ).one()
            await tx.conn.execute(
                memberships.insert().values(
                    org_id=org.id, user_id=ctx.user_id, role=Role.OWNER.value
                )
            )
    except IntegrityError:
        raise field_problem(
            "body", "slug", f"'{body.slug}' is taken", "choose another slug"
        ) from None
    return OrgOut.model_validate({**org._mapping, "role": Role.OWNER})


def _visible_orgs(ctx: Ctx) -> Any:
    query = select(organisations, memberships.c.role).outerjoin(
        memberships,
        and_(memberships.c.org_id == organisations.c.id, memberships.c.user_id == ctx.me.user_id),
    )
    return query if ctx.me.is_admin else query.where(memberships.c.role.is_not(None))


@router.get("/orgs", summary="Organisations you belong to", signed_in=True)
async def list_orgs(ctx: Ctx, query: PageQuery) -> Page[OrgOut]:
    if ctx.me.is_worker:
        return Page[OrgOut](items=[], next_cursor=None)
    async with ctx.db.read() as conn:
        return await page(conn, _visible_orgs(ctx), organisations.c.id, query, OrgOut)


@router.get("/orgs/{org_id}", summary="One organisation", permission=READ_ORG)
async def get_org(ctx: Ctx, org_id: int) -> OrgOut:
    async with ctx.db.read() as conn:
        row = (await conn.execute(select(organisations).where(organisations.c.id == org_id))).one()
    return OrgOut.model_validate({**row._mapping, "role": ctx.role})


@router.patch("/orgs/{org_id}", summary="Rename an organisation (owners)", permission=MANAGE_ORG)
async def update_org(ctx: Ctx, org_id: int, body: OrgUpdate) -> OrgOut:
    async with owner_write(ctx, org_id) as tx:
        row = (
            await tx.conn.execute(
                update(organisations)
                .where(organisations.c.id == org_id)
                .values(name=body.name)
                .returning(*organisations.c)
            )
        ).one()
    return OrgOut.model_validate({**row._mapping, "role": Role.OWNER})


def _member(row: Any) -> MemberOut:
    return MemberOut.model_validate(row._mapping)


_MEMBER_COLUMNS = (
    memberships.c.id,
    memberships.c.user_id,
    users.c.email,
    users.c.name,
    memberships.c.role,
)


@router.get("/orgs/{org_id}/members", summary="Members of an organisation", permission=READ_ORG)
async def list_members(ctx: Ctx, org_id: int) -> list[MemberOut]:
    async with ctx.db.read() as conn:
        rows = await conn.execute(
            select(*_MEMBER_COLUMNS)
            .join(users, users.c.id == memberships.c.user_id)
            .where(memberships.c.org_id == org_id)
            .order_by(memberships.c.id)
        )
        return [_member(r) for r in rows]


@router.post(
    "/orgs/{org_id}/members",
    summary="Add an existing user to an organisation (owners)",
    status=201,
    permission=MANAGE_ORG,
)
async def add_member(ctx: Ctx, org_id: int, body: MemberAdd) -> MemberOut:
    try:
        async with owner_write(ctx, org_id) as tx:
            query = select(users).where(users.c.email == body.email)
            user = (await tx.conn.execute(query)).first()
            if user is None:
                raise field_problem(
                    "body", "email", "no user has this e-mail", "create the user first"
                )
            await tx.conn.execute(
                memberships.insert().values(org_id=org_id, user_id=user.id, role=body.role)
            )
    except IntegrityError:
        raise conflict(
            f"{body.email} is already a member; PATCH the membership to change the role"
        ) from None
    return MemberOut(user_id=user.id, email=user.email, name=user.name, role=body.role)


async def _owners(conn: Any, org_id: int) -> int:
    return int(
        (
            await conn.execute(
                select(func.count()).where(
                    memberships.c.org_id == org_id, memberships.c.role == Role.OWNER.value
                )
            )
        ).scalar_one()
    )


@router.patch(
    "/orgs/{org_id}/members/{user_id}",
    summary="Change a member's role (owners)",
    permission=MANAGE_ORG,
)
async def update_member(ctx: Ctx, org_id: int, user_id: int, body: MemberUpdate) -> MemberOut:
    async with owner_write(ctx, org_id) as tx:
        row = (
            await tx.conn.execute(
                update(memberships)
                .where(memberships.c.org_id == org_id, memberships.c.user_id == user_id)
                .values(role=body.role)
                .returning(memberships.c.id)
            )
        ).first()
        if row is None:
            raise not_found(f"member {user_id}")
        if await _owners(tx.conn, org_id) == 0:
            raise conflict("an organisation needs at least one owner")
        member = (
            await tx.conn.execute(
                select(*_MEMBER_COLUMNS)
                .join(users, users.c.id == memberships.c.user_id)
                .where(memberships.c.id == row.id)
            )
        ).one()
    return _member(member)


@router.delete(
    "/orgs/{org_id}/members/{user_id}", summary="Remove a member (owners)", permission=MANAGE_ORG
)
async def remove_member(ctx: Ctx, org_id: int, user_id: int) -> None:
    async with owner_write(ctx, org_id) as tx:
        result = await tx.conn.execute(
            delete(memberships)
            .where(memberships.c.org_id == org_id, memberships.c.user_id == user_id)
            .returning(memberships.c.id)
        )
        if result.first() is None:
            raise not_found(f"member {user_id}")
        if await _owners(tx.conn, org_id) == 0:
            raise conflict("an organisation needs at least one owner")
