"""Log in and out, who am I, and user administration."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud_api.api.context import Ctx
from cloud_api.api.errors import ApiError, conflict
from cloud_api.api.login_throttle import Attempt
from cloud_api.api.paging import page
from cloud_api.api.routing import Router
from cloud_api.schemas.auth import LoginIn, LoginOut, MembershipOut, MeOut, UserCreate, UserOut
from cloud_api.schemas.common import Page, PageQuery
from cloud_api.security import DUMMY_PASSWORD_HASH, PasswordWork, hash_password
from cloud_api.store import tokens as token_store
from cloud_api.store.db import Database
from cloud_api.store.tables import api_tokens, memberships, organisations, users
from cloud_api.store.types import db_now

router = Router("auth")


@router.post("/auth/login", summary="Exchange e-mail and password for a session token", auth=False)
async def login(ctx: Ctx, body: LoginIn) -> LoginOut:
    attempt = ctx.services.login_throttle.charge(body.email, ctx.request.remote)
    if not isinstance(attempt, Attempt):
        await ctx.services.login_throttle.slow_refusal()
        raise too_many_logins(attempt)
    async with ctx.db.read() as conn:
        user = (await conn.execute(select(users).where(users.c.email == body.email))).first()
    # Verify against a dummy hash for unknown users, so the answer takes as long either way.
    stored = user.password_hash if user else DUMMY_PASSWORD_HASH
    if not await ctx.services.passwords.verify(stored, body.password) or not user:
        raise ApiError(401, "Unauthorized", "wrong e-mail or password")
    ctx.services.login_throttle.succeeded(attempt)
    days = ctx.services.settings.session_days
    async with ctx.db.write() as tx:
        token, row = await token_store.issue(
            tx, "user", expires_in_seconds=days * 86400, user_id=user.id, label="login session"
        )
    return LoginOut(
        token=token, expires_at=row.expires_at, user=UserOut.model_validate(user._mapping)
    )


def too_many_logins(wait: float) -> ApiError:
    seconds = int(wait)
    return ApiError(
        429,
        "Too many failed logins",
        f"too many failed logins for this account or from this address: wait {seconds} s "
        "(the Retry-After header) before trying again",
        headers={"Retry-After": str(seconds)},
    )


@router.post("/auth/logout", summary="Revoke the token this request was sent with", signed_in=True)
async def logout(ctx: Ctx) -> None:
    async with ctx.db.write() as tx:
        await tx.conn.execute(
            update(api_tokens).where(api_tokens.c.id == ctx.me.token_id).values(revoked_at=db_now())
        )


@router.get("/me", summary="The caller: user, token scope, memberships", signed_in=True)
async def me(ctx: Ctx) -> MeOut:
    principal = ctx.me
    user = None
    member_of: list[MembershipOut] = []
    if principal.user_id is not None:
        async with ctx.db.read() as conn:
            row = (await conn.execute(select(users).where(users.c.id == principal.user_id))).one()
            user = UserOut.model_validate(row._mapping)
            rows = await conn.execute(
                select(
                    memberships.c.org_id, organisations.c.slug.label("org_slug"), memberships.c.role
                )
                .join(organisations, organisations.c.id == memberships.c.org_id)
                .where(memberships.c.user_id == principal.user_id)
                .order_by(memberships.c.org_id)
            )
            member_of = [MembershipOut.model_validate(r._mapping) for r in rows]
    return MeOut(
        user=user,
        token_scope=principal.scope,
        worker_name=principal.worker_name,
        project_id=principal.project_id,
        memberships=member_of,
    )


@router.post("/users", summary="Create a user (admins only)", status=201, admin_only=True)
async def create_user(ctx: Ctx, body: UserCreate) -> UserOut:
    return await insert_user(ctx.db, body, ctx.services.passwords)


async def insert_user(
    db: Database, body: UserCreate, passwords: PasswordWork | None = None
) -> UserOut:
    """Also used by `locus-cloud user create` and the first-start bootstrap, which serve no
    one else and so hash on their own loop (``passwords`` None). Hashed before the write
    transaction: SQLite's writer is not held while argon2 runs."""
    password_hash = (
        await passwords.hash(body.password) if passwords else hash_password(body.password)
    )
    try:
        async with db.write() as tx:
            row = (
                await tx.conn.execute(
                    users.insert()
                    .values(
                        email=body.email,
                        name=body.name,
                        password_hash=password_hash,
                        is_admin=body.is_admin,
                    )
                    .returning(*users.c)
                )
            ).one()
    except IntegrityError:
        raise conflict(f"a user with e-mail {body.email!r} already exists") from None
    return UserOut.model_validate(row._mapping)


@router.get("/users", summary="List users (admins only)", admin_only=True)
async def list_users(ctx: Ctx, query: PageQuery) -> Page[UserOut]:
    async with ctx.db.read() as conn:
        return await page(conn, select(users), users.c.id, query, UserOut)


async def count_users(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(users))).scalar_one())
