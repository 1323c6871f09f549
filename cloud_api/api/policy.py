"""Who may call a route: declared on the route, checked before its handler runs, published in
the OpenAPI document.

Every route declares exactly one of: no token (``auth=False``), any valid token
(``signed_in=True``), people only (``people_only=True``), admins only (``admin_only=True``),
worker tokens only (``worker_only=True``), or a permission checked against one of its ids
(``permission=Permission(Action.READ, on="task_id")``): the caller's role in the project (of a
project, task or sprint id) or in the organisation (an org id) must grant the action. A project
or organisation the caller has no role in is a 404 (its existence is not confirmed); a role
that does not grant the action is a 403.

Path ids are typed: every ``{name}`` in a route's path is one of :data:`PATH_IDS`, parsed
(digits, 1 to MAX_INT, else 404) and passed to the handler as its parameter ``name``.

The check wraps the handler itself, so the dashboard, which calls the API's handlers directly,
goes through the same policy as an HTTP request.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import and_, select

from cloud_api.api.context import Ctx, Grant
from cloud_api.api.errors import forbidden, not_found
from cloud_api.domain.permissions import Action, Role, can
from cloud_api.store.tables import memberships, organisations, sprints, tasks

Handler = Callable[..., Awaitable[Any]]


class Principals(StrEnum):
    """Which tokens a route takes at all."""

    ANYONE = "anyone"  # no token needed
    SIGNED_IN = "signed_in"  # any valid token, a person's or a worker's
    PEOPLE = "people"  # a person's token (a worker token gets 403)
    ADMINS = "admins"  # an admin's token
    WORKERS = "workers"  # a worker token


class Scope(StrEnum):
    """Where a permission on an id is looked up."""

    PROJECT = "project"  # the project itself
    TASK = "task"  # the task's project
    SPRINT = "sprint"  # the sprint's project
    ORG = "organisation"  # the organisation (workers have no role there)
    WITHIN = "within"  # an id inside what another id of the route scopes (no permission on it)


@dataclass(frozen=True)
class PathId:
    noun: str
    scope: Scope


#: Every id a route path may hold. A path with another ``{name}`` is refused at declaration.
PATH_IDS: dict[str, PathId] = {
    "project_id": PathId("project", Scope.PROJECT),
    "task_id": PathId("task", Scope.TASK),
    "sprint_id": PathId("sprint", Scope.SPRINT),
    "org_id": PathId("organisation", Scope.ORG),
    "user_id": PathId("member", Scope.WITHIN),
    "token_id": PathId("worker token", Scope.WITHIN),
    "node_id": PathId("graph node", Scope.WITHIN),
    "artifact_id": PathId("artifact", Scope.WITHIN),
    "plan_id": PathId("planning request", Scope.WITHIN),
}


@dataclass(frozen=True)
class Permission:
    """``action`` must be granted by the caller's role where the id ``on`` belongs: a path id
    of the route, or (an organisation being created in) a field of its body."""

    action: Action
    on: str

    @property
    def scope(self) -> Scope:
        return PATH_IDS[self.on].scope

    def roles(self) -> list[Role]:
        """The roles that pass (workers never hold a role in an organisation)."""
        return [
            r
            for r in Role
            if can(r, self.action) and not (self.scope is Scope.ORG and r is Role.WORKER)
        ]


_WHERE = {
    Scope.PROJECT: "in the project",
    Scope.TASK: "in the task's project",
    Scope.SPRINT: "in the sprint's project",
    Scope.ORG: "in the organisation (`{on}`)",
}


@dataclass(frozen=True)
class Policy:
    principals: Principals
    permission: Permission | None = None

    @classmethod
    def declare(
        cls,
        where: str,
        *,
        auth: bool,
        signed_in: bool,
        people_only: bool,
        admin_only: bool,
        worker_only: bool,
        permission: Permission | None,
    ) -> Policy:
        """The route's policy from its decorator; a route that says nothing, or two things,
        is refused when it is declared (no route is left with an implicit policy)."""
        said = {
            Principals.ANYONE: not auth,
            Principals.SIGNED_IN: signed_in or permission is not None,
            Principals.PEOPLE: people_only,
            Principals.ADMINS: admin_only,
            Principals.WORKERS: worker_only,
        }
        chosen = [p for p, yes in said.items() if yes]
        if len(chosen) != 1 or (signed_in and permission is not None):
            raise TypeError(
                f"{where}: declare exactly one of auth=False, signed_in=True, people_only=True,"
                " admin_only=True, worker_only=True or permission=Permission(...)"
            )
        return cls(chosen[0], permission)

    def describe(self) -> str:
        """One line for the reference: who may call the route."""
        if self.permission is not None:
            roles = ", ".join(str(r) for r in self.permission.roles())
            where = _WHERE[self.permission.scope].format(on=self.permission.on)
            return f"`{self.permission.action}` {where} (roles: {roles})"
        return {
            Principals.ANYONE: "no token",
            Principals.SIGNED_IN: "any token (a person's or a worker's)",
            Principals.PEOPLE: "a person's token",
            Principals.ADMINS: "an admin's token",
            Principals.WORKERS: "a worker token",
        }[self.principals]

    def token_kinds(self) -> list[str]:
        """The OpenAPI security roles: which tokens (and roles) pass."""
        if self.permission is not None:
            return [str(r) for r in self.permission.roles()]
        return {
            Principals.ANYONE: [],
            Principals.SIGNED_IN: ["person", "worker"],
            Principals.PEOPLE: ["person"],
            Principals.ADMINS: ["admin"],
            Principals.WORKERS: ["worker"],
        }[self.principals]


def path_ids(where: str, path: str, handler: Handler, hints: dict[str, Any]) -> list[str]:
    """The ids of ``path``, checked against the handler's parameters (each an int of the same
    name) and the known kinds."""
    names = re.findall(r"{(\w+)}", path)
    unknown = [n for n in names if n not in PATH_IDS]
    if unknown:
        raise TypeError(f"{where}: unknown path id(s) {unknown}; add them to policy.PATH_IDS")
    params = inspect.signature(handler).parameters
    declared = [p for p in params if p not in ("ctx", "body", "query")]
    if sorted(declared) != sorted(names) or any(hints.get(n) is not int for n in names):
        raise TypeError(f"{where}: the handler takes exactly the path ids {names}, each an int")
    return names


def check_target(
    where: str, permission: Permission, names: list[str], body: type[BaseModel] | None
) -> None:
    """The permission is checked on an id the route has (in its path, or its body's field)."""
    fields = body.model_fields if body is not None else {}
    if permission.on not in PATH_IDS or permission.scope is Scope.WITHIN:
        raise TypeError(f"{where}: a permission is checked on a project, task, sprint or org id")
    if permission.on not in names and permission.on not in fields:
        raise TypeError(f"{where}: {permission.on} is neither a path id nor a body field")


def _principal(policy: Policy, ctx: Ctx) -> None:
    me = ctx.principal
    if policy.principals is Principals.ANYONE or me is None:
        return  # the router authenticated every other route already
    if policy.principals is Principals.WORKERS and not me.is_worker:
        raise forbidden("this endpoint takes a worker token (locus-cloud token create)")
    if policy.principals is Principals.PEOPLE and me.user_id is None:
        raise forbidden("this endpoint is for people; a worker token cannot use it")
    if policy.principals is Principals.ADMINS and not me.is_admin:
        raise forbidden("only an admin can do this")


def org_role_query(ctx: Ctx, org_id: int) -> Any:
    """The organisation (if it exists) and the caller's role in it (if any)."""
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


def org_role_of(ctx: Ctx, org_id: int, row: Any) -> Role:
    if row is None or (row.role is None and not ctx.me.is_admin) or ctx.me.is_worker:
        raise not_found(f"organisation {org_id}")
    return Role.OWNER if ctx.me.is_admin else Role(row.role)


async def org_role(ctx: Ctx, org_id: int) -> Role:
    """The caller's role in the organisation; 404 if they are not in it."""
    async with ctx.db.read() as conn:
        row = (await conn.execute(org_role_query(ctx, org_id))).first()
    return org_role_of(ctx, org_id, row)


async def _project_of(ctx: Ctx, scope: Scope, value: int) -> int:
    table = tasks if scope is Scope.TASK else sprints
    async with ctx.db.read() as conn:
        project_id = (
            await conn.execute(select(table.c.project_id).where(table.c.id == value))
        ).scalar()
    if project_id is None:
        raise not_found(f"{scope} {value}")
    return int(project_id)


async def _permit(permission: Permission, ctx: Ctx, ids: dict[str, int], body: Any) -> Grant:
    value = ids[permission.on] if permission.on in ids else int(getattr(body, permission.on))
    scope = permission.scope
    if scope is Scope.ORG:
        role = await org_role(ctx, value)
        if not can(role, permission.action):
            who = ", ".join(str(r) for r in permission.roles())
            raise forbidden(
                f"your role '{role}' does not allow '{permission.action}' in this organisation"
                f" (the roles that do: {who})"
            )
        return Grant(role=role)
    if scope is Scope.PROJECT:
        role = await ctx.require(value, permission.action)
        return Grant(role=role, project_id=value)
    project_id = await _project_of(ctx, scope, value)
    role = await ctx.require(project_id, permission.action, f"{scope} {value}")
    return Grant(role=role, project_id=project_id)


def guard(policy: Policy, names: list[str], handler: Handler) -> Handler:
    """``handler`` behind ``policy``: the principal, then the path ids, then the permission;
    the handler gets the ids as arguments and the grant (role, project, a re-check for open
    streams) in ``ctx.grant``."""

    @functools.wraps(handler)
    async def guarded(ctx: Ctx, **kwargs: Any) -> Any:
        _principal(policy, ctx)
        ids = {name: ctx.path_id(name) for name in names}
        body = kwargs.get("body")

        async def check(again: Ctx) -> Grant:
            _principal(policy, again)
            if policy.permission is None:
                return Grant()
            return await _permit(policy.permission, again, ids, body)

        grant = await check(ctx)
        granted = dataclasses.replace(ctx, grant=dataclasses.replace(grant, recheck=check))
        return await handler(granted, **ids, **kwargs)

    return guarded
