"""The settled horizon, step by step on a real PostgreSQL: an open transaction holding an event
id keeps the horizon below it (a later committed id is held back, not handed out) until it
ends; a rolled-back id is a hole the horizon passes. And each event id is drawn only after
its transaction has an xid, which the rule relies on. SQLite needs no horizon."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud_api.domain.states import Actor
from cloud_api.store import tasks as task_store
from cloud_api.store.db import Database, Tx
from cloud_api.store.horizon import settled_rows
from cloud_api.store.tables import task_events
from tests.conftest import Template


@pytest.fixture
async def pg(pg_template: Template, tmp_path: Path) -> AsyncIterator[tuple[Database, Any]]:
    db = Database(pg_template.new_url(tmp_path))
    async with db.write() as tx:
        task = await task_store.create(
            tx, pg_template.first_start.project_id, Actor.USER, None, title="t", status="backlog"
        )
    try:
        yield db, task
    finally:
        await db.close()


async def comment(tx: Tx, task: Any) -> int:
    return await task_store.add_event(tx, task, "comment", Actor.USER, data={"body": "x"})


async def horizon(db: Database) -> int | None:
    async with db.read() as conn:
        return await db.horizon.settled(conn)


async def visible(db: Database, after: int) -> list[Any]:
    async with db.read() as conn:
        bound = await db.horizon.settled(conn)
        stmt = select(task_events.c.id).where(task_events.c.id > after).order_by(task_events.c.id)
        rows = (await conn.execute(stmt)).all()
    return [row.id for row in settled_rows(rows, bound)[0]]


async def test_an_open_transaction_holds_the_horizon_below_its_id(
    pg: tuple[Database, Any],
) -> None:
    db, task = pg
    taken = asyncio.Event()
    release = asyncio.Event()
    held_id = 0

    async def held() -> None:
        nonlocal held_id
        async with db.write() as tx:
            held_id = await comment(tx, task)  # the transaction's first write
            taken.set()
            await release.wait()

    writer = asyncio.create_task(held())
    await taken.wait()
    # The holder's xid is newer than any completed one: a snapshot's in-flight list (which
    # stops at xmax) would not show it, and the horizon would pass its id already here.
    bound = await horizon(db)
    assert bound is not None and bound < held_id
    async with db.write() as tx:
        later = await comment(tx, task)
    assert later > held_id
    # Committed and visible, but a smaller id may still commit: not handed out yet.
    for _ in range(3):
        bound = await horizon(db)
        assert bound is not None and bound < held_id
        assert later not in await visible(db, 0)
    release.set()
    await writer
    await horizon(db)  # a sample taken with nothing in flight...
    assert await visible(db, 0) == list(range(1, later + 1))  # ...settles everything


async def test_a_rolled_back_id_does_not_hold_the_horizon(pg: tuple[Database, Any]) -> None:
    db, task = pg
    with contextlib.suppress(LookupError):
        async with db.write() as tx:
            hole = await comment(tx, task)
            raise LookupError
    async with db.write() as tx:
        after = await comment(tx, task)
    await horizon(db)
    bound = await horizon(db)
    assert bound is not None and bound >= after
    ids = await visible(db, 0)
    assert hole not in ids and ids[-1] == after


async def test_an_event_id_is_drawn_after_the_transaction_has_an_xid(
    pg: tuple[Database, Any],
) -> None:
    db, _task = pg
    async with db.write() as tx:
        default = (
            await tx.conn.execute(
                text(
                    "SELECT column_default FROM information_schema.columns"
                    " WHERE table_name = 'task_events' AND column_name = 'id'"
                )
            )
        ).scalar_one()
        assert default == "locus_event_id()"
        assigned = text("SELECT pg_current_xact_id_if_assigned()")
        assert (await tx.conn.execute(assigned)).scalar() is None, "a fresh transaction"
        await tx.conn.execute(text("SELECT locus_event_id()"))
        assert (await tx.conn.execute(assigned)).scalar() is not None


async def test_sqlite_needs_no_horizon(sqlite_template: Template, tmp_path: Path) -> None:
    """One writer: ids are taken and committed one transaction after another."""
    db = Database(sqlite_template.new_url(tmp_path))
    try:
        assert await horizon(db) is None
    finally:
        await db.close()


async def test_a_page_read_waits_for_the_callers_own_write_to_settle(
    pg: tuple[Database, Any],
) -> None:
    """A transaction open since before the comment committed (it could hold a smaller id, as
    far as anyone can tell) keeps the comment unsettled; a one-shot read waits for it rather
    than leave out what its caller just wrote."""
    db, task = pg
    begun = asyncio.Event()
    release = asyncio.Event()

    async def unrelated() -> None:
        async with db.write() as tx:
            await tx.conn.execute(text("SELECT pg_current_xact_id()"))  # in flight, with an xid
            begun.set()
            await release.wait()

    other = asyncio.create_task(unrelated())
    await begun.wait()
    async with db.write() as tx:
        mine = await comment(tx, task)
    newest = select(func.max(task_events.c.id))
    looks = 0
    looked_twice = asyncio.Event()

    @asynccontextmanager
    async def counted_read() -> AsyncIterator[AsyncConnection]:
        nonlocal looks
        async with db.read() as conn:
            yield conn
        looks += 1
        if looks == 2:
            looked_twice.set()

    reading = asyncio.create_task(db.horizon.covering(counted_read, newest))
    twice = asyncio.create_task(looked_twice.wait())
    await asyncio.wait({reading, twice}, return_when=asyncio.FIRST_COMPLETED)
    twice.cancel()
    assert not reading.done(), "it looked, saw the comment unsettled, and did not give up"
    release.set()
    await other
    bound = await reading
    assert bound is not None and bound >= mine
