"""The board: six columns grouping the statuses a team acts on (``groups.COLUMNS``), filters,
counts, and buttons (or drag) for the moves a person may make. The columns are also served
alone, for the live refresh."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import func, select

from cloud_api.api import orgs as orgs_api
from cloud_api.api import projects as projects_api
from cloud_api.api import workers as workers_api
from cloud_api.api.errors import field_problem
from cloud_api.api.tasks import select_tasks
from cloud_api.dashboard.groups import COLUMN_OF, COLUMNS
from cloud_api.dashboard.moves import CARD_ACTIONS, TARGETS
from cloud_api.dashboard.views.projects import project_nav
from cloud_api.dashboard.web import Visitor, fragment, page, redirect, respond
from cloud_api.dispatch import footprints
from cloud_api.domain.footprints import may_overlap
from cloud_api.domain.states import USER_ACTIONS, TaskStatus, UserAction
from cloud_api.schemas.common import PageQuery, parse_id
from cloud_api.schemas.projects import ProjectOut
from cloud_api.schemas.tasks import TaskQuery
from cloud_api.store.tables import task_events, tasks
from cloud_api.store.tables import workers as worker_table

routes = web.RouteTableDef()

LABELS = {
    UserAction.QUEUE: "Queue",
    UserAction.APPROVE: "Approve",
    UserAction.RETRY: "Retry",
    UserAction.CANCEL: "Cancel",
    UserAction.REQUEST_CHANGES: "Request changes",
    UserAction.ANSWER: "Answer",
}


def actions_for(status: str, names: tuple[UserAction, ...] = CARD_ACTIONS) -> list[dict[str, str]]:
    """The moves a person can make from ``status``: label, endpoint and target column."""
    current = TaskStatus(status)
    return [
        {"name": action.value, "label": LABELS[action], "to": USER_ACTIONS[action][1].value}
        for action in names
        if current in USER_ACTIONS[action][0]
    ]


#: Precomputed per status: a board of thousands of cards asks this once per card.
CARD_MOVES = {status.value: actions_for(status.value) for status in TaskStatus}


@dataclass(frozen=True)
class Filters:
    sprint_id: int | None
    label: str | None
    worker_id: int | None
    #: Text search (title, description, number): the REST list's ``q``.
    q: str | None = None
    #: Only the visitor's own tasks (assigned to them).
    mine: bool = False

    @classmethod
    def of(cls, visitor: Visitor) -> Filters:
        query = visitor.query(TaskQuery, "sprint_id", "label", "worker_id", "q")
        mine = visitor.request.query.get("mine") == "1"
        return cls(query.sprint_id, query.label, query.worker_id, query.q, mine)

    def task_query(self, visitor: Visitor) -> TaskQuery:
        """The REST list's query for these filters (labels aside: matched in Python)."""
        return TaskQuery(
            sprint_id=self.sprint_id,
            worker_id=self.worker_id,
            q=self.q,
            assignee_id=visitor.me.user_id if self.mine else None,
        )

    def query_string(self) -> str:
        """The filters as a URL query (encoded: a search may hold ``&`` or ``%``)."""
        values = {k: v for k, v in vars(self).items() if v is not None and k != "mine"}
        return urlencode({**values, **({"mine": 1} if self.mine else {})})


async def member_names(visitor: Visitor, org_id: int) -> dict[int, str]:
    """The project's people (its organisation's members) by user id, in name order: whom a
    card names and whom a task can be given to."""
    members = await visitor.call(orgs_api.list_members, path={"org_id": org_id})
    return {m.user_id: m.name for m in sorted(members, key=lambda m: (m.name, m.user_id))}


async def columns(visitor: Visitor, project: ProjectOut, filters: Filters) -> dict[str, Any]:
    """Everything the columns template needs; the caller has checked read access."""
    project_id = project.id
    query = filters.task_query(visitor)
    stmt = select_tasks(project_id, query).order_by(tasks.c.priority.desc(), tasks.c.id)
    async with visitor.ctx.db.read() as conn:
        # The live stream starts at the settled horizon, read before the cards: every event
        # at or below it shows in them; one above may be streamed again (a card refetched).
        horizon = await visitor.ctx.db.horizon.settled(conn)
        rows = (await conn.execute(stmt)).all()
        latest = (
            await conn.execute(
                select(func.max(task_events.c.id)).where(task_events.c.project_id == project_id)
            )
        ).scalar()
    if filters.label is not None:
        rows = [r for r in rows if filters.label in (r.labels or [])]
    # The rows come in the board's order (priority, then age); each column keeps it.
    by_column: dict[str, list[Any]] = {c.key: [] for c in COLUMNS}
    for row in rows:
        by_column[COLUMN_OF[row.status]].append(row)
    after = (latest or 0) if horizon is None else min(latest or 0, horizon)
    return {
        "overlaps": await overlap_notes(visitor, project_id),
        "by_column": by_column,
        "columns": COLUMNS,
        "moves": CARD_MOVES,
        "after": after,
        "people": await member_names(visitor, project.org_id),
    }


