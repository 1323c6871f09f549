"""A timeline event as a sentence a person reads: "box picked it up (attempt 2)", "Ada moved it
to sprint Checkout", "Ada set the priority to P1 High" — not "Admin edited sprint_id".

Pure: an event and the names the page already has in, a list of pieces out, each plain text
(the template escapes it) and whether it is emphasised. Nothing here builds HTML."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cloud_api.domain.footprints import may_overlap
from cloud_api.domain.priorities import level_of
from cloud_api.domain.states import Actor, TaskStatus
from cloud_api.schemas.tasks import EventOut

S = TaskStatus

Piece = tuple[str, bool]


@dataclass(frozen=True)
class Names:
    workers: Mapping[int, str]
    users: Mapping[int, str]
    sprints: Mapping[int, str]

    def actor(self, event: EventOut) -> str:
        if event.actor is Actor.WORKER:
            return self.workers.get(event.actor_id or 0, "a worker")
        if event.actor is Actor.USER:
            return self.users.get(event.actor_id or 0, "someone")
        return "Locus"


#: (from, to, actor) → what the move means; ``None`` matches any source.
_MOVES: dict[tuple[TaskStatus | None, TaskStatus, Actor], str] = {
    (S.BACKLOG, S.QUEUED, Actor.USER): "queued it",
    (S.FAILED, S.QUEUED, Actor.USER): "retried it",
    (S.CANCELLED, S.QUEUED, Actor.USER): "retried it",
    (S.VERIFICATION, S.QUEUED, Actor.USER): "requested changes",
    (S.NEEDS_INPUT, S.QUEUED, Actor.USER): "answered the question and queued it",
    (None, S.QUEUED, Actor.WORKER): "gave it back to the queue",
    (None, S.QUEUED, Actor.SYSTEM): "put it back in the queue",
    (None, S.CLAIMED, Actor.WORKER): "picked it up",
    (S.CLAIMED, S.RUNNING, Actor.WORKER): "started working on it",
    (S.AWAITING_REVIEW, S.RUNNING, Actor.WORKER): "went back to work after the review",
    (None, S.NEEDS_INPUT, Actor.WORKER): "asked a question",
    (None, S.AWAITING_REVIEW, Actor.WORKER): "proposed a change for review",
    (None, S.VERIFICATION, Actor.WORKER): "accepted the change: it awaits approval",
    (None, S.DONE, Actor.USER): "approved it",
    (None, S.FAILED, Actor.WORKER): "failed it",
    (None, S.FAILED, Actor.SYSTEM): "marked it failed",
    (None, S.CANCELLED, Actor.USER): "cancelled it",
}

_ARTIFACTS = {
    "patch": "a patch",
    "evidence": "verification evidence",
    "summary": "a summary",
    "log": "a log",
}


def _status(event: EventOut) -> list[Piece]:
    target = event.to_status
    if target is None:
        return [("changed its status", False)]
    said = _MOVES.get((event.from_status, target, event.actor)) or _MOVES.get(
        (None, target, event.actor)
    )
    if said is None:
        source = event.from_status
        start: list[Piece] = [("moved it ", False)]
        if source is not None:
            start += [("from ", False), (source.value.replace("_", " "), True), (" ", False)]
        return [*start, ("to ", False), (target.value.replace("_", " "), True)]
    if target is S.CLAIMED:
        said += f" (attempt {event.attempt})"
    return [(said, False)]


_UNKNOWN = object()


def _field(name: str, value: Any, names: Names) -> list[Piece]:
    """One edited field, in words; ``value`` is the new value (absent in older events)."""
    if name == "description":
        return [("edited the description", False)]
    if value is _UNKNOWN:
        return [(f"edited the {name.removesuffix('_id').replace('_', ' ')}", False)]
    if name == "sprint_id":
        if value is None:
            return [("took it out of its sprint", False)]
        return [("moved it to sprint ", False), (names.sprints.get(value, f"#{value}"), True)]
    if name == "title":
        return [("renamed it to ", False), (str(value), True)]
    if name == "priority" and isinstance(value, int):
        level = level_of(value)
        return [("set the priority to ", False), (f"{level.p} {level.name}", True)]
    if name == "labels":
        if not value:
            return [("removed its labels", False)]
        return [("set the labels to ", False), (", ".join(map(str, value)), True)]
    if name == "assignee_id":
        if value is None:
            return [("unassigned it", False)]
        return [("assigned it to ", False), (names.users.get(value, f"user {value}"), True)]
    if name == "reviewer_id":
        if value is None:
            return [("removed its reviewer", False)]
        return [
            ("asked ", False),
            (names.users.get(value, f"user {value}"), True),
            (" to review it", False),
        ]
    if name == "repository":
        if value is None:
            return [("cleared the repository", False)]
        return [("set the repository to ", False), (str(value), True)]
    return [(f"edited {name}", False)]


#: The order an edit's parts are told in.
_FIELD_ORDER = (
    "title",
    "assignee_id",
    "reviewer_id",
    "sprint_id",
    "priority",
    "labels",
    "repository",
    "description",
)


def _updated(event: EventOut, names: Names) -> list[Piece]:
    fields = [str(f) for f in event.data.get("fields", [])]
    to = event.data.get("to")
    new = to if isinstance(to, dict) else {}
    fields.sort(key=lambda f: _FIELD_ORDER.index(f) if f in _FIELD_ORDER else len(_FIELD_ORDER))
    pieces: list[Piece] = []
    for i, name in enumerate(fields):
        if i:
            pieces.append((", " if i < len(fields) - 1 else " and ", False))
        pieces += _field(name, new.get(name, _UNKNOWN), names)
    return pieces or [("edited it", False)]


def _counted(file: Mapping[str, Any]) -> str:
    parts = [
        f"{file.get(key)} {word}"
        for key, word in (("accepted", "accepted"), ("edited", "edited"), ("rejected", "rejected"))
        if file.get(key)
    ]
    return ", ".join(parts) or "undecided"


def _review(event: EventOut) -> list[Piece]:
    """A person's review at their machine, as the daemon relayed it: per file, how many hunks
    were accepted, edited and rejected, and the reviewer's comments (quoted: their words)."""
    pieces: list[Piece] = [("relayed the review: ", False)]
    files = [f for f in event.data.get("files", []) if isinstance(f, dict)]
    for i, file in enumerate(files):
        if i:
            pieces.append(("; ", False))
        pieces += [(str(file.get("path", "?")), True), (f" {_counted(file)}", False)]
        comments = [str(c) for c in file.get("comments", [])]
        if comments:
            pieces.append((" — " + " / ".join(f"\u201c{c}\u201d" for c in comments), False))
    return pieces


def _overlap(event: EventOut) -> list[Piece]:
    """Conflict-aware dispatch handed the task out although its predicted files overlap a
    held task's (policy ``warn``, or the task was asked for by id)."""
    found = [o for o in event.data.get("overlaps", []) if isinstance(o, dict)]
    notes = [
        may_overlap(o.get("task_id", "?"), [str(f) for f in o.get("files", [])]) for o in found
    ]
    return [("handed it out although it ", False), ("; ".join(notes) or "may overlap", True)]


def describe(event: EventOut, names: Names) -> list[Piece]:
    """What happened, after the actor's name."""
    if event.kind == "status":
        return _status(event)
    if event.kind == "created":
        target = event.to_status.value if event.to_status else "backlog"
        return [("created it in ", False), (target.replace("_", " "), True)]
    if event.kind == "updated":
        return _updated(event, names)
    if event.kind == "comment":
        return [("commented", False)]
    if event.kind == "review":
        return _review(event)
    if event.kind == "overlap":
        return _overlap(event)
    if event.kind == "artifact":
        kind = _ARTIFACTS.get(str(event.data.get("kind")), "an artifact")
        return [(f"reported {kind} ({event.data.get('size', 0)} bytes)", False)]
    return [(event.kind, False)]
