"""Problem details (RFC 9457): every error the API returns, and how exceptions become them."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from cloud_api.schemas.common import FieldError, Problem
from cloud_api.services import SETTINGS

log = logging.getLogger("cloud_api")
PROBLEM_JSON = "application/problem+json"
#: nginx's "client closed request": what a request counts as when its client hung up.
CLIENT_CLOSED = 499


class ApiError(Exception):
    """Raise from a handler to answer with a problem+json body."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        errors: list[FieldError] | None = None,
        current: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.problem = Problem(
            type=f"urn:locus:problem:{status}",
            title=title,
            status=status,
            detail=detail,
            errors=errors,
            current=current,
        )
        self.headers = headers or {}


def not_found(what: str) -> ApiError:
    return ApiError(404, "Not found", f"{what} does not exist or you have no access to it")


def conflict(detail: str, current: dict[str, Any] | None = None) -> ApiError:
    return ApiError(409, "Conflict", detail, current=current)


def forbidden(detail: str) -> ApiError:
    return ApiError(403, "Forbidden", detail)


def unauthorized(detail: str) -> ApiError:
    return ApiError(
        401, "Unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="locus"'}
    )


_FIXES = {
    "missing": "add this field",
    "extra_forbidden": "remove this field; it is not part of the request",
    "string_too_long": "shorten it",
    "string_too_short": "make it longer",
    "string_pattern_mismatch": "use the documented format",
    "too_long": "send fewer items",
    "greater_than_equal": "use a larger number",
    "less_than_equal": "use a smaller number",
    "int_parsing": "send a whole number",
    "int_type": "send a whole number",
    "string_type": "send a string",
    "bool_parsing": "send true or false",
    "literal_error": "use one of the listed values",
    "enum": "use one of the listed values",
}


def validation_problem(exc: ValidationError, location: str) -> ApiError:
    """Turn pydantic errors into 422 naming each field, what is wrong, and how to fix it."""
    errors: list[FieldError] = []
    for err in exc.errors(include_url=False):
        if err["type"] == "json_invalid":
            return ApiError(
                400,
                "Malformed JSON",
                f"the request body is not valid JSON: {err['ctx'].get('error', err['msg'])}"
                if err.get("ctx")
                else "the request body is not valid JSON",
            )
        field = ".".join(str(part) for part in err["loc"]) or "(body)"
        errors.append(
            FieldError(
                location=location, field=field, message=err["msg"], fix=_FIXES.get(err["type"])
            )
        )
    names = ", ".join(f"{e.field} ({e.message})" for e in errors[:5])
    return ApiError(422, "Invalid request", f"invalid {location}: {names}", errors=errors)


def field_problem(location: str, field: str, message: str, fix: str | None = None) -> ApiError:
    return ApiError(
        422,
        "Invalid request",
        f"invalid {location}: {field} ({message})",
        errors=[FieldError(location=location, field=field, message=message, fix=fix)],
    )


def problem_response(problem: Problem, headers: Iterable[tuple[str, str]] = ()) -> web.Response:
    return web.Response(
        status=problem.status,
        body=problem.model_dump_json(exclude_none=True).encode(),
        content_type=PROBLEM_JSON,
        headers=dict(headers),
    )


@web.middleware
async def problem_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """The outermost net: aiohttp's own HTTP errors and any crash become problem+json too."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ApiError as exc:
        return problem_response(exc.problem, exc.headers.items())
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else None
        if exc.status == 413:
            limit = request.app[SETTINGS].max_body_bytes
            detail = f"the request body is too large (limit {limit} bytes)"
        problem = Problem(
            type=f"urn:locus:problem:{exc.status}",
            title=exc.reason,
            status=exc.status,
            detail=detail,
        )
        headers = [(k, v) for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")]
        return problem_response(problem, headers)
    except ConnectionResetError:
        # aiohttp raises this from a body read or a write once the client has hung up: nobody
        # to answer and nothing failed here, so no error is logged and no 500 is counted.
        transport = request.transport
        if transport is None or transport.is_closing():
            log.debug("client hung up on %s %s", request.method, request.path)
            return web.Response(status=CLIENT_CLOSED, reason="Client Closed Request")
        return _internal_error(request)
    except DBAPIError as exc:
        if not write_race(exc):
            return _internal_error(request)
        log.info("write race on %s %s: %s", request.method, request.path, exc.orig)
        return problem_response(
            conflict(
                "another request wrote the same rows at the same moment and the database chose"
                " this one to give way (nothing of it was kept); send it again"
            ).problem,
            [("Retry-After", "1")],  # a 409 without it is final to a worker (it would give up)
        )
    except Exception:
        return _internal_error(request)


#: PostgreSQL's SQLSTATEs for a transaction the database aborted to let another through: a
#: deadlock and a serialization failure. Sending the request again is the cure.
WRITE_RACE_STATES = frozenset({"40P01", "40001"})


def write_race(exc: DBAPIError) -> bool:
    """Whether the database aborted this transaction for another's sake (the client may retry)."""
    return getattr(exc.orig, "sqlstate", None) in WRITE_RACE_STATES


def _internal_error(request: web.Request) -> web.Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return problem_response(
        Problem(
            type="urn:locus:problem:500",
            title="Internal Server Error",
            status=500,
            detail="the server failed; the error is in its log",
        )
    )
