"""Building blocks shared by every REST body: bounded scalars, pages, problem details."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

T = TypeVar("T")

# Integers are bounded so nothing beyond 64 bits ever reaches the database (SQLite raises
# OverflowError on them, which would surface as a 500).
MAX_INT = 2**63 - 1
#: ``Idempotency-Key``: what the server accepts and the OpenAPI document states (printable
#: ASCII, as HTTP header values should be; a UUID fits).
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7e]{1,255}$"


def parse_id(raw: str) -> int | None:
    """An id written in text (a path segment, ``Last-Event-ID``): ASCII digits from 1 to
    MAX_INT, else None. The length is checked before ``int()``, which raises ValueError beyond
    4,300 digits (a 500 once); ``isascii``: ``'²'.isdigit()`` is true too."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(MAX_INT)):
        return None
    value = int(raw)
    return value if 1 <= value <= MAX_INT else None


Id = Annotated[int, Field(ge=1, le=MAX_INT)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Slug = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$"),
    Field(description="lower-case letters, digits and '-', at most 63 characters"),
]
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_lower=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$"
    ),
    Field(description="an e-mail address such as ada@example.com"),
]
Text = Annotated[str, StringConstraints(max_length=100_000)]


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def omittable() -> Any:
    """A field that may be left out but not sent as null: its schema shows the plain type
    (no null default), and the handler refuses an explicit null with a 422 naming it. Declare
    it as ``X | SkipJsonSchema[None] = omittable()``, with X's constraints inside X."""
    return Field(None, json_schema_extra=_drop_default)


class Body(BaseModel):
    """A request body: unknown fields are an error (they are almost always a typo), and so is
    a value of the wrong JSON type (strict: `false` or `"5"` is not a number; found by fuzzing,
    the schema says integer). JSON strings still parse into dates."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, strict=True)


class Out(BaseModel):
    """A response body."""

    model_config = ConfigDict(from_attributes=True)


class Query(BaseModel):
    """Query-string parameters of a list endpoint."""

    model_config = ConfigDict(extra="forbid")


class PageQuery(Query):
    limit: int = Field(50, ge=1, le=200, description="items per page")
    after: int = Field(0, ge=0, le=MAX_INT, description="cursor: the next_cursor of the last page")


class FieldError(BaseModel):
    location: str = Field(description="body, query, path or header")
    field: str = Field(description="dotted path of the offending field, e.g. 'labels.2'")
    message: str
    fix: str | None = None


class Problem(BaseModel):
    """RFC 9457 problem details: every 4xx/5xx body, served as application/problem+json."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = None
    current: dict[str, Any] | None = Field(
        None, description="the resource's current state, on a 409 conflict"
    )


class Page(Out, Generic[T]):
    items: list[T]
    next_cursor: int | None = Field(
        description="pass as ?after= for the next page; null at the end"
    )


class Timestamped(Out):
    created_at: datetime
