"""Shared fixtures: a real cloud server on a free port, on SQLite and on a real PostgreSQL.

Each database is migrated and bootstrapped once per session (a template); every test gets a
fresh copy — a file copy on SQLite, ``CREATE DATABASE … TEMPLATE`` on PostgreSQL — so tests
are isolated and still fast.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from cloud_api.app import create_app
from cloud_api.bootstrap import FirstStart, bootstrap
from cloud_api.config import CloudSettings
from cloud_api.store.db import Database
from cloud_api.store.migrate import upgrade
from tests.support.client import Api
from tests.support.pgserver import PostgresServer

TEMPLATE = "locus_template"

# No test ever touches the machine's keyring: daemons started by tests (in-process or as
# processes) find no usable backend and keep their secrets in a 0600 file in a temp dir.
# Tests of the keyring path choose a backend explicitly (keyring.set_keyring).
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
_counter = itertools.count()


async def _prepare(url: str) -> FirstStart:
    db = Database(url)
    try:
        await upgrade(db)
        created = await bootstrap(db)
        assert created is not None
        return created
    finally:
        await db.close()


@dataclass
class Template:
    backend: str
    first_start: FirstStart
    new_url: Any  # (tmp_path) -> url of a fresh copy


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path_factory.mktemp("pg"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    created = asyncio.run(_prepare(f"sqlite:///{path}"))

    def new_url(tmp: Path) -> str:
        target = tmp / f"cloud-{next(_counter)}.db"
        shutil.copyfile(path, target)
        return f"sqlite:///{target}"

    return Template("sqlite", created, new_url)


@pytest.fixture(scope="session")
def pg_template(pg_server: PostgresServer) -> Template:
    pg_server.create_database(TEMPLATE)
    created = asyncio.run(_prepare(pg_server.url(TEMPLATE)))

    def new_url(_tmp: Path) -> str:
        return pg_server.create_database(f"t_{next(_counter)}", template=TEMPLATE)

    return Template("postgresql", created, new_url)


@pytest.fixture(params=["sqlite", "postgresql"])
def template(request: pytest.FixtureRequest) -> Template:
    """Parametrises a test over both storage engines."""
    name = "sqlite_template" if request.param == "sqlite" else "pg_template"
    result: Template = request.getfixturevalue(name)
    return result


@pytest.fixture
def db_url(template: Template, tmp_path: Path) -> str:
    return str(template.new_url(tmp_path))


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module (or with indirect parametrisation) to tune the server."""
    return {}


@dataclass
class Cloud:
    url: str
    db_url: str
    api: Api  # as the bootstrap admin
    project_id: int
    first_start: FirstStart
    app: web.Application
    runner: web.AppRunner  # stop it (cleanup) for an outage; start_cloud(db_url, port) again


async def start_cloud(
    db_url: str, port: int = 0, **overrides: Any
) -> tuple[web.AppRunner, str, web.Application]:
    """A cloud on ``port`` (0: a free one); start it again on the same port to bring it back
    after an outage."""
    settings = CloudSettings(db=db_url, port=0, **overrides)
    app = create_app(settings, migrate=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}", app


@pytest.fixture
async def cloud(
    template: Template, db_url: str, settings_overrides: dict[str, Any]
) -> AsyncIterator[Cloud]:
    runner, url, app = await start_cloud(db_url, **settings_overrides)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        api = Api(session, url, template.first_start.token)
        try:
            yield Cloud(
                url, db_url, api, template.first_start.project_id, template.first_start, app, runner
            )
        finally:
            if runner.server is not None:  # a test may have stopped it already (an outage)
                await runner.cleanup()
