from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from cloud_api.schemas.common import Body, Email, Id, Name, Out, Timestamped

Password = Annotated[str, StringConstraints(min_length=8, max_length=1024)]


class LoginIn(Body):
    email: Email
    password: Annotated[str, StringConstraints(max_length=1024)]


class UserOut(Timestamped):
    id: int
    email: str
    name: str
    is_admin: bool


class LoginOut(Out):
    token: str = Field(description="send as 'Authorization: Bearer <token>'")
    expires_at: datetime | None
    user: UserOut


class UserCreate(Body):
    email: Email
    name: Name
    password: Password
    is_admin: bool = False


class MembershipOut(Out):
    org_id: int
    org_slug: str
    role: str


class MeOut(Out):
    user: UserOut | None = Field(description="null for a worker token")
    token_scope: str
    worker_name: str | None = None
    project_id: Id | None = None
    memberships: list[MembershipOut]
