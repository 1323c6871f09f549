"""Open event streams ask again, every few seconds, whether their caller may still read them.

A stream is authorised when it opens; without this it would keep sending after its token was
revoked or its user removed from the organisation. The guard re-reads the token (revoked,
expired) and runs the route's own access check again with the fresh principal, every
``sse_recheck_seconds``; it also bounds the stream's life to ``sse_max_seconds`` (shortened by
up to a tenth at random, so streams opened together do not all reconnect together).

Streams of one caller on one path share their checks: 500 dashboard tabs
of one user on one board cost one check per interval, not 500 (docs/benchmarks.md, Event
streams; :mod:`cloud_api.api.verdicts`). A stream that takes a shared verdict schedules its next check for when that verdict
expires, so access lost is still noticed within ``sse_recheck_seconds`` of the last check.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Awaitable, Callable

from cloud_api.api.context import Ctx, principal_by_id
from cloud_api.api.errors import ApiError

#: The route's access check (raises ApiError when the caller may not read the stream).
Authorise = Callable[[Ctx], Awaitable[object]]


class StreamGuard:
    def __init__(self, ctx: Ctx, authorise: Authorise) -> None:
        settings = ctx.services.settings
        self._ctx = ctx
        self._authorise = authorise
        self._every = settings.sse_recheck_seconds
        now = time.monotonic()
        self._next_check = now + self._every
        self._deadline = now + settings.sse_max_seconds * random.uniform(0.9, 1.0)

    def sleep_at_most(self, until: float) -> float:
        """How long an idle stream may wait for a change: until ``until`` (monotonic seconds,
        its next keepalive) unless it must check its access (or end) before."""
        return max(0.0, min(until, self._next_check, self._deadline) - time.monotonic())

    async def allowed(self) -> bool:
        """False once the stream has lived its time or its caller has lost access."""
        now = time.monotonic()
        if now >= self._deadline:
            return False
        if now < self._next_check:
            return True
        key = (self._ctx.me.token_id, self._ctx.request.path)
        verdicts = self._ctx.services.verdicts
        allowed, self._next_check = await verdicts.check(key, self._every, self._check)
        return allowed

    async def _check(self) -> bool:
        principal = await principal_by_id(self._ctx.services, self._ctx.me.token_id)
        if principal is None:
            return False
        try:
            await self._authorise(dataclasses.replace(self._ctx, principal=principal))
        except ApiError:
            return False
        return True
