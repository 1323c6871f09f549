"""A client that retries as a real one does, and writes down every call for the queue checker.

Every POST carries an ``Idempotency-Key`` and a byte-identical body on each retry. A lost
answer (connection error, timeout) or a 5xx is retried at once and then with doubling backoff
(capped, so a retry follows an outage's end within the cap); a 409/429/503 carrying
``Retry-After`` is retried after that long. Any other answer is final. Times are
``time.monotonic()`` of this process, the same clock the fault driver records outages on.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from typing import Any

import aiohttp

from tests.support.queuecheck import Call, Failure

BACKOFF_START = 0.05
BACKOFF_CAP = 0.5


def session(timeout: float = 15.0) -> aiohttp.ClientSession:
    """One connection per request: through the fault proxy, each request draws its own fault."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(force_close=True, limit=0),
        timeout=aiohttp.ClientTimeout(total=timeout),
    )


class RetryingApi:
    """Calls under /api/v1 with a bearer token; ``calls`` is this client's log of POSTs."""

    def __init__(
        self, http: aiohttp.ClientSession, base_url: str, token: str, name: str, give_up: float
    ) -> None:
        self.http, self.base_url, self.token, self.name = http, base_url, token, name
        self.give_up = give_up  # seconds after which a call is left unanswered (the run's bound)
        self.calls: list[Call] = []

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
        call = Call(self.name, op, key, started, task_id=task_id, attempt=attempt, ref=ref, wait=wait)
        failures: list[Failure] = []
        backoff = BACKOFF_START
        while time.monotonic() - started < self.give_up:
            sent = time.monotonic()
            try:
                status, reply, retry_after = await self._send("POST", path, raw, headers, wait)
            except (aiohttp.ClientError, TimeoutError) as exc:
                failures.append(Failure(sent, time.monotonic(), type(exc).__name__))
            else:
                if status >= 500:
                    failures.append(Failure(sent, time.monotonic(), f"http {status}"))
                elif retry_after is not None and status in (409, 429, 503):
                    await asyncio.sleep(retry_after)
                    continue
                else:
                    answered = time.monotonic()
                    return self._log(replace(call, answered_at=answered, status=status, reply=reply,
                                             failures=tuple(failures)))  # fmt: skip
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_CAP)
        return self._log(replace(call, failures=tuple(failures)))

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET until a 200 (reads change nothing, so they are retried and not logged)."""
        backoff = BACKOFF_START
        while True:
            try:
                status, reply, _ = await self._send("GET", path, None, {}, 0.0, params)
                if status == 200:
                    return reply
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_CAP)

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

    def _log(self, call: Call) -> Call:
        self.calls.append(call)
        return call
