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
    #: Set at shutdown: long-polls and event streams end at once instead of holding it up.
    closing: bool = False

    def begin_shutdown(self) -> None:
        self.closing = True
        self.hub.wake_all()


SETTINGS = web.AppKey("settings", CloudSettings)
SERVICES = web.AppKey("services", Services)
OPENAPI = web.AppKey("openapi", dict[str, Any])
