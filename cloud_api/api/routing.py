"""Declared routes: one decorator per endpoint, with its body, query and response models taken
from the handler's type hints. The same declarations drive request validation, response
serialisation, who may call the route (:mod:`cloud_api.api.policy`, checked before the
handler runs) and the OpenAPI document (:mod:`cloud_api.api.openapi`), so they cannot drift.

    @router.post(
        "/projects/{project_id}/tasks",
        status=201,
        summary="Create a task",
        permission=Permission(Action.WRITE_TASKS, on="project_id"),
    )
    async def create_task(ctx: Ctx, project_id: int, body: TaskCreate) -> TaskOut: ...
"""

from __future__ import annotations

import re
import typing
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel, TypeAdapter, ValidationError

from cloud_api.api import idempotency
from cloud_api.api.context import Ctx, authenticate
from cloud_api.api.errors import ApiError, field_problem, validation_problem
from cloud_api.api.policy import (
    Permission,
    Policy,
    Principals,
    check_target,
    guard,
    path_ids,
)
from cloud_api.schemas.common import IDEMPOTENCY_KEY_PATTERN
from cloud_api.services import SERVICES

Handler = Callable[..., Awaitable[Any]]
API_PREFIX = "/api/v1"


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # relative to the router prefix, with {name} placeholders
    handler: Handler
    summary: str
    tag: str
    status: int
    #: Who may call it: checked before the handler runs (the handler below is guarded).
    policy: Policy
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: Any  # a pydantic model / generic, None (204), or web.StreamResponse (raw)
    #: The response holds a secret shown once (a token): an Idempotency-Key replay answers 409
    #: instead of storing the secret at rest.
    secret_response: bool
    idempotent: bool

    @property
    def auth(self) -> bool:
        return self.policy.principals is not Principals.ANYONE

    @property
    def full_path(self) -> str:
        return API_PREFIX + self.path

    @property
    def raw(self) -> bool:
        return isinstance(self.response, type) and issubclass(self.response, web.StreamResponse)


class Router:
    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.routes: list[Route] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        status: int = 200,
        auth: bool = True,
        signed_in: bool = False,
        people_only: bool = False,
        admin_only: bool = False,
        worker_only: bool = False,
        permission: Permission | None = None,
        secret_response: bool = False,
        idempotent: bool = True,
    ) -> Callable[[Handler], Handler]:
        """Declare a route. Its policy is one of ``auth=False``, ``signed_in``,
        ``people_only``, ``admin_only``, ``worker_only`` or ``permission``; returns the
        handler behind that policy (the dashboard calls it too)."""

        def decorate(handler: Handler) -> Handler:
            where = f"{method} {path}"
            hints = typing.get_type_hints(handler)
            response = hints.get("return")
            body = hints.get("body")
            policy = Policy.declare(
                where,
                auth=auth,
                signed_in=signed_in,
                people_only=people_only,
                admin_only=admin_only,
                worker_only=worker_only,
                permission=permission,
            )
            names = path_ids(where, path, handler, hints)
            if permission is not None:
                check_target(where, permission, names, body)
            guarded = guard(policy, names, handler)
            self.routes.append(
                Route(
                    method=method,
                    path=path,
                    handler=guarded,
                    summary=summary,
                    tag=self.tag,
                    status=204 if response is type(None) else status,
                    policy=policy,
                    body=body,
                    query=hints.get("query"),
                    response=None if response is type(None) else response,
                    secret_response=secret_response,
                    idempotent=idempotent,
                )
            )
            return guarded

        return decorate

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kw)


_adapters: dict[Any, TypeAdapter[Any]] = {}


def _serialise(route: Route, result: Any) -> web.StreamResponse:
    if route.response is None or result is None:
        return web.Response(status=204)
    adapter = _adapters.get(route.response)
    if adapter is None:
        adapter = _adapters[route.response] = TypeAdapter(route.response)
    return web.Response(
        status=route.status, body=adapter.dump_json(result), content_type="application/json"
    )


def _nul_field(value: Any, path: str) -> str | None:
    """The dotted path of the first string (or key) holding a NUL: PostgreSQL cannot store
    one in text (a fuzzed body got a 500 there), so no backend accepts it."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        items: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if isinstance(key, str) and "\x00" in key:
            return path
        found = _nul_field(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def reject_nul(location: str, value: Any) -> None:
    """422 naming the first field of ``value`` holding a NUL (REST bodies and queries, the
    dashboard's forms)."""
    field = _nul_field(value, "")
    if field is not None:
        where = field or f"({location})"
        raise field_problem(location, where, "contains a NUL character", "remove the \\u0000")


def _parse_body(route: Route, raw: bytes) -> BaseModel | None:
    if route.body is None:
        return None
    try:
        body = route.body.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise validation_problem(exc, "body") from None
    if b"\\u0000" in raw:  # JSON can only carry a NUL escaped
        reject_nul("body", body.model_dump())
    return body


def _parse_query(route: Route, request: web.Request) -> BaseModel | None:
    if route.query is None:
        if request.query:
            unknown = ", ".join(sorted(request.query))
            raise ApiError(422, "Invalid request", f"unexpected query parameters: {unknown}")
        return None
    reject_nul("query", dict(request.query))
    try:
        return route.query.model_validate(dict(request.query))
    except ValidationError as exc:
        raise validation_problem(exc, "query") from None


_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


def _check_content_type(route: Route, request: web.Request, raw: bytes) -> None:
    """A JSON body must say so: a form or text sent by mistake gets a 415 naming the fix."""
    if route.body is None or not raw:
        return
    kind = request.content_type  # aiohttp: application/octet-stream when the header is absent
    if kind != "application/json" and not kind.endswith("+json"):
        sent = request.headers.get("Content-Type", "none")
        raise ApiError(
            415,
            "Unsupported Media Type",
            f"the body must be JSON (Content-Type was {sent[:100]!r}): "
            "send 'Content-Type: application/json'",
        )


def _check_idempotency_key(key: str) -> None:
    if not _KEY.fullmatch(key):
        raise ApiError(
            400,
            "Bad Idempotency-Key",
            "the Idempotency-Key header must be 1 to 255 printable ASCII characters, e.g. a UUID",
        )


def make_handler(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        services = request.app[SERVICES]
        principal = await authenticate(services, request) if route.auth else None
        ctx = Ctx(request, services, principal)
        raw = await request.read() if request.body_exists else b""
        _check_content_type(route, request, raw)
        query = _parse_query(route, request)
        body = _parse_body(route, raw)
        kwargs: dict[str, Any] = {}
        if route.body is not None:
            kwargs["body"] = body
        if route.query is not None:
            kwargs["query"] = query

        async def run() -> web.StreamResponse:
            result = await route.handler(ctx, **kwargs)
            return result if route.raw else _serialise(route, result)

        key = request.headers.get(idempotency.HEADER)
        if route.method == "POST" and route.idempotent and key is not None and principal:
            _check_idempotency_key(key)
            return await idempotency.once(ctx, route.secret_response, key, raw, run)
        return await run()

    return handle


def install(app: web.Application, routers: list[Router]) -> list[Route]:
    routes = [r for router in routers for r in router.routes]
    for r in routes:
        app.router.add_route(
            r.method, r.full_path, make_handler(r), name=f"{r.tag}.{r.handler.__name__}"
        )
    return routes
