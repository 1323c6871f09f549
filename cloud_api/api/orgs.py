"""Organisations and their members (roles: owner, member, viewer)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from cloud_api.api.context import Ctx
from cloud_api.api.errors import conflict, field_problem, forbidden, not_found
from cloud_api.api.paging import page
from cloud_api.api.routing import Router
from cloud_api.domain.permissions import Role
from cloud_api.schemas.common import Page, PageQuery
from cloud_api.schemas.orgs import MemberAdd, MemberOut, MemberUpdate, OrgCreate, OrgOut, OrgUpdate
from cloud_api.store.db import Tx
from cloud_api.store.tables import memberships, organisations, users

router = Router("organisations")


def _role_query(ctx: Ctx, org_id: int) -> Any:
    return (
        select(organisations.c.id, memberships.c.role)
        .select_from(
            organisations.outerjoin(
                memberships,
                and_(
                    memberships.c.org_id == organisations.c.id,
                    memberships.c.user_id == ctx.me.user_id,
                ),
            )
        )
        .where(organisations.c.id == org_id)
    )


def _role_of(ctx: Ctx, org_id: int, row: Any) -> Role:
    if row is None or (row.role is None and not ctx.me.is_admin) or ctx.me.is_worker:
        raise not_found(f"organisation {org_id}")
    return Role.OWNER if ctx.me.is_admin else Role(row.role)


async def org_role(ctx: Ctx, org_id: int) -> Role:
    """The caller's role in the organisation; 404 if they are not in it."""
    async with ctx.db.read() as conn:
        row = (await conn.execute(_role_query(ctx, org_id))).first()
    return _role_of(ctx, org_id, row)


async def require_owner(ctx: Ctx, org_id: int) -> None:
    if await org_role(ctx, org_id) is not Role.OWNER:
        raise forbidden("only an owner of the organisation can do this")


@asynccontextmanager
async def owner_write(ctx: Ctx, org_id: int) -> AsyncIterator[Tx]:
    """A write transaction for an owner's change to the organisation, holding its row locked.

    Owner changes of one organisation run one after another, and the caller's role is checked
    again under the lock, so the check and the change are atomic: two owners demoting or
    removing each other at once leave one owner, and the loser gets a 409. PostgreSQL:
    ``FOR NO KEY UPDATE`` on the organisation's row (it does not block inserts that only
    reference it); SQLite: its single writer already serialises write transactions (SQLAlchemy
    leaves the clause out there)."""
    await require_owner(ctx, org_id)  # 404 / 403 before anything is locked
    async with ctx.db.write() as tx:
        locked = _role_query(ctx, org_id).with_for_update(of=organisations, key_share=True)
        row = (await tx.conn.execute(locked)).first()
        if row is None:
            raise not_found(f"organisation {org_id}")
        if not ctx.me.is_admin and row.role != Role.OWNER.value:
            raise conflict(
                "you are no longer an owner of this organisation (a concurrent change removed "
                "the role); reload the members and try again if it still applies"
            )
        yield tx


@router.post("/orgs", summary="Create an organisation (you become its owner)", status=201)
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


@router.get("/orgs", summary="Organisations you belong to")
async def list_orgs(ctx: Ctx, query: PageQuery) -> Page[OrgOut]:
    if ctx.me.is_worker:
        return Page[OrgOut](items=[], next_cursor=None)
    async with ctx.db.read() as conn:
        return await page(conn, _visible_orgs(ctx), organisations.c.id, query, OrgOut)


@router.get("/orgs/{org_id}", summary="One organisation")
async def get_org(ctx: Ctx) -> OrgOut:
    org_id = ctx.path_id("org_id")
    role = await org_role(ctx, org_id)
    async with ctx.db.read() as conn:
        row = (await conn.execute(select(organisations).where(organisations.c.id == org_id))).one()
    return OrgOut.model_validate({**row._mapping, "role": role})


@router.patch("/orgs/{org_id}", summary="Rename an organisation (owners)")
async def update_org(ctx: Ctx, body: OrgUpdate) -> OrgOut:
    org_id = ctx.path_id("org_id")
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


@router.get("/orgs/{org_id}/members", summary="Members of an organisation")
async def list_members(ctx: Ctx) -> list[MemberOut]:
    org_id = ctx.path_id("org_id")
    await org_role(ctx, org_id)
    async with ctx.db.read() as conn:
        rows = await conn.execute(
            select(*_MEMBER_COLUMNS)
            .join(users, users.c.id == memberships.c.user_id)
            .where(memberships.c.org_id == org_id)
            .order_by(memberships.c.id)
        )
        return [_member(r) for r in rows]


@router.post(
    "/orgs/{org_id}/members", summary="Add an existing user to an organisation (owners)", status=201
)
async def add_member(ctx: Ctx, body: MemberAdd) -> MemberOut:
    org_id = ctx.path_id("org_id")
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


@router.patch("/orgs/{org_id}/members/{user_id}", summary="Change a member's role (owners)")
async def update_member(ctx: Ctx, body: MemberUpdate) -> MemberOut:
    org_id, user_id = ctx.path_id("org_id"), ctx.path_id("user_id")
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


@router.delete("/orgs/{org_id}/members/{user_id}", summary="Remove a member (owners)")
async def remove_member(ctx: Ctx) -> None:
    org_id, user_id = ctx.path_id("org_id"), ctx.path_id("user_id")
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
