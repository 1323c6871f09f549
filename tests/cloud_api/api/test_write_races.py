"""A transaction PostgreSQL aborts for another's sake (a deadlock, a serialization failure) is
a 409 "send it again", never a 500: provoked for real on PostgreSQL — two transactions that
lock two rows in opposite orders — and answered through the API's own error middleware."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from cloud_api.api.errors import problem_middleware, write_race
from cloud_api.store.db import normalise_url
from tests.conftest import Template


async def deadlock(url: str) -> DBAPIError:
    """The error PostgreSQL gives the transaction it picks as a deadlock's victim."""
    engine = create_async_engine(normalise_url(url))
    try:
        async with engine.begin() as setup:
            await setup.execute(text("CREATE TABLE pair (id int PRIMARY KEY)"))
            await setup.execute(text("INSERT INTO pair VALUES (1), (2)"))
        both = asyncio.Barrier(2)

        async def lock(first: int, second: int) -> None:
            async with engine.begin() as conn:
                await conn.execute(
                    text("SELECT id FROM pair WHERE id = :i FOR UPDATE"), {"i": first}
                )
                await both.wait()
                await conn.execute(
                    text("SELECT id FROM pair WHERE id = :i FOR UPDATE"), {"i": second}
                )

        results = await asyncio.gather(lock(1, 2), lock(2, 1), return_exceptions=True)
    finally:
        await engine.dispose()
    (victim,) = [r for r in results if isinstance(r, BaseException)]
    assert isinstance(victim, DBAPIError), victim
    return victim


async def test_a_deadlock_is_a_write_race_and_other_database_errors_are_not(
    pg_template: Template, tmp_path: Path
) -> None:
    url = pg_template.new_url(tmp_path)
    assert write_race(await deadlock(url))
    engine = create_async_engine(normalise_url(url))
    try:
        with pytest.raises(DBAPIError) as broken:
            async with engine.begin() as conn:
                await conn.execute(text("SELECT * FROM no_such_table"))
    finally:
        await engine.dispose()
    assert not write_race(broken.value)


async def test_the_api_answers_a_write_race_409_and_other_database_errors_500(
    pg_template: Template, tmp_path: Path
) -> None:
    raced = await deadlock(pg_template.new_url(tmp_path))
    broken = DBAPIError("SELECT 1", None, Exception("disk on fire"))

    async def racing(request: web.Request) -> web.Response:
        raise raced

    async def failing(request: web.Request) -> web.Response:
        raise broken

    app = web.Application(middlewares=[problem_middleware])
    app.router.add_post("/race", racing)
    app.router.add_post("/broken", failing)
    async with TestClient(TestServer(app)) as client:
        answer = await client.post("/race")
        problem = await answer.json()
        assert answer.status == 409, problem
        assert "send it again" in problem["detail"]
        assert answer.headers["Retry-After"] == "1"  # a worker retries, not gives up
        assert (await client.post("/broken")).status == 500
