from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, ValidationInfo, field_validator
from pydantic.json_schema import SkipJsonSchema

from cloud_api.domain.footprints import OverlapPolicy
from cloud_api.domain.permissions import Role
from cloud_api.domain.remotes import fingerprint
from cloud_api.schemas.common import Body, Id, Name, Out, Slug, Text, Timestamped, omittable

Remote = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    AfterValidator(fingerprint),
    Field(description="a git remote URL; stored as its fingerprint host/owner/repo"),
]


class ProjectCreate(Body):
    org_id: Id
    name: Name
    slug: Slug
    remotes: list[Remote] = Field(default_factory=list, max_length=50)


_OVERLAP = (
    "conflict-aware dispatch: 'avoid' (a claim passes over a queued task whose predicted "
    "files overlap a held task's), 'warn' (hand it out, record the overlap), 'ignore'"
)


class ProjectUpdate(Body):
    name: Name | None = None
    remotes: list[Remote] | None = Field(None, max_length=50)
    dispatch_overlap: OverlapPolicy | None = Field(None, description=_OVERLAP)


class ProjectOut(Timestamped):
    id: int
    org_id: int
    name: str
    slug: str
    remotes: list[str]
    # A default: the daemon reads this model from clouds that predate the field.
    dispatch_overlap: OverlapPolicy = Field(OverlapPolicy.AVOID, description=_OVERLAP)
    role: Role | None = None


SprintState = Literal["planned", "active", "closed"]


class _SprintDates(Body):
    starts_on: date | None = None
    ends_on: date | None = None

    @field_validator("ends_on")
    @classmethod
    def _ordered(cls, ends_on: date | None, info: ValidationInfo) -> date | None:
        # A field validator (not a model one), so the 422 names ends_on rather than the body.
        starts_on = info.data.get("starts_on")
        if starts_on and ends_on and ends_on < starts_on:
            raise ValueError("ends_on is before starts_on: swap them or move ends_on later")
        return ends_on


class SprintCreate(_SprintDates):
    name: Name
    goal: Text = ""
    state: SprintState = "planned"


class SprintUpdate(_SprintDates):
    """Send only the fields to change; name, goal and state cannot be null."""

    name: Name | SkipJsonSchema[None] = omittable()
    goal: Text | SkipJsonSchema[None] = omittable()
    state: SprintState | SkipJsonSchema[None] = omittable()


class SprintOut(Timestamped):
    id: int
    project_id: int
    name: str
    goal: str
    state: SprintState
    starts_on: date | None
    ends_on: date | None


class SprintQueued(Out):
    sprint_id: int
    queued: list[int] = Field(description="the tasks moved from backlog to queued, in order")
