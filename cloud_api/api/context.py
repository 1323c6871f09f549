"""Per-request context: who is calling (the principal), and what they may do in a project."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy import Select, and_, bindparam, or_, select

from cloud_api.api.errors import ApiError, forbidden, not_found, unauthorized
from cloud_api.dispatch.claims import WorkerIdentity
from cloud_api.domain.permissions import Action, Role, can
from cloud_api.schemas.common import parse_id
from cloud_api.security import hash_token
from cloud_api.store.db import Database
from cloud_api.store.tables import api_tokens, memberships, projects, users, workers
from cloud_api.store.types import db_now

if TYPE_CHECKING:
    from cloud_api.services import Services


@dataclass(frozen=True)
class Principal:
    token_id: int
    scope: str  # user | worker
    user_id: int | None
    is_admin: bool
    project_id: int | None  # worker tokens: the one project they serve
    worker_name: str | None
    worker_id: int | None  # set once the worker has registered
    repositories: tuple[str, ...]
    #: The user's name and e-mail (user tokens): the dashboard shows them on every page.
    user_name: str | None = None
    user_email: str | None = None

    @property
    def is_worker(self) -> bool:
        return self.scope == "worker"

    def worker(self) -> WorkerIdentity:
        if self.worker_id is None or self.project_id is None:
            raise ApiError(
                409,
                "Worker not registered",
                "register first: POST /api/v1/worker/register",
            )
        return WorkerIdentity(self.worker_id, self.project_id, self.repositories)


#: Built once: every request runs it (a live token, its user, its registered worker).
_LIVE_TOKEN = (
    select(
        api_tokens.c.id,
        api_tokens.c.scope,
        api_tokens.c.user_id,
        api_tokens.c.project_id,
        api_tokens.c.worker_name,
        users.c.is_admin,
        users.c.name.label("user_name"),
        users.c.email.label("user_email"),
        workers.c.id.label("worker_id"),
        workers.c.repositories,
    )
    .select_from(
        api_tokens.outerjoin(users, users.c.id == api_tokens.c.user_id).outerjoin(
            workers,
            and_(
                workers.c.project_id == api_tokens.c.project_id,
                workers.c.name == api_tokens.c.worker_name,
            ),
        )
    )
    .where(
        api_tokens.c.revoked_at.is_(None),
        or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > db_now()),
    )
)
_PRINCIPAL = _LIVE_TOKEN.where(api_tokens.c.token_hash == bindparam("p_hash"))
#: The same by token id: an open stream asks again whether its token still holds.
_PRINCIPAL_BY_ID = _LIVE_TOKEN.where(api_tokens.c.id == bindparam("p_id"))


async def authenticate(services: Services, request: web.Request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized(
            "send 'Authorization: Bearer <token>' (POST /api/v1/auth/login gives one)"
        )
    principal = await principal_for_token(services, token.strip())
    if principal is None:
        raise unauthorized("the token is unknown, expired or revoked; log in again")
    return principal


async def principal_for_token(services: Services, token: str) -> Principal | None:
    """Who holds ``token`` (a bearer token, or the dashboard's session cookie), if anyone."""
    return await _principal(services, _PRINCIPAL, {"p_hash": hash_token(token)})


async def principal_by_id(services: Services, token_id: int) -> Principal | None:
    """Who holds the token ``token_id`` now, if it is still valid (not revoked or expired)."""
    return await _principal(services, _PRINCIPAL_BY_ID, {"p_id": token_id})


async def _principal(
    services: Services, query: Select[Any], params: dict[str, object]
) -> Principal | None:
    async with services.db.read() as conn:
        row = (await conn.execute(query, params)).first()
    if row is None:
        return None
    return Principal(
        token_id=row.id,
        scope=row.scope,
        user_id=row.user_id,
        is_admin=bool(row.is_admin),
        project_id=row.project_id,
        worker_name=row.worker_name,
        worker_id=row.worker_id,
        repositories=tuple(row.repositories or ()),
        user_name=row.user_name,
        user_email=row.user_email,
    )


@dataclass(frozen=True)
class Grant:
    """What a route's declared policy (cloud_api.api.policy) established before its handler
    ran: the caller's role where the permission was checked, the project it was checked in,
    and the same check again (an open stream asks it while it runs)."""

    role: Role | None = None
    project_id: int | None = None
    recheck: Callable[[Ctx], Awaitable[object]] | None = None


@dataclass
class Ctx:
    request: web.Request
    services: Services
    principal: Principal | None
    #: Path parameters, when they are not the request's own: the dashboard calls the API's
    #: handlers from its own URLs (``/projects/1/members/7`` → org_id, user_id).
    path: dict[str, str] | None = None
    #: Set by the route's policy check (cloud_api.api.policy.guard) for its handler.
    grant: Grant | None = None

    @property
    def db(self) -> Database:
        return self.services.db

    @property
    def me(self) -> Principal:
        if self.principal is None:  # routes with auth=False never ask
            raise unauthorized("authentication required")
        return self.principal

    @property
    def user_id(self) -> int:
        if self.me.user_id is None:
            raise forbidden("this endpoint is for people; a worker token cannot use it")
        return self.me.user_id

    def granted(self) -> Grant:
        """The route's grant; a handler of a route declared with a permission has one."""
        if self.grant is None:
            raise RuntimeError("this handler runs without its route's policy check")
        return self.grant

    @property
    def role(self) -> Role:
        role = self.granted().role
        if role is None:
            raise RuntimeError("the route declares no permission, so no role was checked")
        return role

    @property
    def project_id(self) -> int:
        project_id = self.granted().project_id
        if project_id is None:
            raise RuntimeError("the route's permission is not checked in a project")
        return project_id

    def gone(self) -> bool:
        """The client hung up, or the server is shutting down: a long-poll or stream should end.
        (Handlers are not cancelled on hang-up, so waiting handlers ask this after each wake.)"""
        transport = self.request.transport
        return self.services.closing or transport is None or transport.is_closing()

    def path_id(self, name: str) -> int:
        raw = (self.path if self.path is not None else self.request.match_info)[name]
        value = parse_id(raw)
        if value is None:
            raise not_found(f"{name.removesuffix('_id')} {raw[:40]!r}")
        return value

    async def role_in(self, project_id: int) -> Role | None:
        me = self.me
        if me.is_worker:
            return Role.WORKER if me.project_id == project_id else None
        async with self.services.db.read() as conn:
            row = (
                await conn.execute(
                    select(projects.c.id, memberships.c.role)
                    .select_from(
                        projects.outerjoin(
                            memberships,
                            and_(
                                memberships.c.org_id == projects.c.org_id,
                                memberships.c.user_id == me.user_id,
                            ),
                        )
                    )
                    .where(projects.c.id == project_id)
                )
            ).first()
        if row is None:
            return None
        if me.is_admin:
            return Role.OWNER
        return Role(row.role) if row.role else None

    async def require(self, project_id: int, action: Action, what: str = "project") -> Role:
        """The caller's role in the project, or 404 (no access: we do not confirm it exists)
        / 403 (visible, but the role does not allow ``action``)."""
        role = await self.role_in(project_id)
        if role is None:
            raise not_found(f"{what} {project_id}" if what == "project" else what)
        if not can(role, action):
            raise forbidden(f"your role '{role}' does not allow '{action}' in this project")
        return role
