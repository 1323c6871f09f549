"""The task page (description, timeline, live log, reported diff, summary, evidence, tokens and
cost, attempts) and every change a person makes to a task: create, edit, the status actions,
comments. The live endpoints (SSE, and the page's changing part alone) are here too."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from cloud_api.api import projects as projects_api
from cloud_api.api import tasks as tasks_api
from cloud_api.api import workers as workers_api
from cloud_api.api.errors import not_found
from cloud_api.dashboard import diffs, timeline
from cloud_api.dashboard.views.board import actions_for, member_names
from cloud_api.dashboard.views.projects import project_nav
from cloud_api.dashboard.web import (
    Handler,
    Visitor,
    action,
    done,
    fragment,
    local_path,
    page,
    respond,
)
from cloud_api.domain.states import HELD, TaskStatus, UserAction
from cloud_api.schemas.common import PageQuery
from cloud_api.schemas.tasks import (
    AnswerIn,
    CommentIn,
    EventOut,
    EventQuery,
    FeedbackIn,
    TaskAction,
    TaskCreate,
    TaskOut,
    TaskUpdate,
)

routes = web.RouteTableDef()

#: The status actions that need no words: one REST handler each (the bulk view uses them too).
SIMPLE = {
    UserAction.QUEUE: tasks_api.queue_task,
    UserAction.CANCEL: tasks_api.cancel_task,
    UserAction.RETRY: tasks_api.retry_task,
    UserAction.APPROVE: tasks_api.approve_task,
}
_DONE = {
    UserAction.QUEUE: "Queued: an agent will pick it up.",
    UserAction.CANCEL: "Cancelled: a worker holding it is told at once.",
    UserAction.RETRY: "Queued again.",
    UserAction.APPROVE: "Approved: the task is done.",
    UserAction.REQUEST_CHANGES: "Changes requested: the feedback goes to the next attempt.",
    UserAction.ANSWER: "Answered: the task is queued again with your answer.",
}
USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


@dataclass
class Attempt:
    number: int
    worker: str | None
    started: Any
    status: str
    reason: str | None = None
    usage: dict[str, float] = field(default_factory=dict)


def _add_usage(total: dict[str, float], usage: dict[str, Any]) -> None:
    for key in (*USAGE_FIELDS, "turns", "cost_usd"):
        total[key] = total.get(key, 0) + float(usage.get(key) or 0)


def attempts_of(events: list[EventOut], worker_names: dict[int, str]) -> list[Attempt]:
    """Each claim starts an attempt; its later status events say how it went."""
    found: dict[int, Attempt] = {}
    for event in events:
        if event.kind != "status":
            continue
        if event.to_status is TaskStatus.CLAIMED:
            worker = worker_names.get(event.actor_id or 0)
            found[event.attempt] = Attempt(event.attempt, worker, event.created_at, "claimed")
            continue
        attempt = found.get(event.attempt)
        if attempt is None or event.to_status is None:
            continue
        attempt.status = event.to_status.value
        attempt.reason = event.data.get("reason") or attempt.reason
        if isinstance(event.data.get("usage"), dict):
            _add_usage(attempt.usage, event.data["usage"])
    return sorted(found.values(), key=lambda a: a.number, reverse=True)


def log_sections(events: list[EventOut]) -> list[tuple[int, list[EventOut]]]:
    """The agent's log split by attempt, oldest first: each attempt is its own run."""
    sections: dict[int, list[EventOut]] = {}
    for event in events:
        if event.kind == "log":
            sections.setdefault(event.attempt, []).append(event)
    return sorted(sections.items())


async def _artifact(visitor: Visitor, artifacts: list[Any], kind: str) -> tuple[Any, str] | None:
    """The newest artifact of ``kind`` and its content."""
    latest = next((a for a in reversed(artifacts) if a.kind == kind), None)
    if latest is None:
        return None
    full = await visitor.call(tasks_api.get_artifact, path={"artifact_id": latest.id})
    return latest, full.content


def _evidence(content: str) -> dict[str, Any] | None:
    try:
        data = json.loads(content)
    except ValueError:
        return {"command": "?", "output_tail": content, "exit_code": None, "passed": False}
    return data if isinstance(data, dict) else None


