"""What every request handler can reach, built once per app at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from cloud_api.config import CloudSettings
from cloud_api.dispatch.reaper import Reaper
from cloud_api.dispatch.wakeups import Hub, PgListener
from cloud_api.metrics import Metrics
from cloud_api.store.db import Database


@dataclass
class Services:
    settings: CloudSettings
    db: Database
    hub: Hub
    metrics: Metrics
    reaper: Reaper
    listener: PgListener | None


SETTINGS = web.AppKey("settings", CloudSettings)
SERVICES = web.AppKey("services", Services)
OPENAPI = web.AppKey("openapi", dict[str, Any])
