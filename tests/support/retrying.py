"""A client that retries as a real one does, and writes down every call for the queue checker.

Every POST carries an ``Idempotency-Key`` and a byte-identical body on each retry. A lost
answer (connection error, timeout) or a 5xx is retried with locusd's jittered exponential
backoff, capped low (so a retry follows an outage's end within the cap); an answer carrying
``Retry-After`` (a 409 "in progress", a 429) is retried after that long, as the server asks.
Any other answer is final. Times are ``time.monotonic()`` of this process, the same clock the
fault driver records outages on.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import replace
from typing import Any

import aiohttp

from locusd.backoff import Backoff
from tests.support.queuecheck import Call, Failure

BACKOFF = Backoff(base=0.05, cap=0.25)


def session(timeout: float = 15.0) -> aiohttp.ClientSession:
    """One connection per request: through the fault proxy, each request draws its own fault."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(force_close=True, limit=0),
        timeout=aiohttp.ClientTimeout(total=timeout),
    )


class RetryingApi:
    """Calls under /api/v1 with a bearer token; ``calls`` is this client's log of POSTs."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        base_url: str,
        token: str,
        name: str,
        give_up: float,
        seed: int = 0,
    ) -> None:
        self.http, self.base_url, self.token, self.name = http, base_url, token, name
        self.give_up = give_up  # seconds after which a call is left unanswered (the run's bound)
        self.calls: list[Call] = []
        self._jitter = random.Random(seed).random

    async def post(
        self,
        op: str,
        path: str,
        body: dict[str, Any],
        key: str,
        *,
        task_id: int | None = None,
        attempt: int | None = None,
        ref: str | None = None,
        wait: float = 0.0,
    ) -> Call:
        """POST until a final answer (or ``give_up``), the same key and bytes every time."""
        raw = json.dumps(body, sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        started = time.monotonic()
        call = Call(
            self.name, op, key, started, task_id=task_id, attempt=attempt, ref=ref, wait=wait
        )
        failures: list[Failure] = []
        told_to_wait: list[float] = []
        while time.monotonic() - started < self.give_up:
            sent = time.monotonic()
            try:
                status, reply, retry_after = await self._send("POST", path, raw, headers, wait)
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, reply, retry_after = None, f"{type(exc).__name__} {exc}"[:90], None
            if status is not None and status < 500 and retry_after is None:
                call = replace(call, answered_at=time.monotonic(), status=status, reply=reply)
                break
            if status is None or status >= 500:
                failures.append(Failure(sent, time.monotonic(), f"{status or reply}"))
            else:
                told_to_wait.append(time.monotonic())
            backoff = BACKOFF.delay(len(failures), rand=self._jitter) if failures else 0.0
            await asyncio.sleep(max(backoff, retry_after or 0.0))
        call = replace(call, failures=tuple(failures), told_to_wait=tuple(told_to_wait))
        self.calls.append(call)
        return call

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET until a 200 (reads change nothing, so they are retried and not logged)."""
        tries = 0
        while True:
            try:
                status, reply, _ = await self._send("GET", path, None, {}, 0.0, params)
                if status == 200:
                    return reply
            except (aiohttp.ClientError, TimeoutError):
                pass
            tries += 1
            await asyncio.sleep(BACKOFF.delay(tries, rand=self._jitter))

    async def _send(
        self,
        method: str,
        path: str,
        raw: bytes | None,
        headers: dict[str, str],
        wait: float,
        params: dict[str, Any] | None = None,
    ) -> tuple[int, Any, float | None]:
        timeout = aiohttp.ClientTimeout(total=wait + 10.0)
        async with self.http.request(
            method,
            f"{self.base_url}/api/v1{path}",
            data=raw,
            params=params,
            headers={**headers, "Authorization": f"Bearer {self.token}"},
            timeout=timeout,
        ) as resp:
            data = await resp.read()
            try:
                reply = json.loads(data) if data else None
            except ValueError:  # a plain-text error page
                reply = data.decode("utf-8", "replace")
            retry_after = resp.headers.get("Retry-After")
            return resp.status, reply, float(retry_after) if retry_after else None
