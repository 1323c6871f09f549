"""Access checks shared by the open event streams of one caller on one path.

A check's verdict is valid for a while (``sse_recheck_seconds``); every stream that asks within
it gets the same answer, and a check in flight is awaited rather than repeated.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class Verdicts:
    """The latest access check per (token, path), shared by every stream that asks within
    its validity; a check in flight is awaited, not repeated."""

    PRUNE_AT = 4096

    def __init__(self) -> None:
        self._entries: dict[tuple[int, str], tuple[float, asyncio.Future[bool]]] = {}

    async def check(
        self, key: tuple[int, str], valid_for: float, run: Callable[[], Awaitable[bool]]
    ) -> tuple[bool, float]:
        """The verdict, and when it expires (monotonic seconds)."""
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is None or now - entry[0] >= valid_for:
            if len(self._entries) >= self.PRUNE_AT:
                self._prune(now, valid_for)
            entry = (now, asyncio.ensure_future(run()))
            self._entries[key] = entry
        checked_at, verdict = entry
        try:
            # Shielded: one caller going away must not cancel the check the others await.
            return await asyncio.shield(verdict), checked_at + valid_for
        except BaseException:
            if self._entries.get(key) is entry and verdict.done():
                del self._entries[key]  # a failed check is not a verdict: the next one retries
            raise

    def _prune(self, now: float, valid_for: float) -> None:
        for key, (checked_at, _) in list(self._entries.items()):
            if now - checked_at >= valid_for:
                del self._entries[key]
