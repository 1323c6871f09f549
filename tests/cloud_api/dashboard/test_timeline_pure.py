"""Timeline sentences (cloud_api/dashboard/timeline.py) for events the browser test does not
make: older edits without their new values, moves with no phrase of their own."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cloud_api.dashboard.timeline import Names, describe
from cloud_api.schemas.tasks import EventOut

NAMES = Names(workers={7: "box"}, users={1: "Ada"}, sprints={3: "Checkout"})


def event(kind: str, actor: str = "user", **fields: Any) -> EventOut:
    values: dict[str, Any] = {
        "id": 1,
        "task_id": 1,
        "kind": kind,
        "actor": actor,
        "actor_id": 1,
        "attempt": 2,
        "from_status": None,
        "to_status": None,
        "seq": None,
        "data": {},
        "created_at": datetime.now(UTC),
    }
    return EventOut.model_validate(values | fields)


def text(e: EventOut) -> str:
    return "".join(piece for piece, _ in describe(e, NAMES))


def test_an_edit_names_what_changed_in_words() -> None:
    new = {"fields": ["labels", "sprint_id"], "to": {"labels": [], "sprint_id": None}}
    assert text(event("updated", data=new)) == "took it out of its sprint and removed its labels"
    to_sprint = {"fields": ["sprint_id"], "to": {"sprint_id": 3}}
    assert text(event("updated", data=to_sprint)) == "moved it to sprint Checkout"
    low = {"fields": ["priority"], "to": {"priority": -4}}
    assert text(event("updated", data=low)) == "set the priority to P3 Low"


def test_an_older_edit_without_values_still_reads_as_words() -> None:
    old = {"fields": ["description", "sprint_id"]}
    assert text(event("updated", data=old)) == "edited the sprint and edited the description"


def test_status_moves() -> None:
    claim = event("status", "worker", from_status="queued", to_status="claimed")
    assert text(claim) == "picked it up (attempt 2)"
    assert NAMES.actor(claim) == "a worker"  # not one of this project's workers
    assert NAMES.actor(event("status", "worker", actor_id=7)) == "box"
    assert NAMES.actor(event("comment")) == "Ada"
    retried = event("status", from_status="cancelled", to_status="queued")
    assert text(retried) == "retried it"
    odd = event("status", "system", from_status="running", to_status="queued")
    assert text(odd) == "put it back in the queue"


def test_people_on_a_task_are_named() -> None:
    both = {"fields": ["reviewer_id", "assignee_id"], "to": {"assignee_id": 1, "reviewer_id": 9}}
    assert text(event("updated", data=both)) == "assigned it to Ada and asked user 9 to review it"
    off = {
        "fields": ["assignee_id", "reviewer_id"],
        "to": {"assignee_id": None, "reviewer_id": None},
    }
    assert text(event("updated", data=off)) == "unassigned it and removed its reviewer"


def test_a_review_reads_as_counts_and_the_reviewers_words() -> None:
    files = [
        {"path": "stats.py", "accepted": 2, "rejected": 0, "edited": 1, "comments": []},
        {"path": "[b]x.md", "accepted": 0, "rejected": 1, "edited": 0, "comments": ["no <b>"]},
    ]
    review = event("review", "worker", actor_id=7, data={"files": files})
    assert text(review) == (
        "relayed the review: stats.py 2 accepted, 1 edited; [b]x.md 1 rejected — \u201cno <b>\u201d"
    )
    assert [p for p, bold in describe(review, NAMES) if bold] == ["stats.py", "[b]x.md"]
