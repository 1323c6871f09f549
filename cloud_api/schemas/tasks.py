from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from cloud_api.domain.remotes import fingerprint
from cloud_api.domain.states import Actor, TaskStatus
from cloud_api.schemas.common import MAX_INT, Body, Id, PageQuery, Text, Timestamped, omittable

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Priority = Annotated[int, Field(ge=-1000, le=1000, description="higher runs first")]
Version = Annotated[
    int,
    Field(ge=1, le=MAX_INT, description="the version you last saw; 409 if the task moved on"),
]
Repository = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    AfterValidator(fingerprint),
    Field(
        description="git remote of the repository the task is for; only workers serving it claim it"
    ),
]


Labels = Annotated[list[Label], Field(max_length=20)]
Person = Annotated[
    int,
    Field(ge=1, le=MAX_INT, description="a user id; a member of the project's organisation"),
]
Search = Annotated[
    str,
    # No NUL: PostgreSQL refuses it in text (the API refuses it in any query; the dashboard's
    # board reads its filters through this type).
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00]*$"),
    Field(
        description="words in the title or description (taken literally: % and _ are no "
        "wildcards), or a task number such as 12 or #12"
    ),
]


class TaskCreate(Body):
    title: Title
    description: Text = ""
    priority: Priority = 0
    labels: Labels = Field(default_factory=list)
    sprint_id: Id | None = None
    repository: Repository | None = None
    assignee_id: Person | None = None
    reviewer_id: Person | None = None
    status: Literal["backlog", "queued"] = Field(
        "backlog", description="create straight into the queue with 'queued'"
    )


class TaskUpdate(Body):
    """Send only the fields to change. ``null`` clears sprint_id, repository, assignee_id or
    reviewer_id; the other fields cannot be null (omit them to keep them)."""

    title: Title | SkipJsonSchema[None] = omittable()
    description: Text | SkipJsonSchema[None] = omittable()
    priority: Priority | SkipJsonSchema[None] = omittable()
    labels: Labels | SkipJsonSchema[None] = omittable()
    sprint_id: Id | None = None
    repository: Repository | None = None
    assignee_id: Person | None = None
    reviewer_id: Person | None = None
    version: Version | None = None


class TaskOut(Timestamped):
    id: int
    project_id: int
    sprint_id: int | None
    title: str
    description: str
    priority: int
    labels: list[str]
    repository: str | None
    # Defaults: a daemon reading an older cloud's tasks (before people) still reads them.
    assignee_id: int | None = None
    reviewer_id: int | None = None
    status: TaskStatus
    status_reason: str | None
    version: int
    attempt: int
    lease_owner_id: int | None
    lease_expires_at: datetime | None
    feedback: str | None
    summary: str | None
    updated_at: datetime
    queued_at: datetime | None


class TaskQuery(PageQuery):
    status: TaskStatus | None = None
    sprint_id: Id | None = None
    label: Label | None = None
    worker_id: Id | None = Field(None, description="tasks whose lease this worker holds")
    assignee_id: Id | None = Field(None, description="tasks assigned to this user")
    q: Search | None = None


class TaskAction(Body):
    """queue / cancel / retry / approve: optionally guarded by the version you last saw."""

    version: Version | None = None
    comment: Text | None = None


class FeedbackIn(Body):
    feedback: Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
    version: Version | None = None


class AnswerIn(Body):
    answer: Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
    version: Version | None = None


class CommentIn(Body):
    body: Annotated[str, StringConstraints(min_length=1, max_length=100_000)]


class EventOut(Timestamped):
    id: int
    task_id: int
    kind: str
    actor: Actor
    actor_id: int | None
    attempt: int
    from_status: TaskStatus | None
    to_status: TaskStatus | None
    seq: int | None
    data: dict[str, Any]


class EventQuery(PageQuery):
    kind: Annotated[str, StringConstraints(max_length=32)] | None = None


ArtifactKind = Literal["patch", "summary", "evidence", "log", "other"]


class ArtifactOut(Timestamped):
    id: int
    task_id: int
    attempt: int
    kind: ArtifactKind
    media_type: str
    sha256: str
    size: int


class ArtifactContent(ArtifactOut):
    content: str
