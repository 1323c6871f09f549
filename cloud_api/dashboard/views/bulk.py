"""Bulk moves from the board: the selected cards to one status, each through the REST
handler of the move it needs (so the permission check, the state table and the timeline are
the one write path's), one task at a time.

Partial by design: every task that may move, moves; each one that may not is listed with the
reason (the API's own refusal), and the others are not rolled back. Cancelling asks first, on
a page that lists the tasks (it works without JavaScript)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy import select

from cloud_api.api.errors import ApiError, field_problem
from cloud_api.dashboard.moves import CONFIRM, TARGETS, move_for
from cloud_api.dashboard.views.projects import project_nav
from cloud_api.dashboard.views.tasks import SIMPLE
from cloud_api.dashboard.web import Visitor, action, done, local_path, respond
from cloud_api.domain.permissions import Action
from cloud_api.domain.states import TaskStatus
from cloud_api.schemas.common import parse_id
from cloud_api.schemas.tasks import TaskAction
from cloud_api.store.tables import tasks

routes = web.RouteTableDef()

#: A board holds many cards, but one request moves at most this many.
MAX_TASKS = 200


@dataclass(frozen=True)
class Outcome:
    moved: list[int]
    refused: list[tuple[int, str]]

    def message(self, target: TaskStatus) -> str:
        """The flash after a bulk move; it starts with 'Not done' (shown as an error) only
        when nothing moved."""
        parts = []
        if self.moved:
            ids = ", ".join(f"#{i}" for i in self.moved)
            count = f"{len(self.moved)} task{'s' if len(self.moved) != 1 else ''}"
            parts.append(f"Moved {count} to {TARGETS[target].lower()}: {ids}.")
        if self.refused:
            why = "; ".join(f"#{i}: {reason}" for i, reason in self.refused)
            parts.append(f"{'Not done' if not self.moved else 'Not moved'}: {why}.")
        return " ".join(parts)


def _target(visitor: Visitor) -> TaskStatus:
    raw = visitor.field("to")
    for target in TARGETS:
        if raw == target.value:
            return target
    names = ", ".join(t.value for t in TARGETS)
    raise field_problem("form", "to", f"{raw!r} is not a status cards move to", f"one of {names}")


def _selected(visitor: Visitor) -> list[int]:
    assert visitor.form is not None
    ids: list[int] = []
    for raw in visitor.form.getall("task", []):
        task_id = parse_id(raw) if isinstance(raw, str) else None
        if task_id is None:
            raise field_problem("form", "task", f"{raw!r} is not a task number", "select cards")
        if task_id not in ids:
            ids.append(task_id)
    if not ids:
        raise field_problem("form", "task", "no task selected", "tick the cards to move first")
    if len(ids) > MAX_TASKS:
        raise field_problem(
            "form", "task", f"{len(ids)} tasks selected", f"move at most {MAX_TASKS} at once"
        )
    return ids


async def _rows(visitor: Visitor, project_id: int, ids: list[int]) -> dict[int, Any]:
    stmt = select(tasks.c.id, tasks.c.title, tasks.c.status, tasks.c.version).where(
        tasks.c.project_id == project_id, tasks.c.id.in_(ids)
    )
    async with visitor.ctx.db.read() as conn:
        return {row.id: row for row in (await conn.execute(stmt)).all()}


async def move_all(
    visitor: Visitor, rows: dict[int, Any], ids: list[int], target: TaskStatus
) -> Outcome:
    """Move each selected task that is on this board; what may not move says why."""
    moved: list[int] = []
    refused: list[tuple[int, str]] = []
    for task_id in ids:
        row = rows.get(task_id)
        if row is None:
            refused.append((task_id, "not a task of this project"))
            continue
        act = move_for(TaskStatus(row.status), target)
        if act is None:
            refused.append((task_id, f"a {row.status.replace('_', ' ')} task cannot move there"))
            continue
        body = TaskAction(version=row.version)
        try:
            await visitor.call(SIMPLE[act], body=body, path={"task_id": task_id})
        except ApiError as exc:
            refused.append((task_id, exc.problem.detail or exc.problem.title))
            continue
        moved.append(task_id)
    return Outcome(moved, refused)


@routes.post("/projects/{project_id}/bulk", name="dashboard.bulk")
@action
async def bulk_move(visitor: Visitor) -> web.StreamResponse:
    project = await project_nav(visitor, "board")
    await visitor.ctx.require(project.id, Action.WRITE_TASKS)  # a viewer: 403, not N refusals
    board = f"/projects/{project.id}"
    back = local_path(visitor.field("next"), board)
    target = _target(visitor)
    ids = _selected(visitor)
    rows = await _rows(visitor, project.id, ids)
    if target in CONFIRM and visitor.field("confirm") != "yes":
        return respond(
            visitor,
            "confirm_bulk.html",
            project=project,
            target=target,
            target_name=TARGETS[target],
            chosen=[rows[i] for i in ids if i in rows],
            back=back,
        )
    outcome = await move_all(visitor, rows, ids, target)
    return done(visitor, board, outcome.message(target))
