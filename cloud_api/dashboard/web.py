"""How a dashboard request is served: who is signed in, CSRF on every POST, what every
template gets, and errors as pages that say what to do.

Views never touch the database for writes: they call the REST API's own handlers (through
:meth:`Visitor.call`) with the signed-in user's principal, so permissions, validation, the
state machine and the timeline are the API's, and there is one path to the data.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDictProxy
from pydantic import BaseModel, ValidationError

from cloud_api.api.context import Ctx, Principal
from cloud_api.api.errors import ApiError, validation_problem
from cloud_api.api.routing import reject_nul
from cloud_api.dashboard import session, waiting
from cloud_api.dashboard.render import render
from cloud_api.domain.permissions import Action, Role, can
from cloud_api.services import SERVICES

log = logging.getLogger("cloud_api.dashboard")

#: Everything the page needs comes from this server; no inline script or style is allowed,
#: so an injected <script> would not run even if escaping ever failed.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_NOT_DASHBOARD = ("/api/", "/healthz", "/readyz", "/metrics")

Form = MultiDictProxy[str | bytes | Any]


@dataclass
class Visitor:
    """A signed-in person on a dashboard page."""

    request: web.Request
    ctx: Ctx
    form: Form | None = None
    #: Filled by views that show a project: the navigation bar uses them.
    nav: dict[str, Any] = field(default_factory=dict)

    @property
    def me(self) -> Principal:
        return self.ctx.me

    @property
    def name(self) -> str:
        """Shown in the top bar (it comes with the principal: no query of its own)."""
        return self.me.user_name or self.me.user_email or ""

    async def call(self, handler: Callable[..., Awaitable[Any]], /, **kwargs: Any) -> Any:
        """Run a REST handler as this user. ``path`` overrides path parameters by name."""
        path: Mapping[str, object] = kwargs.pop("path", {})
        ctx = self.ctx
        if path:
            merged = {**self.request.match_info, **{k: str(v) for k, v in path.items()}}
            ctx = Ctx(self.request, ctx.services, ctx.principal, path=merged)
        return await handler(ctx, **kwargs)

    async def every(
        self,
        handler: Callable[..., Awaitable[Any]],
        query: type[BaseModel],
        path: Mapping[str, object] | None = None,
        **fields: Any,
    ) -> list[Any]:
        """All items of a paged REST listing, following its cursor."""
        items: list[Any] = []
        after = 0
        while True:
            page = query(limit=200, after=after, **fields)
            result = await self.call(handler, query=page, path=path or {})
            items += result.items
            if result.next_cursor is None:
                return items
            after = result.next_cursor

    async def role(self, project_id: int) -> Role:
        """The visitor's role in the project; 404 (as a page) when they cannot see it."""
        return await self.ctx.require(project_id, Action.READ)

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else None
        return value.strip() if isinstance(value, str) else default

    def query(self, model: type[BaseModel], *names: str) -> Any:
        """The named query parameters (empty ones left out) as a REST query model; a bad one
        comes back as the API's 422 naming it."""
        values = {k: v for k, v in self.request.query.items() if k in names and v != ""}
        try:
            return model.model_validate(values)
        except ValidationError as exc:
            raise validation_problem(exc, "query") from None

    def body(self, model: type[BaseModel], **values: Any) -> Any:
        """Validate form values as an API body; a bad field comes back as the API's 422.
        Lax, unlike JSON bodies: a form sends every value as text ("5" is the number 5)."""
        reject_nul("form", values)
        try:
            return model.model_validate(values, strict=False)
        except ValidationError as exc:
            raise validation_problem(exc, "form") from None


_LOCAL_PATH = re.compile(r"/(?![/\\])[^\s\\]*")


def local_path(target: str | None, default: str) -> str:
    """Only same-site paths: a crafted ``next`` must not send the user elsewhere. Browsers
    drop tabs and newlines from URLs and read ``\\`` as ``/``, so ``/<tab>/evil.example`` would be
    ``//evil.example``: no whitespace or backslash anywhere."""
    if target and _LOCAL_PATH.fullmatch(target):
        return target
    return default


def redirect(location: str) -> web.Response:
    """303 See Other: after a form post the browser GETs the page (no re-post on reload)."""
    return web.Response(status=303, headers={"Location": location})


