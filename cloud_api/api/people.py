"""The people a task names (assignee, reviewer) must belong to the task's project: members of
its organisation. Anyone else is refused with the field named, so a task never points at a
stranger (nor reveals, by accepting an id, that such a user exists)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from cloud_api.api.context import Ctx
from cloud_api.api.errors import field_problem
from cloud_api.store.tables import memberships, projects

#: The task fields that name a person.
PEOPLE = ("assignee_id", "reviewer_id")


async def check_people(ctx: Ctx, project_id: int, values: Mapping[str, Any]) -> None:
    """Raise a 422 naming the first field whose user is not a member of the project."""
    wanted = {name: values[name] for name in PEOPLE if values.get(name) is not None}
    if not wanted:
        return
    org = select(projects.c.org_id).where(projects.c.id == project_id).scalar_subquery()
    stmt = select(memberships.c.user_id).where(
        memberships.c.org_id == org, memberships.c.user_id.in_(set(wanted.values()))
    )
    async with ctx.db.read() as conn:
        members = set((await conn.execute(stmt)).scalars())
    for name, user_id in wanted.items():
        if user_id not in members:
            raise field_problem(
                "body",
                name,
                f"user {user_id} is not a member of this project",
                "pick a member: GET /orgs/{org_id}/members, or add them first",
            )
