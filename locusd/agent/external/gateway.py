"""The model gateway: a reverse proxy the daemon runs for one external agent's run, between the
agent and its model endpoint, so the run's budget counts what the model server says the agent
used, not what the agent reports (docs/acp.md, "Budget").

It listens on a UNIX socket outside the sandbox; the run's egress proxy maps its one rule,
``127.0.0.1:INSIDE_PORT``, onto that socket, and the relay inside listens on that port: the
agent's base URL is ``http://127.0.0.1:INSIDE_PORT`` plus the upstream's path, and its network
reaches this and nothing else (not the real endpoint either). No TCP port on the host: no other
local user can spend through it.

Each request goes to the one upstream (``https`` or ``http``), its path joined onto the
upstream's origin under the upstream's own path; anything else is an HTTP error that says
why: a target that is not a path (absolute URL, ``CONNECT``), ``.``/``..`` segments (encoded
too), a path outside the upstream's, an over-long body. The agent's ``Host`` is replaced by
the upstream's; hop-by-hop headers are dropped both ways; redirects are not followed (the
agent's own network cannot follow them either). The response streams back as it comes, read
on the way by :class:`~locusd.agent.external.usage.UsageReader`; each call, once over, goes to
``on_call`` (:class:`ModelCall`). Once ``refusal()`` says why not (the run's budget is spent),
every later call is refused before it reaches the upstream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from locusd.agent.external.usage import Format, UsageReader, format_of
from locusd.agent.messages import Usage

log = logging.getLogger(__name__)

#: The gateway's port on the sandbox's own loopback (a namespace of its own: no clash).
INSIDE_PORT = 8090
#: The API key the agent is given: the gateway puts the user's on the way out, so the agent
#: process (and every command it runs) never holds it.
STAND_IN_KEY = "locus-stand-in-key"
#: Where each API takes its key: a header holding it, or ``Authorization: Bearer``.
KEY_HEADERS = ("x-api-key", "x-goog-api-key")
MAX_REQUEST = 32 * 1024 * 1024
MAX_CALLS = 32
CONNECT_TIMEOUT = 30.0
#: A model may think for a while between two events of its stream.
READ_TIMEOUT = 600.0
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
        "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "host",
        "content-length", "content-encoding", "accept-encoding", "expect",
    }
)  # fmt: skip


def inside_url(upstream: str) -> str:
    """The base URL the agent is given: the gateway, as seen inside, with the upstream's path."""
    return f"http://127.0.0.1:{INSIDE_PORT}{urlsplit(upstream).path.rstrip('/')}"


@dataclass
class ModelCall:
    """One request through the gateway, as the run's transcript and journal record it."""

    method: str
    path: str
    format: Format = "unknown"
    status: int = 0  # the upstream's answer; the gateway's own when refused (``refused``)
    refused: str | None = None
    usage: Usage | None = None
    model: str | None = None
    problem: str | None = None  # why usage is missing or partial
    sent: int = 0  # body bytes to the upstream
    received: int = 0  # body bytes to the agent
    started: float = field(default_factory=time.monotonic)
    duration: float = 0.0


