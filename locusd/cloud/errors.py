"""What can go wrong talking to the cloud, sorted by what the caller should do about it.

``retryable`` is the one bit the outbox and the worker loop act on: a network failure, a 5xx, a
429 or a 409 that asks to be retried (``Retry-After``; older clouds sent it while an
``Idempotency-Key`` was in flight)
may succeed later with the same request; any other 4xx will fail the same way every time.
"""

from __future__ import annotations

from typing import Any

from cloud_api.schemas.common import FieldError


class CloudError(Exception):
    """A cloud request failed; ``status`` is None when no HTTP answer came back."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        title: str | None = None,
        detail: str | None = None,
        errors: list[FieldError] | None = None,
        current: dict[str, Any] | None = None,
        retry_after: float | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.current = current
        self.retry_after = retry_after
        self.retryable = retryable


class CloudUnavailable(CloudError):
    """No answer: connection refused, DNS, TLS, timeout. Retryable."""


class ServerError(CloudError):
    """A 5xx: the cloud (or a proxy in front of it) failed. Retryable."""


class RateLimited(CloudError):
    """429: slow down (``retry_after`` says how long, when the cloud says). Retryable."""


class AuthError(CloudError):
    """401: the token is missing, wrong, expired or revoked: log in again."""


class Forbidden(CloudError):
    """403: the token is valid but may not do this (e.g. a user token on a worker endpoint)."""


class NotFound(CloudError):
    """404: no such resource, or no access to it."""


class Conflict(CloudError):
    """409: the resource moved on (``current`` holds its state), e.g. a stale fence: stop."""


class InvalidRequest(CloudError):
    """400/422, or a body refused before sending: ``errors`` names each field."""


class BadResponse(CloudError):
    """A 2xx whose body is not what the REST contract says (a proxy, or a version skew)."""


_BY_STATUS: dict[int, type[CloudError]] = {
    400: InvalidRequest,
    401: AuthError,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: InvalidRequest,
    429: RateLimited,
}


def error_for_status(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    errors: list[FieldError] | None = None,
    current: dict[str, Any] | None = None,
    retry_after: float | None = None,
) -> CloudError:
    """The exception for an HTTP error answer (problem+json already parsed)."""
    cls = ServerError if status >= 500 else _BY_STATUS.get(status, CloudError)
    retryable = (
        status >= 500
        or status in (408, 429)
        # A 409 with Retry-After asks for the same request again (older clouds: a key in flight).
        or (status == 409 and retry_after is not None)
    )
    message = f"{status} {title}" + (f": {detail}" if detail else "")
    return cls(
        message,
        status=status,
        title=title,
        detail=detail,
        errors=errors,
        current=current,
        retry_after=retry_after,
        retryable=retryable,
    )
