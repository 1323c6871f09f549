"""Browser sessions and CSRF protection.

A session is an ordinary user API token (the one ``POST /auth/login`` issues) kept in an
HttpOnly, SameSite=Lax cookie, so the dashboard authenticates exactly as the REST API does and
signing out revokes the token. The CSRF token is an HMAC keyed by that cookie's secret: a page
can embed it, another site cannot compute it, and nothing extra is stored on the server.
Before sign-in a random pre-session cookie plays the same role for the sign-in form.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import quote, unquote, urlsplit

from aiohttp import web

from cloud_api.api.context import Principal, principal_for_token
from cloud_api.services import SERVICES, SETTINGS

SESSION_COOKIE = "locus_session"
PRESESSION_COOKIE = "locus_presession"
FLASH_COOKIE = "locus_flash"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


#: The pre-session secret chosen while rendering this request's page (before its cookie exists).
PRESESSION = web.RequestKey("presession", str)


class CsrfRefused(Exception):
    """A state-changing request without a valid CSRF token, or from another origin."""


def set_cookie(
    request: web.Request, response: web.StreamResponse, name: str, value: str, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=request.secure or request.app[SETTINGS].secure_cookies,
    )


async def principal(request: web.Request) -> Principal | None:
    """The signed-in user, or None. Worker tokens never make a browser session."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    found = await principal_for_token(request.app[SERVICES], token)
    return found if found is not None and not found.is_worker else None


def _secret(request: web.Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or request.cookies.get(PRESESSION_COOKIE)


def csrf_token(request: web.Request, response: web.StreamResponse | None = None) -> str:
    """The token forms on this page must send back. Without any session cookie yet, a fresh
    pre-session cookie is set on ``response`` (the sign-in page)."""
    secret = request.get(PRESESSION) or _secret(request)
    if secret is None:
        secret = secrets.token_urlsafe(32)
        request[PRESESSION] = secret
        if response is not None:
            set_cookie(request, response, PRESESSION_COOKIE, secret, None)
    return _derive(secret)


def _derive(secret: str) -> str:
    return hmac.new(secret.encode(), b"locus-dashboard-csrf", hashlib.sha256).hexdigest()


def check_csrf(request: web.Request, sent: str | None) -> None:
    """Refuse unless the request carries the right token and, when the browser names an
    Origin, it is this server (defence in depth for browsers that send it)."""
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        raise CsrfRefused(f"the request came from another site ({origin})")
    secret = _secret(request)
    token = sent or request.headers.get(CSRF_HEADER)
    if not secret or not token or not hmac.compare_digest(_derive(secret), token):
        raise CsrfRefused("the form's security token is missing or out of date")


def flash(request: web.Request, response: web.StreamResponse, message: str) -> None:
    """A one-time message for the next page (the result of a form post, after the redirect)."""
    set_cookie(request, response, FLASH_COOKIE, quote(message[:1000]), 60)


def take_flash(request: web.Request, response: web.StreamResponse) -> str | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if raw is None:
        return None
    response.del_cookie(FLASH_COOKIE, path="/")
    return unquote(raw) or None
