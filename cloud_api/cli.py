"""`locus-cloud`: serve the API, migrate the database, create users and worker tokens."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from aiohttp import web
from pydantic import ValidationError

from cloud_api.api.errors import ApiError
from cloud_api.app import create_app, openapi_document
from cloud_api.bootstrap import bootstrap, find_project
from cloud_api.config import CloudSettings
from cloud_api.schemas.auth import UserCreate
from cloud_api.schemas.tokens import TokenCreate
from cloud_api.store.db import Database, UnsupportedDatabase, backend_of
from cloud_api.store.migrate import upgrade

T = TypeVar("T")
db_option = click.option(
    "--db",
    envvar="LOCUS_CLOUD_DB",
    default=None,
    help="sqlite:///PATH or postgresql://… (env LOCUS_CLOUD_DB)",
)
json_option = click.option("--json", "as_json", is_flag=True, help="machine-readable output")


def _settings(**overrides: Any) -> CloudSettings:
    try:
        return CloudSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise click.UsageError(str(exc)) from None


def _prepare_sqlite(url: str) -> None:
    from sqlalchemy.exc import ArgumentError

    try:
        backend = backend_of(url)
    except ArgumentError:  # every command passes here first: a clear error, not a traceback
        raise click.BadParameter(
            f"{url!r} is not a database URL: use sqlite:///PATH or postgresql://USER@HOST/DB",
            param_hint="--db",
        ) from None
    if backend == "sqlite":
        from sqlalchemy.engine import make_url

        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def _with_db(url: str, work: Callable[[Database], Awaitable[T]]) -> T:
    _prepare_sqlite(url)
    try:
        db = Database(url)
    except UnsupportedDatabase as exc:
        raise click.BadParameter(str(exc), param_hint="--db") from None

    async def run() -> T:
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(run())


def _emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(data, default=str) if as_json else text)


@click.group(help=__doc__, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)


@main.command(help="Serve the API (and, on SQLite, migrate first).")
@db_option
@click.option("--host", default=None, help="bind address (default 127.0.0.1)")
@click.option("--port", type=int, default=None, help="port (default 8420; 0 picks a free one)")
@click.option("--lease-seconds", type=float, default=None, help="worker lease length")
@click.option(
    "--migrate/--no-migrate", default=None, help="apply migrations on start (default: SQLite only)"
)
@json_option
def serve(
    db: str | None,
    host: str | None,
    port: int | None,
    lease_seconds: float | None,
    migrate: bool | None,
    as_json: bool,
) -> None:
    settings = _settings(db=db, host=host, port=port, lease_seconds=lease_seconds)
    _prepare_sqlite(settings.db)
    # Bind before announcing: "listening" is then true, and names the port the OS picked for 0.
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    try:
        sock = socket.create_server((settings.host, settings.port), family=family, backlog=1024)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {settings.host}:{settings.port}: {exc}"
        ) from None
    settings.port = sock.getsockname()[1]

    async def first_start(database: Database) -> None:
        if migrate if migrate is not None else database.backend == "sqlite":
            await upgrade(database)
        created = await bootstrap(database)
        if created is None:
            return
        base = f"http://{settings.host}:{settings.port}"
        _emit(
            as_json,
            {
                "event": "first_start",
                "email": created.email,
                "password": created.password,
                "token": created.token,
                "project_id": created.project_id,
                "url": base,
            },
            "\n".join(
                [
                    "First start: created an admin, organisation 'default' and project 'demo'.",
                    f"  sign in:  {base}/ as {created.email} / {created.password}",
                    f"  token:    {created.token}",
                    f"  try:      curl -H 'Authorization: Bearer {created.token}' {base}/api/v1/me",
                    "  (shown once; create more users with `locus-cloud user create`)",
                ]
            ),
        )

    try:
        _with_db(settings.db, first_start)
    except Exception as exc:
        raise click.ClickException(f"cannot prepare the database: {exc}") from None
    app = create_app(settings, migrate=False)

    async def announce(runner_app: web.Application) -> None:
        del runner_app
        _emit(
            as_json,
            {
                "event": "listening",
                "host": settings.host,
                "port": settings.port,
                "db": backend_of(settings.db),
            },
            f"Locus Cloud listening on http://{settings.host}:{settings.port}"
            f" ({backend_of(settings.db)}): dashboard at /, REST API at /api/v1",
        )

    async def freeze(runner_app: web.Application) -> None:
        """What exists once the app has started (modules, tables, templates) lives as long as
        the process: keep it out of the collector's full passes, which otherwise stall a large
        page (a board of thousands of cards) by ~80 ms (bench.dashboard)."""
        del runner_app
        gc.collect()
        gc.freeze()

    app.on_startup.append(announce)
    app.on_startup.append(freeze)
    # Handlers are not cancelled when a client hangs up (aiohttp's default): a cancellation in
    # the middle of a write transaction could strand SQLite's write lock. Long-polls notice a
    # closed connection themselves (cloud_api/api/workers.py).
    web.run_app(
        app,
        sock=sock,
        print=None,
        access_log=None,
    )


@main.command(help="Apply database migrations (Alembic) up to the newest.")
@db_option
@json_option
def migrate(db: str | None, as_json: bool) -> None:
    settings = _settings(db=db)
    _with_db(settings.db, upgrade)
    _emit(
        as_json,
        {"migrated": True, "db": backend_of(settings.db)},
        "Database is at the newest schema.",
    )


@main.group(help="Manage users.")
def user() -> None:
    pass


@user.command("create", help="Create a user.")
@db_option
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option(
    "--password",
    envvar="LOCUS_CLOUD_PASSWORD",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="prompted for if not given (env LOCUS_CLOUD_PASSWORD)",
)
@click.option("--admin", is_flag=True, help="may create users and manage every project")
@json_option
def user_create(
    db: str | None, email: str, name: str, password: str, admin: bool, as_json: bool
) -> None:
    from cloud_api.api.auth import insert_user

    try:
        body = UserCreate(email=email, name=name, password=password, is_admin=admin)
    except ValidationError as exc:
        raise click.UsageError(_field_errors(exc)) from None
    settings = _settings(db=db)
    try:
        created = _with_db(settings.db, lambda d: insert_user(d, body))
    except ApiError as exc:
        raise click.ClickException(exc.problem.detail or exc.problem.title) from None
    _emit(as_json, created.model_dump(mode="json"), f"Created user {created.id} <{created.email}>.")


@main.group(help="Manage worker tokens.")
def token() -> None:
    pass


@token.command("create", help="Create a worker token for a project; it is printed once.")
@db_option
@click.option("--project", "project_ref", required=True, help="project id, slug, or org/slug")
@click.option(
    "--worker", "worker_name", required=True, help="the worker's name, e.g. its host name"
)
@click.option("--expires-days", type=int, default=365, show_default=True)
@json_option
def token_create(
    db: str | None, project_ref: str, worker_name: str, expires_days: int, as_json: bool
) -> None:
    from cloud_api.api.tokens import create_worker_token

    try:
        body = TokenCreate(worker_name=worker_name, expires_in_days=expires_days)
    except ValidationError as exc:
        raise click.UsageError(_field_errors(exc)) from None
    settings = _settings(db=db)

    async def work(database: Database) -> Any:
        project_id = await find_project(database, project_ref)
        if project_id is None:
            raise click.BadParameter(
                f"no single project matches {project_ref!r}", param_hint="--project"
            )
        return await create_worker_token(database, project_id, body, None)

    created = _with_db(settings.db, work)
    _emit(
        as_json,
        created.model_dump(mode="json"),
        f"{created.token}\n(worker token for project {created.project_id},"
        f" worker '{worker_name}'; shown once)",
    )


@main.command(help="Print the OpenAPI document (or, with --markdown, docs/rest-api.md).")
@click.option("--markdown", is_flag=True, help="render the Markdown reference instead")
def openapi(markdown: bool) -> None:
    if markdown:
        from cloud_api.api.restdoc import render

        sys.stdout.write(render(openapi_document()))
        return
    json.dump(openapi_document(), sys.stdout, indent=2)
    sys.stdout.write("\n")


def _field_errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


if __name__ == "__main__":
    main()
