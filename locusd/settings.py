"""The daemon's settings as they are now: the user's config file, read again when it changed.

Why: a daemon lives for days, and a user who edits ``config.toml`` (as an error told them to)
expects the next run to see it, without knowing that a daemon holds the old file in memory. The
file is compared (its bytes) at each new run, claim and status; a change is read, and applies to
the runs started after it. A file that no longer reads keeps the last good settings and says
why (the line or the key, in ``locus status`` and in the refusal of the next run): no run
starts on settings the user has just changed away from. The few settings that the daemon's
open files and sessions are built on take effect only at its restart, and say so.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

from locusd.config import Config, ConfigError, parse

log = logging.getLogger(__name__)

#: Settings a running daemon is built on (its database, its keyring, its cloud session).
AT_RESTART: dict[str, Callable[[Config], object]] = {
    "state_dir": lambda c: c.state_dir,
    "credentials_dir": lambda c: c.credentials_dir,
    "daemon.cloud_url": lambda c: c.daemon.cloud_url,
    "daemon.outbox_retry_cap": lambda c: c.daemon.outbox_retry_cap,
}
RESTART = "locus daemon restart"


def _digest(path: Path) -> tuple[str | None, str]:
    """The file's bytes' hash and its text (None: no file, the defaults apply)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, ""
    return hashlib.sha256(data).hexdigest(), data.decode("utf-8", errors="replace")


class Settings:
    """``current()`` the settings in force; ``refresh()`` reads the file again if it changed.
    Without a path (a daemon built from a Config in tests, or embedded), they never change."""

    def __init__(self, config: Config, path: Path | None = None) -> None:
        self.path = path
        self.config = config
        self._seen = _digest(path)[0] if path is not None else None
        #: Why the file as it is now is not in force (None: it is).
        self.error: str | None = None
        #: Settings changed in the file that take effect at the daemon's restart.
        self.pending: list[str] = []

    def current(self) -> Config:
        return self.config

    def refresh(self) -> Config:
        if self.path is None:
            return self.config
        digest, text = _digest(self.path)
        if digest == self._seen:
            return self.config
        self._seen = digest
        try:
            new = parse(text, self.path) if digest is not None else Config()
        except ConfigError as exc:
            self.error = f"{exc} — the daemon keeps its previous settings until the file is fixed"
            log.warning("config not read again: %s", self.error)
            return self.config
        self.error = None
        self.pending = [
            name for name, value in AT_RESTART.items() if value(new) != value(self.config)
        ]
        update = {
            "state_dir": self.config.state_dir,
            "credentials_dir": self.config.credentials_dir,
            "daemon": new.daemon.model_copy(  # the rest of [daemon] applies now
                update={
                    "cloud_url": self.config.daemon.cloud_url,
                    "outbox_retry_cap": self.config.daemon.outbox_retry_cap,
                }
            ),
        }
        self.config = new.model_copy(update=update)
        log.info("config %s read again: it applies to the runs started from now", self.path)
        return self.config

    def problems(self) -> list[str]:
        """What ``locus status`` says about the settings (nothing when all are in force)."""
        said = [self.error] if self.error else []
        if self.pending:
            said.append(
                f"{', '.join(self.pending)} changed in {self.path}: the daemon uses the new"
                f" value after a restart ({RESTART})"
            )
        return said