def _held(summary: tuple[Any, str] | None, patch: tuple[Any, str] | None) -> dict[str, Any] | None:
    """The newest attempt's proposed diff, when the daemon kept it on the developer's machine
    (only its size came): what the page says instead of showing a diff."""
    if summary is None or (patch is not None and patch[0].attempt >= summary[0].attempt):
        return None
    try:
        data = json.loads(summary[1])
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("heldLocally") is not True:
        return None
    try:
        counts = {key: int(data.get(key, 0)) for key in ("files", "added", "removed")}
    except (TypeError, ValueError):
        return None
    return {**counts, "attempt": summary[0].attempt}


def _accepted(events: list[EventOut], attempt: int) -> bool:
    """Whether an attempt's newest patch is the one its developer accepted: the daemon sends
    the committed patch just before it reports ``verification``; a patch of an attempt that
    never got there was shared before review (``share_proposed_diffs``)."""
    return any(
        e.kind == "status" and e.to_status == TaskStatus.VERIFICATION and e.attempt == attempt
        for e in events
    )


async def task_context(visitor: Visitor) -> dict[str, Any]:
    task: TaskOut = await visitor.call(tasks_api.get_task)
    project = await project_nav(visitor, "board", task.project_id)
    path = {"project_id": task.project_id}
    events: list[EventOut] = await visitor.every(tasks_api.list_events, EventQuery)
    artifacts = await visitor.every(tasks_api.list_artifacts, PageQuery)
    workers = await visitor.every(workers_api.list_workers, PageQuery, path=path)
    sprints = await visitor.every(projects_api.list_sprints, PageQuery, path=path)
    names = {w.id: w.name for w in workers}
    people = await member_names(visitor, project.org_id)
    patch = await _artifact(visitor, artifacts, "patch")
    evidence = await _artifact(visitor, artifacts, "evidence")
    summary = await _artifact(visitor, artifacts, "summary")
    total: dict[str, float] = {}
    for event in events:
        if event.kind == "status" and isinstance(event.data.get("usage"), dict):
            _add_usage(total, event.data["usage"])
    who = timeline.Names(
        workers=names,
        users=people,
        sprints={s.id: s.name for s in sprints},
    )
    return {
        "task": task,
        "project": project,
        "people": people,
        "timeline": [
            (e, who.actor(e), timeline.describe(e, who)) for e in events if e.kind != "log"
        ],
        "log": log_sections(events),
        "after": events[-1].id if events else 0,
        "attempts": attempts_of(events, names),
        "worker_names": names,
        "sprints": sprints,
        "diff": diffs.parse(patch[1]) if patch else None,
        "patch_attempt": patch[0].attempt if patch else None,
        "patch_accepted": patch is not None and _accepted(events, patch[0].attempt),
        "held": _held(summary, patch),
        "evidence": _evidence(evidence[1]) if evidence else None,
        "evidence_attempt": evidence[0].attempt if evidence else None,
        "usage": total,
        "moves": actions_for(
            task.status.value, (UserAction.QUEUE, UserAction.APPROVE, UserAction.RETRY)
        ),
        "cancellable": bool(actions_for(task.status.value, (UserAction.CANCEL,))),
    }


@routes.get("/tasks/{task_id}", name="dashboard.task")
@page
async def task_page(visitor: Visitor) -> web.StreamResponse:
    return respond(visitor, "task.html", **await task_context(visitor))


@routes.get("/tasks/{task_id}/fragment", name="dashboard.task_fragment")
@fragment
async def task_fragment(visitor: Visitor) -> web.StreamResponse:
    """The part of the task page that changes as the task moves (the live refresh)."""
    context = await task_context(visitor)
    page_path = f"/tasks/{context['task'].id}"
    return respond(visitor, "_task_live.html", request_path=page_path, **context)


def _version(visitor: Visitor) -> int | None:
    raw = visitor.field("version")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 20 else None


