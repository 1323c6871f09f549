"""Cloud settings: defaults < environment (LOCUS_CLOUD_*) < command-line flags."""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_db_url() -> str:
    path = Path(platformdirs.user_data_dir("locus", appauthor=False)) / "cloud.db"
    return f"sqlite:///{path}"


class CloudSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOCUS_CLOUD_", extra="ignore")

    db: str = Field(default_factory=default_db_url, description="sqlite:///PATH or postgresql://…")
    host: str = "127.0.0.1"
    port: int = Field(8420, ge=0, le=65535)
    lease_seconds: float = Field(60.0, gt=0, le=3600, description="worker lease length")
    max_attempts: int = Field(3, ge=1, le=100, description="lease expiries before a task fails")
    reaper_interval: float | None = Field(
        None, gt=0, description="how often expired leases are reaped (default: lease/10, ≤ 5 s)"
    )
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    body_read_seconds: float = Field(
        60.0, gt=0, description="a request body not received in full within this is a 408"
    )
    password_threads: int = Field(
        2, ge=1, le=64, description="password hashes computed at once (each takes a core ~90 ms)"
    )
    login_window_seconds: float = Field(
        900.0, gt=0, description="how long a failed login counts against its account and address"
    )
    login_failures_per_account: int = Field(
        10, ge=1, description="failed logins for one e-mail within the window before a 429"
    )
    login_refusal_seconds: float = Field(
        1.0,
        ge=0,
        le=60,
        description="a throttled login waits this long before its 429, so a client looping on "
        "it sends one a second rather than thousands",
    )
    login_failures_per_address: int = Field(
        50,
        ge=0,
        description="failed logins from one client address within the window before a 429 "
        "(0: off, e.g. when a proxy that rate-limits makes every client one address)",
    )
    session_days: int = Field(30, ge=1, le=365, description="lifetime of a login token")
    idempotency_retention_hours: float = Field(
        24.0, gt=0, le=24 * 365, description="how long a POST's Idempotency-Key is remembered"
    )
    sse_keepalive_seconds: float = Field(15.0, gt=0)
    sse_recheck_seconds: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="how often an open event stream checks again that its caller may still read "
        "it (token not revoked or expired, still a member); it ends when not",
    )
    sse_max_seconds: float = Field(
        3600.0,
        gt=0,
        description="an event stream ends after 90-100 % of this; clients reconnect with "
        "Last-Event-ID (browsers' EventSource does so by itself) and are authorised afresh",
    )
    secure_cookies: bool = Field(
        False,
        description="mark dashboard cookies Secure even on plain HTTP requests: set it when a "
        "TLS-terminating proxy fronts the cloud (over direct HTTPS they are Secure anyway)",
    )

    @property
    def reap_every(self) -> float:
        return self.reaper_interval or min(5.0, max(0.05, self.lease_seconds / 10))
