"""Liveness, readiness, Prometheus metrics (endpoint and middleware), the OpenAPI document."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cloud_api.services import OPENAPI, SERVICES
from cloud_api.store.migrate import current_revision, head_revision


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    checks: dict[str, str] = {}
    try:
        revision = await current_revision(services.db)
        checks["database"] = "ok"
        checks["schema"] = (
            "ok" if revision == head_revision() else f"at {revision}, want {head_revision()}"
        )
    except Exception as exc:  # readiness reports failures, it does not raise them
        checks["database"] = f"error: {type(exc).__name__}"
    if services.listener is not None:
        checks["listen"] = "ok" if services.listener.connected.is_set() else "reconnecting"
    ready = all(v == "ok" for v in checks.values())
    return web.json_response(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[SERVICES].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


def install(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/openapi.json", openapi)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    metrics = request.app[SERVICES].metrics
    route = (
        request.match_info.route.resource.canonical
        if request.match_info.route.resource
        else "unmatched"
    )
    start = time.perf_counter()
    response: web.StreamResponse = await handler(request)
    if not route.endswith("/stream"):
        metrics.latency.labels(route).observe(time.perf_counter() - start)
    metrics.requests.labels(request.method, route, str(response.status)).inc()
    return response
