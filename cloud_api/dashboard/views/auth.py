"""Sign in and sign out. A session is a user API token issued by the API's own login."""

from __future__ import annotations

from aiohttp import web

from cloud_api.api import auth as auth_api
from cloud_api.api.context import Ctx
from cloud_api.api.errors import ApiError
from cloud_api.dashboard import session
from cloud_api.dashboard.web import Visitor, action, local_path, page_response, redirect
from cloud_api.schemas.auth import LoginIn
from cloud_api.services import SERVICES

routes = web.RouteTableDef()


@routes.get("/login", name="dashboard.login")
async def login_form(request: web.Request) -> web.StreamResponse:
    if await session.principal(request) is not None:
        return redirect(local_path(request.query.get("next"), "/"))
    return page_response(
        request, "login.html", next=local_path(request.query.get("next"), "/"), error=None, email=""
    )


@routes.post("/login")
async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    sent = form.get(session.CSRF_FIELD)
    session.check_csrf(request, sent if isinstance(sent, str) else None)
    email, password = str(form.get("email", "")).strip(), str(form.get("password", ""))
    target = local_path(str(form.get("next", "")), "/")
    services = request.app[SERVICES]
    try:
        body = LoginIn.model_validate({"email": email, "password": password})
        result = await auth_api.login(Ctx(request, services, None), body=body)
    except ApiError as exc:
        if exc.problem.status != 429:
            return wrong_login(request, target, email)
        wait = exc.headers["Retry-After"]
        throttled = page_response(
            request,
            "login.html",
            status=429,
            next=target,
            error=f"Too many failed sign-ins for this account or from this address. "
            f"Try again in {wait} seconds.",
            email=email,
        )
        throttled.headers["Retry-After"] = wait
        return throttled
    except ValueError:
        return wrong_login(request, target, email)
    found = redirect(target)
    max_age = services.settings.session_days * 86400
    session.set_cookie(request, found, session.SESSION_COOKIE, result.token, max_age)
    found.del_cookie(session.PRESESSION_COOKIE, path="/")
    return found


def wrong_login(request: web.Request, target: str, email: str) -> web.Response:
    """One message for a bad address, an unknown user and a wrong password alike."""
    return page_response(
        request,
        "login.html",
        status=401,
        next=target,
        error="Wrong e-mail or password.",
        email=email,
    )


@action
async def logout(visitor: Visitor) -> web.StreamResponse:
    await visitor.call(auth_api.logout)
    found = redirect("/login")
    found.del_cookie(session.SESSION_COOKIE, path="/")
    return found


routes.post("/logout")(logout)
