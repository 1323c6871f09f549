"""One log line per burst of descriptor exhaustion, not one per refused accept.

When the process runs out of descriptors (EMFILE), asyncio logs "socket.accept() out of system
resource" with a traceback on every retry of the listening socket: 16.7 MB of log in 16 s under
a connection flood, which fills the disk the cloud needs next. This filter lets the first record
of a burst through, then at most one a ``quiet`` interval (so a long outage stays visible), each
naming how many were dropped since the last.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

MESSAGE = "socket.accept() out of system resource"


class AcceptExhaustionFilter(logging.Filter):
    """Lets at most one exhaustion record through per ``quiet`` seconds."""

    def __init__(self, quiet: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.quiet = quiet
        self._clock = clock
        self._logged_at: float | None = None
        self.dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(MESSAGE):
            return True
        now = self._clock()
        if self._logged_at is not None and now - self._logged_at < self.quiet:
            self.dropped += 1
            return False
        self._logged_at = now
        if self.dropped:
            record.msg = f"{record.msg}\n({self.dropped} more since the last one not logged)"
            self.dropped = 0
        record.msg = f"{record.msg}\n(repeats of this are not logged until {self.quiet:g} s pass)"
        return True


def install(logger: logging.Logger | None = None) -> AcceptExhaustionFilter:
    """Adds the filter to asyncio's logger, once per process."""
    target = logger or logging.getLogger("asyncio")
    for existing in target.filters:
        if isinstance(existing, AcceptExhaustionFilter):
            return existing
    added = AcceptExhaustionFilter()
    target.addFilter(added)
    return added
