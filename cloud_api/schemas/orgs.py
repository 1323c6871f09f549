from __future__ import annotations

from typing import Literal

from cloud_api.domain.permissions import Role
from cloud_api.schemas.common import Body, Email, Id, Name, Out, Slug, Timestamped

HumanRole = Literal["owner", "member", "viewer"]


class OrgCreate(Body):
    name: Name
    slug: Slug


class OrgUpdate(Body):
    name: Name


class OrgOut(Timestamped):
    id: int
    name: str
    slug: str
    role: Role | None = None


class MemberAdd(Body):
    email: Email
    role: HumanRole


class MemberUpdate(Body):
    role: HumanRole


class MemberOut(Out):
    user_id: Id
    email: str
    name: str
    role: HumanRole
