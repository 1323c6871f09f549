"""A recording reverse proxy: put it between a client and a real server to keep every request
the client sent, byte for byte — what a privacy test checks "left the machine" against.

One upstream session is shared by every forwarded request and closed first on exit, so a
request still waiting upstream (a long poll) ends at once instead of holding the shutdown.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

import aiohttp
from aiohttp import web

# Hop-by-hop or recomputed headers: never forwarded as they came.
_NOT_FORWARDED = frozenset({"host", "content-length", "transfer-encoding", "connection"})


@dataclass(frozen=True)
class Request:
    """One request as the client sent it: method, path with its query string, raw body."""

    method: str
    path_qs: str
    body: bytes

    @property
    def raw(self) -> bytes:
        """Everything of it a leak could hide in (headers aside): the path and the body."""
        return self.path_qs.encode() + b"\n" + self.body


class Recorder:
    """``async with Recorder(upstream) as proxy``: ``proxy.url`` forwards to ``upstream``;
    ``proxy.requests`` keeps what was sent, in order."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.requests: list[Request] = []
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Recorder:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def sent(self) -> bytes:
        """Every recorded path and body, one after the other."""
        return b"\n".join(request.raw for request in self.requests)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        body = await request.read()
        self.requests.append(Request(request.method, request.path_qs, body))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED}
        try:
            async with self._session.request(
                request.method, self.upstream + request.path_qs, data=body, headers=headers
            ) as answer:
                payload = await answer.read()
                kept = {k: v for k, v in answer.headers.items() if k.lower() == "content-type"}
                return web.Response(status=answer.status, body=payload, headers=kept)
        except aiohttp.ClientError as exc:  # the recorder is closing (a long poll was waiting)
            return web.Response(status=502, text=f"recorder: upstream unreachable: {exc}")
