"""What every request handler can reach, built once per app at start-up."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from cloud_api.api.login_throttle import LoginThrottle
from cloud_api.api.verdicts import Verdicts
from cloud_api.config import CloudSettings
from cloud_api.dispatch.reaper import Reaper
from cloud_api.dispatch.wakeups import Hub, PgListener
from cloud_api.metrics import Metrics
from cloud_api.security import PasswordWork
from cloud_api.store.db import Database


@dataclass
class Services:
    settings: CloudSettings
    db: Database
    hub: Hub
    metrics: Metrics
    reaper: Reaper
    listener: PgListener | None
    passwords: PasswordWork
    login_throttle: LoginThrottle
    #: Open event streams' shared access checks (cloud_api.api.stream_guard).
    verdicts: Verdicts = field(default_factory=Verdicts)
    #: Set at shutdown: long-polls and event streams end at once instead of holding it up.
    closing: bool = False
    #: When this replica last wrote each worker's last_seen_at (monotonic seconds).
    _seen: dict[int, float] = field(default_factory=dict)

    def should_touch(self, worker_id: int, every: float = 5.0) -> bool:
        """Whether a claim should also record that the worker was seen. Busy workers claim
        many times a second; writing last_seen_at once every few seconds is enough for the
        workers page and saves a statement on the hot path."""
        now = time.monotonic()
        if now - self._seen.get(worker_id, -every) < every:
            return False
        self._seen[worker_id] = now
        return True

    def begin_shutdown(self) -> None:
        self.closing = True
        self.hub.wake_all()


SETTINGS = web.AppKey("settings", CloudSettings)
SERVICES = web.AppKey("services", Services)
OPENAPI = web.AppKey("openapi", dict[str, Any])
