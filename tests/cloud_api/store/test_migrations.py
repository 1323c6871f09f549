"""The schema changes only through Alembic: the migrations must build exactly the tables the
code declares, on both engines, and must run down and up again."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from cloud_api.store.db import Database
from cloud_api.store.migrate import alembic_config, current_revision, head_revision, upgrade
from cloud_api.store.tables import metadata


def _diff(conn: Connection) -> list[Any]:
    return list(
        compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    )


def _downgrade(conn: Connection) -> None:
    command.downgrade(alembic_config(conn), "base")


async def test_migrations_match_the_declared_schema(db_url: str) -> None:
    db = Database(db_url)
    try:
        await upgrade(db)  # idempotent on an up-to-date database
        assert await current_revision(db) == head_revision()
        async with db.read() as conn:
            assert await conn.run_sync(_diff) == []
        await db.run_sync_write(_downgrade)
        async with db.read() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert set(tables) <= {"alembic_version"}
        await upgrade(db)
        async with db.read() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await db.close()
