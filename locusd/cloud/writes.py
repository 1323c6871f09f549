"""The worker's writes to the cloud as data: what the daemon puts in the outbox, and how each
kind is sent. Bodies are plain JSON built from the REST contract's field names
(:mod:`cloud_api.schemas`), so an entry enqueued now is sent byte for byte the same after a
restart — which is what lets the ``Idempotency-Key`` turn a resend into a replay.

    uploads.enqueue("status", task_id, status_body(fence, "running"), checkout=checkout)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from cloud_api.schemas.graph import GraphUploadOut, GraphUpsert
from cloud_api.schemas.plans import PlanOut, PlanReport, ProposalIn
from cloud_api.schemas.tasks import ArtifactKind, ArtifactOut, TaskOut
from cloud_api.schemas.workers import (
    ArtifactIn,
    ClaimOut,
    Fence,
    LogIn,
    LogOut,
    ReportedStatus,
    ReviewedFile,
    ReviewIn,
    ReviewOut,
    RunUsage,
    StatusIn,
    WorkerTaskCreate,
)
from locusd.agent.transcript import Ending

WriteKind = Literal["status", "log", "artifact", "follow_up", "review", "plan_report", "graph"]
LogStream = Literal["agent", "stdout", "stderr", "system"]


@dataclass(frozen=True)
class WriteSpec:
    """Where a kind of write goes, what its body must be, what comes back, and which of its
    fields are free text — written by the agent, its commands or the repository, so scrubbed
    before they leave (:mod:`locusd.cloud.uploads`). Every other string field is the protocol's
    own (a claim token, a status name); a test keeps the two lists covering the contract."""

    path: str  # under /api/v1, with {task_id} for the fenced ones, {project_id} for the graph
    body: type[BaseModel]
    response: type[BaseModel]
    text: tuple[str, ...]


WRITES: dict[str, WriteSpec] = {
    "status": WriteSpec(
        "/worker/tasks/{task_id}/status", StatusIn, TaskOut, ("reason", "summary", "question")
    ),
    "log": WriteSpec("/worker/tasks/{task_id}/logs", LogIn, LogOut, ("text",)),
    "artifact": WriteSpec(
        "/worker/tasks/{task_id}/artifacts", ArtifactIn, ArtifactOut, ("content",)
    ),
    "follow_up": WriteSpec("/worker/tasks", WorkerTaskCreate, TaskOut, ("title", "description")),
    # paths and the reviewer's comments: scrubbed string by string
    "review": WriteSpec("/worker/tasks/{task_id}/review", ReviewIn, ReviewOut, ("files",)),
    # a planning request's proposals (the entry's task id is the request's id): each string
    "plan_report": WriteSpec(
        "/worker/plans/{task_id}/report", PlanReport, PlanOut, ("proposals", "reason")
    ),
    # metadata only (locusd/graph/payload.py), yet paths and names are the repository's
    # text: scrubbed string by string, so a node's key and an edge's end stay the same string
    "graph": WriteSpec(
        "/worker/projects/{project_id}/graph", GraphUpsert, GraphUploadOut, ("nodes", "edges")
    ),
}

#: The string fields of the writes that are the protocol's own, never free text.
PROTOCOL_FIELDS = frozenset({"claim_token", "status", "stream", "kind", "media_type"})


def to_json(model: BaseModel) -> dict[str, Any]:
    """A body from an unvalidated model (``model_construct``): the cloud validates it, once,
    so the client sends what it was given (a remote as the user wrote it, not a fingerprint
    of it). Nulls are left out."""
    return model.model_dump(mode="json", exclude_none=True)


def fence_of(claim: ClaimOut) -> Fence:
    """The fence every write about a claimed task must carry."""
    return Fence(attempt=claim.attempt, claim_token=claim.claim_token)


def status_body(
    fence: Fence,
    status: ReportedStatus,
    *,
    reason: str | None = None,
    summary: str | None = None,
    question: str | None = None,
    usage: RunUsage | None = None,
) -> dict[str, Any]:
    return to_json(
        StatusIn.model_construct(
            attempt=fence.attempt,
            claim_token=fence.claim_token,
            status=status,
            reason=reason,
            summary=summary,
            question=question,
            usage=usage,
        )
    )


def log_body(fence: Fence, seq: int, text: str, stream: LogStream = "agent") -> dict[str, Any]:
    return to_json(
        LogIn.model_construct(
            attempt=fence.attempt, claim_token=fence.claim_token, seq=seq, text=text, stream=stream
        )
    )


def artifact_body(
    fence: Fence, kind: ArtifactKind, content: str, media_type: str = "text/plain"
) -> dict[str, Any]:
    return to_json(
        ArtifactIn.model_construct(
            attempt=fence.attempt,
            claim_token=fence.claim_token,
            kind=kind,
            content=content,
            media_type=media_type,
        )
    )


def review_body(fence: Fence, files: list[ReviewedFile]) -> dict[str, Any]:
    return to_json(
        ReviewIn.model_construct(attempt=fence.attempt, claim_token=fence.claim_token, files=files)
    )


def follow_up_body(
    title: str, description: str = "", parent_task_id: int | None = None
) -> dict[str, Any]:
    return to_json(
        WorkerTaskCreate.model_construct(
            title=title, description=description, parent_task_id=parent_task_id
        )
    )


def plan_report_body(
    fence: Fence, proposals: list[ProposalIn], reason: str | None = None
) -> dict[str, Any]:
    return to_json(
        PlanReport.model_construct(
            attempt=fence.attempt,
            claim_token=fence.claim_token,
            proposals=proposals,
            reason=reason,
        )
    )


def usage_of(report: Ending) -> RunUsage:
    """Tokens and cost of a run, for the task page (counts only: nothing of the code)."""
    return RunUsage(
        input_tokens=report.usage.input_tokens,
        output_tokens=report.usage.output_tokens,
        cache_read_tokens=report.usage.cache_read_tokens,
        cache_write_tokens=report.usage.cache_write_tokens,
        turns=report.turns,
        cost_usd=round(report.cost_usd, 6),
    )
