"""The cloud application: wires settings, database, wake-ups, reaper and routes together."""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

from aiohttp import web

from cloud_api import accept_log, dashboard
from cloud_api.api import (
    auth,
    graph,
    health,
    openapi,
    orgs,
    plans,
    projects,
    tasks,
    tokens,
    workers,
)
from cloud_api.api.errors import problem_middleware
from cloud_api.api.limits import HANDLER_ARGS, body_deadline
from cloud_api.api.login_throttle import LoginThrottle
from cloud_api.api.routing import Route, install
from cloud_api.config import CloudSettings
from cloud_api.dashboard import web as dashboard_web
from cloud_api.dispatch.reaper import Reaper
from cloud_api.dispatch.wakeups import Hub, PgListener
from cloud_api.metrics import Metrics
from cloud_api.security import PasswordWork
from cloud_api.services import OPENAPI, SERVICES, SETTINGS, Services
from cloud_api.store.db import Database
from cloud_api.store.migrate import current_revision, head_revision, upgrade

ROUTERS = [
    auth.router,
    orgs.router,
    projects.router,
    tasks.router,
    workers.router,
    tokens.router,
    graph.router,
    plans.router,
]


def package_version() -> str:
    try:
        return version("locus")
    except PackageNotFoundError:
        return "0.0.0"


class SchemaOutOfDate(RuntimeError):
    pass


def all_routes() -> list[Route]:
    return [r for router in ROUTERS for r in router.routes]


def openapi_document() -> dict[str, object]:
    return openapi.build(all_routes(), package_version())


def create_app(settings: CloudSettings, *, migrate: bool | None = None) -> web.Application:
    """``migrate``: apply migrations on start (default: on SQLite only; PostgreSQL is migrated
    by ``locus-cloud migrate`` so that several replicas do not race to do it)."""
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    accept_log.install()
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        handler_args=HANDLER_ARGS,
        middlewares=[
            health.metrics_middleware,
            problem_middleware,
            body_deadline,
            dashboard_web.middleware,
        ],
    )
    app[SETTINGS] = settings
    install(app, ROUTERS)
    dashboard.install(app)
    health.install(app)
    app[OPENAPI] = openapi_document()

    async def start(app: web.Application) -> None:
        db = Database(settings.db)
        metrics = Metrics()
        hub = Hub(metrics.claim_woken)
        if migrate if migrate is not None else db.backend == "sqlite":
            await upgrade(db)
        revision = await current_revision(db)
        if revision != head_revision():
            await db.close()
            raise SchemaOutOfDate(
                f"the database schema is at {revision}, this server needs {head_revision()}: "
                f"run `locus-cloud migrate --db {settings.db}`"
            )
        listener = None
        if db.backend == "sqlite":
            db.on_commit(hub.publish)
        else:
            listener = PgListener(db, hub)
            await listener.start()
        reaper = Reaper(
            db,
            settings.max_attempts,
            settings.reap_every,
            settings.idempotency_retention_hours * 3600,
        )
        reaper.start()
        throttle = LoginThrottle(
            settings.login_window_seconds,
            settings.login_failures_per_account,
            settings.login_failures_per_address,
            refusal_delay=settings.login_refusal_seconds,
        )
        passwords = PasswordWork(settings.password_threads)
        metrics.writes_waiting.set_function(lambda: db.writes_waiting)
        app[SERVICES] = Services(settings, db, hub, metrics, reaper, listener, passwords, throttle)

    async def stop(app: web.Application) -> None:
        services = app[SERVICES]
        await services.reaper.stop()
        if services.listener is not None:
            await services.listener.stop()
        await services.db.close()
        services.passwords.close()

    async def shutdown(app: web.Application) -> None:
        app[SERVICES].begin_shutdown()

    app.on_startup.append(start)
    app.on_shutdown.append(shutdown)
    app.on_cleanup.append(stop)
    return app
