from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from cloud_api.schemas.common import Body, Timestamped

WorkerName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"),
    Field(description="letters, digits, '.', '_' and '-'; e.g. the machine's host name"),
]


class TokenCreate(Body):
    worker_name: WorkerName
    expires_in_days: Annotated[int, Field(ge=1, le=3650)] | None = 365
    label: Annotated[str, StringConstraints(max_length=200)] = ""


class TokenOut(Timestamped):
    id: int
    scope: str
    prefix: str = Field(description="the first characters, to recognise a token")
    project_id: int | None
    worker_name: str | None
    label: str
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="shown once; only its hash is stored")
