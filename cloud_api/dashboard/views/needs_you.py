""" "Needs you": across the visitor's projects, every task waiting for a person — questions to
answer (answered right here), changes to approve, reviews on a developer's machine."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloud_api.dashboard import waiting
from cloud_api.dashboard.groups import ASKS, NEEDS_YOU
from cloud_api.dashboard.web import Visitor, page, respond
from cloud_api.domain.permissions import Action, Role, can

routes = web.RouteTableDef()

TITLES = {
    "needs_input": "Questions from agents",
    "verification": "Changes to approve",
    "awaiting_review": "In review on a developer's machine",
}


@routes.get("/needs-you", name="dashboard.needs_you")
@page
async def needs_you(visitor: Visitor) -> web.StreamResponse:
    async with visitor.ctx.db.read() as conn:
        rows = (await conn.execute(waiting.waiting(visitor.me))).all()
    sections: list[dict[str, Any]] = []
    # What the visitor can settle here first: questions, then approvals, then reviews that
    # happen on a developer's machine.
    for status in sorted(NEEDS_YOU, key=list(TITLES).index):
        items = [
            {"t": row, "can_act": can(_role(visitor, row), Action.WRITE_TASKS)}
            for row in rows
            if row.status == status.value
        ]
        sections.append(
            {
                "status": status.value,
                "title": TITLES[status.value],
                "asks": ASKS[status.value],
                "items": items,
            }
        )
    visitor.nav["section"] = "needs_you"
    return respond(visitor, "needs_you.html", sections=sections, total=len(rows))


def _role(visitor: Visitor, row: Any) -> Role | None:
    return Role.OWNER if visitor.me.is_admin else (Role(row.role) if row.role else None)