class Refused(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


def _hop_by_hop(headers: Mapping[str, str]) -> frozenset[str]:
    """The headers that are for one hop only: the fixed ones, and those ``Connection`` names."""
    named = headers.get("Connection", "")
    return _HOP_BY_HOP | {token.strip().lower() for token in named.split(",") if token.strip()}


class ModelGateway:
    """Serve on ``socket_path`` until :meth:`close`, forwarding to ``upstream`` (a base URL)."""

    def __init__(
        self,
        upstream: str,
        socket_path: Path,
        on_call: Callable[[ModelCall], None],
        refusal: Callable[[], str | None] = lambda: None,
        key: str | None = None,
    ) -> None:
        url = URL(upstream)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"the model endpoint {upstream!r} is not an http(s) URL")
        self.origin = url.origin()
        self.prefix = unquote(url.raw_path).rstrip("/")
        self.socket_path = socket_path
        self.on_call = on_call
        self.refusal = refusal
        #: The user's API key, put where the agent sent :data:`STAND_IN_KEY` (None: the
        #: agent's key passes as it is).
        self.key = key
        self._runner: web.ServerRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._slots = asyncio.Semaphore(MAX_CALLS)

    async def start(self) -> None:
        self.socket_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.socket_path.unlink(missing_ok=True)
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT
        )
        self._session = aiohttp.ClientSession(timeout=timeout, auto_decompress=True)
        # A call whose agent went away ends (and is recorded) then, not at the model's end.
        server = web.Server(self._handle, handler_cancellation=True, access_log=None)
        self._runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.UnixSite(self._runner, str(self.socket_path)).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self.socket_path.unlink(missing_ok=True)

    async def __aenter__(self) -> ModelGateway:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def target(self, method: str, raw: str) -> URL:
        """The upstream URL of a request line's method and target, or :class:`Refused`."""
        if method not in METHODS:
            raise Refused(
                405,
                f"{method} is not a model API call; the gateway forwards only {', '.join(sorted(METHODS))}",
            )
        path, _, query = raw.partition("?")
        if not path.startswith("/") or path.startswith("//") or "#" in raw:
            raise Refused(
                400, f"the target must be a path on the model endpoint, not {raw[:200]!r}"
            )
        decoded = unquote(path)
        segments = decoded.split("/")
        if "\\" in decoded or any(s in (".", "..") for s in segments) or "\x00" in decoded:
            raise Refused(400, f"the path {path[:200]!r} has '.' or '..' segments or a backslash")
        if decoded != self.prefix and not decoded.startswith(f"{self.prefix}/"):
            raise Refused(
                404, f"{path[:200]!r} is outside the model endpoint's path {self.prefix or '/'}"
            )
        return URL.build(
            scheme=self.origin.scheme,
            host=self.origin.raw_host or "",
            port=self.origin.explicit_port,
            path=path,
            query_string=query,
            encoded=True,
        )

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        call = ModelCall(request.method, request.raw_path[:500])
        try:
            async with self._slots:
                return await self._forward(request, call)
        except Refused as refused:
            call.status, call.refused = refused.status, str(refused)
            return web.Response(
                status=refused.status,
                text=f"locus model gateway: {refused}\n",
                headers={"X-Locus-Gateway": "refused"},
            )
        finally:
            call.duration = round(time.monotonic() - call.started, 3)
            try:
                self.on_call(call)
            except Exception:  # the run's record must not end the agent's call
                log.exception("recording a model call failed")

    async def _forward(self, request: web.BaseRequest, call: ModelCall) -> web.StreamResponse:
        url = self.target(request.method, request.raw_path)
        spent = self.refusal()
        if spent is not None:
            raise Refused(429, f"the run is ending: {spent}")
        call.format = format_of(url.path)
        hop = _hop_by_hop(request.headers)
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in hop)
        headers["Accept-Encoding"] = "identity"
        url = self._keyed(url, headers)
        data: AsyncIterator[bytes] | None = None
        length = request.content_length
        if length is not None and length > MAX_REQUEST:
            raise Refused(413, f"the request body ({length} bytes) is over {MAX_REQUEST}")
        if length is not None:
            headers["Content-Length"] = str(length)
        if request.body_exists:  # streamed on as it comes (chunked when it came chunked)
            data = self._counted(request, call)
        assert self._session is not None
        try:
            upstream = await self._session.request(
                request.method, url, headers=headers, data=data, allow_redirects=False
            )
        except Exception as exc:
            if call.sent > MAX_REQUEST:  # _counted stopped the body: the upstream call failed
                raise Refused(413, f"the request body is over {MAX_REQUEST} bytes") from None
            if not isinstance(exc, aiohttp.ClientError | TimeoutError | OSError):
                raise
            raise Refused(
                502, f"the model endpoint is unreachable: {exc or type(exc).__name__}"
            ) from None
        async with upstream:
            call.status = upstream.status
            reader = UsageReader(
                call.format, sse="text/event-stream" in upstream.headers.get("Content-Type", "")
            )
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            back = _hop_by_hop(upstream.headers)
            for name, value in upstream.headers.items():
                if name.lower() not in back:
                    response.headers.add(name, value)
            try:
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    call.received += len(chunk)
                    reader.feed(chunk)
                    await response.write(chunk)
                await response.write_eof()
            except (aiohttp.ClientError, TimeoutError, ConnectionError, OSError) as exc:
                call.problem = f"the call was cut: {exc or type(exc).__name__}"
            finally:
                metered = reader.finish()
                call.usage, call.model = metered.usage, metered.model
                call.problem = call.problem or metered.problem
                if call.format == "unknown":
                    call.problem = call.problem or "an API the gateway cannot read: bytes only"
            return response

    def _keyed(self, url: URL, headers: CIMultiDict[str]) -> URL:
        """The user's key where the agent's request carries the stand-in: a key header,
        ``Authorization: Bearer``, or Gemini's ``?key=``."""
        if self.key is None:
            return url
        for name in KEY_HEADERS:
            if headers.get(name) == STAND_IN_KEY:
                headers[name] = self.key
        if headers.get("Authorization") == f"Bearer {STAND_IN_KEY}":
            headers["Authorization"] = f"Bearer {self.key}"
        if url.query.get("key") == STAND_IN_KEY:
            url = url.update_query(key=self.key)
        return url

    @staticmethod
    async def _counted(request: web.BaseRequest, call: ModelCall) -> AsyncIterator[bytes]:
        """The request's body as it comes, counted; it stops past :data:`MAX_REQUEST`."""
        async for chunk in request.content.iter_any():
            call.sent += len(chunk)
            if call.sent > MAX_REQUEST:
                raise Refused(413, f"the request body is over {MAX_REQUEST} bytes")
            yield chunk