async def overlap_notes(visitor: Visitor, project_id: int) -> dict[int, list[str]]:
    """Task id → "may overlap #12: src/parser.py", one per task its predicted files overlap
    (conflict-aware dispatch, docs/dispatch.md)."""
    found = await footprints.board_overlaps(visitor.ctx.db, project_id)
    return {
        task: [may_overlap(other, files) for other, files in others.items()]
        for task, others in found.items()
    }


@routes.get("/projects/{project_id}", name="dashboard.board")
@page
async def board(visitor: Visitor) -> web.StreamResponse:
    project = await project_nav(visitor, "board")
    filters = Filters.of(visitor)
    sprints = await visitor.every(projects_api.list_sprints, PageQuery)
    projects = await visitor.every(projects_api.list_projects, projects_api.ProjectQuery)
    workers = await visitor.every(workers_api.list_workers, PageQuery)
    data = await columns(visitor, project, filters)
    labels = {label for rows in data["by_column"].values() for r in rows for label in r.labels}
    return respond(
        visitor,
        "board.html",
        project=project,
        filters=filters,
        projects=projects,
        sprints=sprints,
        workers=workers,
        worker_names={w.id: w.name for w in workers},
        labels=sorted(labels | ({filters.label} if filters.label else set())),
        targets=TARGETS,
        **data,
    )


@routes.get("/board", name="dashboard.board_switch")
@fragment
async def switch(visitor: Visitor) -> web.StreamResponse:
    """The filter form's target, so that the project is a filter like the others (and works
    without JavaScript): on to that project's board. Sprint and worker belong to a project,
    so they are dropped when the project changes."""
    query = visitor.request.query
    target = query.get("project_id", "")
    project_id = parse_id(target)
    if project_id is None:
        raise field_problem("query", "project_id", "choose a project", "pick one from the list")
    same = target == query.get("from")
    keep = ("sprint_id", "label", "worker_id", "q", "mine") if same else ("label", "q", "mine")
    rest = {k: query[k] for k in keep if query.get(k)}
    return redirect(f"/projects/{project_id}" + (f"?{urlencode(rest)}" if rest else ""))


@routes.get("/projects/{project_id}/cards/{task_id}", name="dashboard.card")
@fragment
async def one_card(visitor: Visitor) -> web.StreamResponse:
    """One card, as the board shows it with the page's filters, or 204 when the task is not
    on that board (any more). A change re-renders one card per open board, not all of them."""
    project_id, task_id = visitor.ctx.path_id("project_id"), visitor.ctx.path_id("task_id")
    project: ProjectOut = await visitor.call(projects_api.get_project)
    visitor.nav["role"] = project.role
    filters = Filters.of(visitor)
    stmt = (
        select_tasks(project_id, filters.task_query(visitor))
        .where(tasks.c.id == task_id)
        .outerjoin(worker_table, worker_table.c.id == tasks.c.lease_owner_id)
        .add_columns(worker_table.c.name.label("worker_name"))
    )
    async with visitor.ctx.db.read() as conn:
        row = (await conn.execute(stmt)).first()
    if row is None or (filters.label is not None and filters.label not in row.labels):
        return web.Response(status=204)
    names = {row.lease_owner_id: row.worker_name} if row.worker_name else {}
    people = await member_names(visitor, project.org_id)
    return respond(
        visitor,
        "_one_card.html",
        t=row,
        moves=CARD_MOVES,
        worker_names=names,
        people=people,
        overlaps=await overlap_notes(visitor, project_id),
    )


@routes.get("/projects/{project_id}/columns", name="dashboard.columns")
@fragment
async def board_columns(visitor: Visitor) -> web.StreamResponse:
    """The columns alone (same filters): what the page swaps in after a lost connection."""
    project = await project_nav(visitor, "board")
    workers = await visitor.every(workers_api.list_workers, PageQuery)
    data = await columns(visitor, project, Filters.of(visitor))
    return respond(
        visitor,
        "_columns.html",
        project=project,
        worker_names={w.id: w.name for w in workers},
        **data,
    )
