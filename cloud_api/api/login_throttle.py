"""Login throttling: failed logins per account and per client address, counted in memory.

Each attempt is charged before its password is checked and refunded when it succeeds, so a
burst of concurrent guesses is cut off at the limit rather than all let through to be hashed.
A success clears the account's failures but not the address's: otherwise an attacker could
reset its own address's count by signing in to an account of its own between guesses.
The counts live in this process: several cloud processes behind a balancer each count their
own (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Attempt:
    """A charged attempt: refund it (success) or keep it (failure)."""

    keys: tuple[str, ...]
    at: float


class LoginThrottle:
    """Sliding-window failure counts; at most ``max_keys`` keys are kept (oldest dropped)."""

    def __init__(
        self,
        window: float,
        per_account: int,
        per_address: int,
        *,
        refusal_delay: float = 0.0,
        max_held: int = 256,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self.limits = {"account": per_account, "address": per_address}
        self.refusal_delay = refusal_delay
        self.max_held = max_held
        self.max_keys = max_keys
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._held = 0

    async def slow_refusal(self) -> None:
        """Holds a refusal for ``refusal_delay`` before it is sent. A 429 costs the server
        less than a hash but a client looping on it got thousands a second, enough to keep
        the event loop busy (bench.logins); held, it gets one a second per connection. At most
        ``max_held`` wait at once, so a flood that does not wait for answers cannot turn this
        into thousands of held descriptors: beyond that, refusals go out at once."""
        if self._held >= self.max_held or self.refusal_delay <= 0:
            return
        self._held += 1
        try:
            await asyncio.sleep(self.refusal_delay)
        finally:
            self._held -= 1

    def charge(self, email: str, address: str | None) -> Attempt | float:
        """Charges an attempt, or returns the seconds to wait when either limit is reached."""
        now = self._clock()
        keys = [f"account:{email.strip().lower()}"]
        if address is not None and self.limits["address"] > 0:
            keys.append(f"address:{address}")
        wait = 0.0
        for key in keys:
            times = self._recent(key, now)
            limit = self.limits[key.split(":", 1)[0]]
            if len(times) >= limit:
                wait = max(wait, times[len(times) - limit] + self.window - now)
        if wait > 0:
            return max(1.0, math.ceil(wait))
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)
        self._bound()
        return Attempt(tuple(keys), now)

    def succeeded(self, attempt: Attempt) -> None:
        """Refunds the attempt everywhere and clears the account's past failures."""
        for key in attempt.keys:
            times = self._failures.get(key)
            if times is None:
                continue
            if key.startswith("account:"):
                del self._failures[key]
            elif attempt.at in times:
                times.remove(attempt.at)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            self._failures.pop(key, None)
        return times

    def _bound(self) -> None:
        while len(self._failures) > self.max_keys:
            del self._failures[next(iter(self._failures))]
