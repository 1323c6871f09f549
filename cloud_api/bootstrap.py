"""First start: with no users at all, create an admin, a default organisation and project,
and a login token, so `locus-cloud serve` works with nothing set up by hand."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select

from cloud_api.api.auth import count_users, insert_user
from cloud_api.domain.permissions import Role
from cloud_api.schemas.auth import UserCreate
from cloud_api.schemas.common import parse_id
from cloud_api.store import tokens as token_store
from cloud_api.store.db import Database
from cloud_api.store.tables import memberships, organisations, projects

ADMIN_EMAIL = "admin@localhost"


@dataclass(frozen=True)
class FirstStart:
    email: str
    password: str
    token: str
    project_id: int


async def bootstrap(db: Database) -> FirstStart | None:
    """Returns the credentials to print once, or None if the cloud already has users."""
    async with db.read() as conn:
        if await count_users(conn) > 0:
            return None
    password = secrets.token_urlsafe(12)
    user = await insert_user(
        db, UserCreate(email=ADMIN_EMAIL, name="Admin", password=password, is_admin=True)
    )
    async with db.write() as tx:
        org_id = (
            await tx.conn.execute(
                organisations.insert()
                .values(name="Default", slug="default")
                .returning(organisations.c.id)
            )
        ).scalar_one()
        await tx.conn.execute(
            memberships.insert().values(org_id=org_id, user_id=user.id, role=Role.OWNER.value)
        )
        project_id = (
            await tx.conn.execute(
                projects.insert()
                .values(org_id=org_id, name="Demo", slug="demo", remotes=[])
                .returning(projects.c.id)
            )
        ).scalar_one()
        token, _row = await token_store.issue(
            tx, "user", expires_in_seconds=None, user_id=user.id, label="first start"
        )
    return FirstStart(ADMIN_EMAIL, password, token, int(project_id))


async def find_project(db: Database, ref: str) -> int | None:
    """A project by id, by slug (if unique), or by 'org/slug'."""
    project_id = parse_id(ref)
    if project_id is not None:
        query = select(projects.c.id).where(projects.c.id == project_id)
    elif "/" in ref:
        org, slug = ref.split("/", 1)
        query = (
            select(projects.c.id)
            .join(organisations, organisations.c.id == projects.c.org_id)
            .where(organisations.c.slug == org, projects.c.slug == slug)
        )
    else:
        query = select(projects.c.id).where(projects.c.slug == ref)
    async with db.read() as conn:
        rows = (await conn.execute(query.limit(2))).scalars().all()
    return int(rows[0]) if len(rows) == 1 else None
