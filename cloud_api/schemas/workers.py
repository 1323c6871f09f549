from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from cloud_api.schemas.common import MAX_INT, Body, Id, Out, Query, Timestamped
from cloud_api.schemas.projects import Remote
from cloud_api.schemas.tasks import ArtifactKind, TaskOut

ClaimToken = Annotated[str, StringConstraints(min_length=1, max_length=64)]
AttemptNumber = Annotated[int, Field(ge=1, le=2**31 - 1)]
WaitSeconds = Annotated[float, Field(ge=0, le=30, description="long-poll up to this long")]


class WorkerRegister(Body):
    host: Annotated[str, StringConstraints(max_length=255)] = ""
    capacity: Annotated[int, Field(ge=1, le=64)] = 1
    repositories: list[Remote] = Field(
        default_factory=list, max_length=200, description="git remotes of the repos it serves"
    )
    version: Annotated[str, StringConstraints(max_length=64)] = ""


class WorkerOut(Timestamped):
    id: int
    project_id: int
    name: str
    host: str
    capacity: int
    repositories: list[str]
    version: str
    last_seen_at: datetime
    current_task_ids: list[int] = Field(default_factory=list)


class ClaimIn(Body):
    wait_seconds: WaitSeconds = 0
    task_id: Id | None = Field(None, description="claim only this task (when it is queued)")
    exclude: list[Id] = Field(
        default_factory=list,
        max_length=100,
        description="do not claim these tasks (ones this worker's user just gave back)",
    )


class ClaimOut(Out):
    task: TaskOut
    attempt: int
    claim_token: str = Field(description="send with every write for this attempt (fencing)")
    lease_expires_at: datetime
    lease_seconds: float


class Fence(Body):
    """Every worker write names the attempt and claim token it holds; stale ones get 409."""

    attempt: AttemptNumber
    claim_token: ClaimToken


class HeartbeatOut(Out):
    status: str
    cancel: bool = Field(description="true: stop work on this task now")
    lease_expires_at: datetime | None


#: The statuses a worker may report about the task it holds (the cloud's table decides which
#: move each makes).
ReportedStatus = Literal[
    "running", "awaiting_review", "verification", "needs_input", "queued", "failed", "cancelled"
]


Count = Annotated[int, Field(ge=0, le=MAX_INT)]


class RunUsage(Body):
    """What the attempt's agent used, as its runner counted it (shown on the task page)."""

    input_tokens: Count = 0
    output_tokens: Count = 0
    cache_read_tokens: Count = 0
    cache_write_tokens: Count = 0
    turns: Count = 0
    cost_usd: Annotated[float, Field(ge=0, le=1_000_000)] = 0.0


class StatusIn(Fence):
    status: ReportedStatus
    reason: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    summary: Annotated[str, StringConstraints(max_length=100_000)] | None = None
    question: Annotated[str, StringConstraints(max_length=100_000)] | None = Field(
        None, description="with needs_input: what the agent asks the user"
    )
    usage: RunUsage | None = Field(None, description="tokens and cost of the attempt so far")


class LogIn(Fence):
    seq: Annotated[int, Field(ge=0, le=MAX_INT)]
    text: Annotated[str, StringConstraints(max_length=256 * 1024)]
    stream: Literal["agent", "stdout", "stderr", "system"] = "agent"


class LogOut(Out):
    event_id: int
    duplicate: bool


class ArtifactIn(Fence):
    kind: ArtifactKind
    media_type: Annotated[str, StringConstraints(max_length=100)] = "text/plain"
    content: Annotated[str, StringConstraints(max_length=8 * 1024 * 1024)]


class ReviewedFile(Body):
    """What a person decided about one file of the proposed change, in hunks."""

    path: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    accepted: Count = 0
    rejected: Count = 0
    edited: Count = Field(0, description="accepted as the person rewrote them")
    comments: list[Annotated[str, StringConstraints(max_length=10_000)]] = Field(
        default_factory=list, max_length=1000, description="why changes were rejected"
    )


class ReviewIn(Fence):
    """A person's review decisions on this attempt's change (the code stays on their machine:
    paths, counts and comments only)."""

    files: list[ReviewedFile] = Field(min_length=1, max_length=10_000)


class ReviewOut(Out):
    event_id: int


class SignalsQuery(Query):
    wait: WaitSeconds = 0
    after: int = Field(0, ge=0, le=MAX_INT, description="the cursor of the last answer")


class CancelSignal(Out):
    task_id: int
    attempt: int
    event_id: int


class SignalsOut(Out):
    cancellations: list[CancelSignal]
    cursor: int


class WorkerTaskCreate(Body):
    """A follow-up task proposed by the agent: lands in the backlog for a person to queue."""

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
    description: Annotated[str, StringConstraints(max_length=100_000)] = ""
    parent_task_id: Id | None = None
