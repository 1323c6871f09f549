"""Exponential backoff with jitter, shared by everything that retries (the cloud outbox, the
model providers' stream retries), so every retry loop waits the same bounded way."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: the n-th failure in a row waits between half and all of
    ``min(cap, base * 2**(n-1))`` seconds (jitter spreads the retries of many entries after an
    outage), and at least the server's ``Retry-After`` when it sent one (up to ``cap``)."""

    base: float = 0.5
    cap: float = 30.0

    def delay(
        self,
        failures: int,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        ceiling = min(self.cap, self.base * 2.0 ** min(max(failures - 1, 0), 62))
        wait = ceiling / 2 + ceiling / 2 * rand()
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.cap))
        return wait