def page_response(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    for name, default in (
        ("visitor", None),
        ("nav", {}),
        ("can_act", False),
        ("can_manage", False),
    ):
        context.setdefault(name, default)
    # Where forms come back to after a post; a partial names the page it is part of.
    context.setdefault("request_path", request.path_qs)
    response = web.Response(status=status, content_type="text/html", charset="utf-8")
    csrf = session.csrf_token(request, response)
    # Partials (live refreshes, named _*.html) leave the message for the page it was meant for.
    flash = None if template.startswith("_") else session.take_flash(request, response)
    response.text = render(template, csrf=csrf, flash=flash, **context)
    return response


def respond(visitor: Visitor, template: str, *, status: int = 200, **context: Any) -> web.Response:
    role = visitor.nav.get("role")
    return page_response(
        visitor.request,
        template,
        status=status,
        visitor=visitor,
        nav=visitor.nav,
        can_act=can(role, Action.WRITE_TASKS),
        can_manage=can(role, Action.MANAGE),
        **context,
    )


async def _visitor(request: web.Request) -> Visitor | None:
    principal = await session.principal(request)
    if principal is None:
        return None
    services = request.app[SERVICES]
    return Visitor(request, Ctx(request, services, principal))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
View = Callable[[Visitor], Awaitable[web.StreamResponse]]


def _wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def page(view: View, *, whole: bool = True) -> Handler:
    """A GET view for signed-in people; others are sent to the sign-in page and back. A whole
    page counts what waits for the person (the navigation's "Needs you"); a fragment — a
    live refresh, one card, an event stream — does not (see :func:`fragment`)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        visitor = await _visitor(request)
        if visitor is None:
            return redirect(f"/login?next={quote(request.path_qs)}")
        if whole:
            async with visitor.ctx.db.read() as conn:
                visitor.nav["waiting"] = (await conn.execute(waiting.count(visitor.me))).scalar()
        return await view(visitor)

    return handle


def fragment(view: View) -> Handler:
    """A GET view that returns part of a page (or a stream): no navigation to fill."""
    return page(view, whole=False)


def action(view: View) -> Handler:
    """A POST view: CSRF first, then the signed-in person. A refusal the user can fix (409: the
    task moved on, 422: a bad field) returns to the page with the reason; other errors are
    pages. Script callers (``Accept: application/json``) get the API's problem+json instead."""

    async def handle(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        sent = form.get(session.CSRF_FIELD)
        session.check_csrf(request, sent if isinstance(sent, str) else None)
        visitor = await _visitor(request)
        if visitor is None:
            if _wants_json(request):
                raise ApiError(401, "Unauthorized", "sign in again")
            return redirect("/login")
        visitor.form = form
        back = local_path(visitor.field("next"), "/")
        try:
            response = await view(visitor)
        except ApiError as exc:
            if _wants_json(request) or exc.problem.status not in (409, 422):
                raise
            found = redirect(back)
            session.flash(request, found, f"Not done: {exc.problem.detail or exc.problem.title}")
            return found
        if _wants_json(request) and response.status == 303:
            return web.json_response({"ok": True, "location": response.headers["Location"]})
        return response

    return handle


def done(visitor: Visitor, default: str, message: str, *, back: bool = True) -> web.Response:
    """After a successful post: back to the page the form was on (``back=False``: on to
    ``default``, e.g. a project just created), with a note."""
    found = redirect(local_path(visitor.field("next"), default) if back else default)
    session.flash(visitor.request, found, message)
    return found


_ERROR_HINTS = {
    400: "Check the address or the form and try again.",
    401: "Sign in again.",
    403: "Ask an owner of the project for a role that allows it.",
    404: "It may have been removed, or it belongs to a project you are not a member of. "
    "Go back to your projects.",
    405: "Use the page's own buttons and forms.",
    409: "Reload the page: it changed meanwhile.",
    413: "Send less: the request was too large.",
    422: "Correct the field named above and send the form again.",
    500: "The error is in the server's log. Try again; if it persists, tell the operator.",
}


def error_page(request: web.Request, status: int, title: str, detail: str | None) -> web.Response:
    response = page_response(
        request,
        "error.html",
        status=status,
        title=title,
        detail=detail,
        hint=_ERROR_HINTS.get(status, "Go back and try again."),
        code=status,
    )
    return response


@web.middleware
async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Errors on dashboard URLs become pages (API URLs keep their problem+json), and every
    dashboard response carries the security headers."""
    if request.path.startswith(_NOT_DASHBOARD):
        response: web.StreamResponse = await handler(request)
        return response
    try:
        response = await handler(request)
    except session.CsrfRefused as exc:
        response = error_page(
            request,
            403,
            "Refused: the form could not be verified",
            f"{exc}. Reload the page and send the form again.",
        )
    except ApiError as exc:
        if _wants_json(request):
            raise
        response = error_page(request, exc.problem.status, exc.problem.title, exc.problem.detail)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = "There is no page at this address." if exc.status == 404 else exc.text
        response = error_page(request, exc.status, exc.reason, detail)
    except ConnectionResetError:
        raise  # the client hung up: not an error page (problem_middleware counts it as such)
    except Exception:
        log.exception("dashboard error on %s %s", request.method, request.path)
        response = error_page(request, 500, "Something went wrong", None)
    if not response.prepared:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        static = request.path.startswith("/static/")
        response.headers.setdefault("Cache-Control", "max-age=300" if static else "no-store")
    return response