def _labels(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


@routes.post("/projects/{project_id}/tasks")
@action
async def create_task(visitor: Visitor) -> web.StreamResponse:
    f = visitor.field
    values: dict[str, Any] = {
        "title": f("title"),
        "description": f("description"),
        "labels": _labels(f("labels")),
        "status": "queued" if f("queue") else "backlog",
    }
    for name in ("priority", "sprint_id", "repository"):
        if f(name):
            values[name] = f(name)
    task = await visitor.call(tasks_api.create_task, body=visitor.body(TaskCreate, **values))
    return done(visitor, f"/tasks/{task.id}", f"Task #{task.id} created ({task.status.value}).")


@routes.post("/tasks/{task_id}")
@action
async def edit_task(visitor: Visitor) -> web.StreamResponse:
    """Only the fields the form sends change: the backlog's priority arrows send one."""
    assert visitor.form is not None
    values: dict[str, Any] = {}
    for name in ("title", "description", "priority"):
        if name in visitor.form:
            values[name] = visitor.field(name)
    if "labels" in visitor.form:
        values["labels"] = _labels(visitor.field("labels"))
    for name in ("sprint_id", "repository", "assignee_id", "reviewer_id"):
        if name in visitor.form:
            values[name] = visitor.field(name) or None
    # The edit form sends every field: keep only real changes, so the timeline says what changed.
    sent = visitor.body(TaskUpdate, **values)
    current: TaskOut = await visitor.call(tasks_api.get_task)
    changed = {k: values[k] for k in values if getattr(sent, k) != getattr(current, k)}
    if not changed:
        return done(visitor, f"/tasks/{current.id}", "Nothing changed.")
    body = visitor.body(TaskUpdate, **changed, version=_version(visitor))
    task = await visitor.call(tasks_api.update_task, body=body)
    return done(visitor, f"/tasks/{task.id}", f"Task #{task.id} saved.")


@routes.get("/tasks/{task_id}/cancel", name="dashboard.confirm_cancel")
@page
async def confirm_cancel(visitor: Visitor) -> web.StreamResponse:
    """Cancelling is not undone by a click (a running agent stops and its work is lost), so
    the board's and the task page's Cancel lead here first: a page, which works without
    JavaScript. ``back`` is where to return, either way."""
    task: TaskOut = await visitor.call(tasks_api.get_task)
    await project_nav(visitor, "board", task.project_id)
    back = local_path(visitor.request.query.get("back", ""), f"/tasks/{task.id}")
    return respond(
        visitor,
        "confirm_cancel.html",
        task=task,
        back=back,
        cancellable=bool(actions_for(task.status.value, (UserAction.CANCEL,))),
        running=task.status in HELD,
    )


@routes.post("/tasks/{task_id}/{action}")
@action
async def task_action(visitor: Visitor) -> web.StreamResponse:
    name = visitor.request.match_info["action"]
    task_id = visitor.request.match_info["task_id"]
    where = f"/tasks/{task_id}"
    if name == "comment":
        await visitor.call(
            tasks_api.add_comment, body=visitor.body(CommentIn, body=visitor.field("body"))
        )
        return done(visitor, where, "Comment added.")
    try:
        act = UserAction(name)
    except ValueError:
        raise not_found(f"action {name!r}") from None
    version = _version(visitor)
    if act is UserAction.REQUEST_CHANGES:
        body = visitor.body(FeedbackIn, feedback=visitor.field("feedback"), version=version)
        await visitor.call(tasks_api.request_changes, body=body)
    elif act is UserAction.ANSWER:
        body = visitor.body(AnswerIn, answer=visitor.field("answer"), version=version)
        await visitor.call(tasks_api.answer_task, body=body)
    else:
        comment = visitor.field("comment") or None
        body = visitor.body(TaskAction, version=version, comment=comment)
        await visitor.call(SIMPLE[act], body=body)
    return done(visitor, where, _DONE[act])


def _live(stream: Callable[..., Awaitable[web.StreamResponse]]) -> Handler:
    """A page's one SSE connection: the REST stream of its task or project, from ``?after=``
    (the newest event the page was rendered with) or ``Last-Event-ID``."""

    @fragment
    async def live(visitor: Visitor) -> web.StreamResponse:
        query = visitor.query(tasks_api.StreamQuery, "after")
        response: web.StreamResponse = await visitor.call(stream, query=query)
        return response

    return live


routes.get("/tasks/{task_id}/live", name="dashboard.task_live")(_live(tasks_api.stream_task_events))
routes.get("/projects/{project_id}/live", name="dashboard.project_live")(
    _live(tasks_api.stream_project_events)
)
