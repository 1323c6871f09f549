"""Planning requests: a person asks (goal text), a worker claims one and reports the planning
run's proposals (titles, descriptions, likely file paths: nothing else of the code), a person
accepts some or all into the backlog."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from cloud_api.schemas.common import Body, Out, Timestamped
from cloud_api.schemas.tasks import TaskOut
from cloud_api.schemas.workers import AttemptNumber, ClaimToken, WaitSeconds

MAX_PROPOSALS = 10
Goal = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=4000),
    Field(description="what the proposed tasks should achieve (the agent reads it as data)"),
]
ProposalTitle = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\n\r]*\S[^\n\r]*$")
]
LikelyFile = Annotated[str, StringConstraints(min_length=1, max_length=300)]


class PlanCreate(Body):
    goal: Goal


class ProposalIn(Body):
    title: ProposalTitle
    description: Annotated[str, StringConstraints(max_length=4000)] = ""
    likely_files: list[LikelyFile] = Field(default_factory=list, max_length=20)


class ProposalOut(Out):
    number: int = Field(description="1, 2, … in the order proposed")
    title: str
    description: str
    likely_files: list[str]
    task_id: int | None = Field(description="the backlog task made of it, once accepted")


class PlanOut(Timestamped):
    id: int
    project_id: int
    goal: str
    status: Literal["pending", "planning", "proposed", "failed"]
    requested_by: int | None
    worker_id: int | None
    reason: str | None = Field(description="why the planning run gave no proposals")
    proposals: list[ProposalOut]
    updated_at: datetime


class PlanAccept(Body):
    numbers: list[Annotated[int, Field(ge=1, le=MAX_PROPOSALS)]] = Field(
        min_length=1, max_length=MAX_PROPOSALS, description="the proposals to make tasks of"
    )


class PlanAccepted(Out):
    plan: PlanOut
    created: list[TaskOut] = Field(description="tasks this call created (none on a repeat)")


class PlanClaimIn(Body):
    wait_seconds: WaitSeconds = 0


class PlanClaimOut(Out):
    plan: PlanOut
    attempt: int
    claim_token: str = Field(description="send with the report (fencing)")
    lease_expires_at: datetime


class PlanReport(Body):
    """The planning run's end: its proposals, or (none) the reason it gave none."""

    attempt: AttemptNumber
    claim_token: ClaimToken
    proposals: list[ProposalIn] = Field(default_factory=list, max_length=MAX_PROPOSALS)
    reason: Annotated[str, StringConstraints(max_length=2000)] | None = None
