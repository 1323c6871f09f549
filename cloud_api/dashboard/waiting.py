"""What waits for a person across the projects they can see: tasks in a needs-you status
(a question, a review on the developer's machine, an approval). The needs-you page lists
them and every page's navigation counts them; both read this one statement."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, select

from cloud_api.api.context import Principal
from cloud_api.dashboard.groups import NEEDS_YOU
from cloud_api.store.tables import memberships, projects, tasks


def waiting(me: Principal) -> Any:
    """Needs-you tasks in the projects ``me`` may read (an admin's: all), most urgent and
    then longest-waiting first."""
    stmt = (
        select(tasks, projects.c.name.label("project_name"), memberships.c.role)
        .join(projects, projects.c.id == tasks.c.project_id)
        .outerjoin(
            memberships,
            and_(memberships.c.org_id == projects.c.org_id, memberships.c.user_id == me.user_id),
        )
        .where(tasks.c.status.in_([s.value for s in NEEDS_YOU]))
    )
    if not me.is_admin:
        stmt = stmt.where(memberships.c.role.is_not(None))
    return stmt.order_by(tasks.c.priority.desc(), tasks.c.updated_at, tasks.c.id)


def count(me: Principal) -> Any:
    return select(func.count()).select_from(waiting(me).order_by(None).subquery())
