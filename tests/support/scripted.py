"""Shared machinery for the scripted, loopback model-API servers used in tests.

No model API is reachable from the test machines, so the Anthropic and OpenAI SDKs are
pointed (``base_url``) at small aiohttp servers that speak the real wire formats and
replay a *script*. This module holds what both servers share:

- ``ScriptedServer``: lifecycle (``async with``, or ``with server.in_thread():`` for
  synchronous callers and subprocess tests), request recording, auth checks, script
  consumption, SSE framing and the ``Hang`` behaviour.
- Script items both APIs understand:

  - ``Fail(status, error_type, message="", headers={}, code=None)``: answer with an error
    in the API's own error shape (the API module picks a realistic default message).
  - ``Hang()``: start the response (for a stream: the opening events) and then wait
    until the client goes away. Sets ``server.hung`` / ``item.reached`` on arrival and
    ``server.disconnected`` / ``item.disconnected`` once the client disconnected.

  - ``Reset()``: close the connection before any response (the SDK sees "server
    disconnected without sending a response", a connection error it retries).
  - ``Drop(reply, after_frames=3, abort=False, garbage=b"")``: stream ``reply`` in the
    API's wire format but stop after its first ``after_frames`` SSE frames, before the
    terminal event (``message_stop`` / ``[DONE]``) — a tool call's input can be cut in
    half — then write ``garbage`` (e.g. a frame whose data is not JSON). With
    ``abort=False`` the body then ends; with ``abort=True`` the socket is closed mid-body
    (an incomplete chunked read).

  Each API module adds its own ``Reply`` (and ``MidStreamError``).
- ``Recorded``: one received request (path, lower-cased headers, parsed JSON body, which
  auth style was used, the status answered and the script item served).
- ``PrefixCache``: the prompt-caching simulation (token estimate = canonical JSON length
  / 4, prefixes remembered by a rolling hash).
- ``Signal``: a one-shot flag that the server's loop sets and that the test can await
  from its own loop (or block on from another thread).

A script is either a sequence of items, consumed one per model request, or a callable
``(request_json) -> item`` for dynamic scripts. When a sequence runs out the server
answers 500 with a message saying so (and ``x-should-retry: false`` so the SDK does not
retry it), so a test with a too-short script fails loudly.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import threading
import uuid
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Self, TypeAlias, TypeVar

from aiohttp import web

__all__ = [
    "CacheUsage",
    "Drop",
    "Fail",
    "Handler",
    "Hang",
    "Json",
    "PrefixCache",
    "Recorded",
    "Reset",
    "Script",
    "ScriptedServer",
    "Segment",
    "Signal",
    "canonical_json",
    "estimate_tokens",
    "new_id",
    "split_text",
]

ItemT = TypeVar("ItemT")
ReplyT = TypeVar("ReplyT")
Json: TypeAlias = dict[str, Any]
Script: TypeAlias = Sequence[ItemT] | Callable[[Json], ItemT]
Handler: TypeAlias = Callable[[web.Request, "Recorded"], Awaitable[web.StreamResponse]]

_HOST = "127.0.0.1"
_STOP_TIMEOUT_S = 30.0


class Signal:
    """A one-shot flag settable from the server's loop and awaitable from any loop or thread.

    ``asyncio.Event`` is bound to one loop, but a server started with ``in_thread()`` runs
    on its own loop while the test waits on another; this wakes waiters on their loops.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flag = threading.Event()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def set(self) -> None:
        with self._lock:
            self._flag.set()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is already closed
                loop.call_soon_threadsafe(_resolve, future)

    def is_set(self) -> bool:
        return self._flag.is_set()

    async def wait(self) -> None:
        """Wait until set (wrap in ``asyncio.wait_for`` for a deadline)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._flag.is_set():
                return
            future: asyncio.Future[None] = loop.create_future()
            entry = (loop, future)
            self._waiters.append(entry)
        try:
            await future
        finally:
            with self._lock, contextlib.suppress(ValueError):
                self._waiters.remove(entry)

    def wait_blocking(self, timeout: float | None = None) -> bool:
        """For synchronous callers; returns whether the flag is set."""
        return self._flag.wait(timeout)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@dataclass
class Recorded:
    """One request as the server received it, kept in ``server.requests``."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON, or None when absent / not JSON
    auth_style: str | None  # "bearer", the key header's name, or None when none was sent
    api_key: str | None
    status: int = 0  # the status answered; 0 if the client left before any answer
    item: object | None = None  # the script item served, None if none was consumed
    error: BaseException | None = None  # what the server's own code raised (answered 500)


@dataclass
class Fail:
    """Answer with an HTTP error in the API's own error shape.

    ``message`` empty means a realistic default for ``error_type``; ``headers`` is where
    ``retry-after`` / ``retry-after-ms`` / ``x-should-retry`` go; ``code`` is OpenAI's
    ``error.code`` and Anthropic's ``error.details.error_code``.
    """

    status: int
    error_type: str
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    code: str | None = None


@dataclass
class Hang:
    """Start the response, then wait until the client disconnects (cancellation tests)."""

    reached: Signal = field(default_factory=Signal, repr=False, compare=False)
    disconnected: Signal = field(default_factory=Signal, repr=False, compare=False)


@dataclass
class Reset:
    """Close the connection before answering anything."""


@dataclass
class Drop(Generic[ReplyT]):
    """Stream ``reply`` but stop after ``after_frames`` frames, before the terminal event;
    ``garbage`` is written after them (a garbled frame, say); ``abort`` cuts the socket
    mid-body instead of ending the body cleanly."""

    reply: ReplyT
    after_frames: int = 3
    abort: bool = False
    garbage: bytes = b""


def new_id(prefix: str) -> str:
    """An id shaped like the APIs' own (``msg_…``, ``toolu_…``, ``call_…``, ``req_…``)."""
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def canonical_json(value: Any) -> str:
    """Deterministic JSON: the unit for token estimates and prefix hashes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def split_text(text: str, parts: int) -> list[str]:
    """Split ``text`` into at most ``parts`` non-empty, contiguous pieces (streamed deltas)."""
    if not text:
        return []
    size = -(-len(text) // max(1, parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


def strip_cache_control(value: Any) -> Any:
    """Breakpoint markers do not change the cached content, so hashes ignore them."""
    if isinstance(value, dict):
        return {k: strip_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [strip_cache_control(v) for v in value]
    return value


@dataclass(frozen=True)
class Segment:
    """One cacheable unit of a prompt, in API order; ``breakpoint`` is the TTL if one ends here."""

    data: Any
    breakpoint: str | None = None


@dataclass(frozen=True)
class CacheUsage:
    """How a prompt's estimated tokens split between cache read, cache write and uncached."""

    total: int
    read: int
    created: int
    created_by_ttl: dict[str, int]
    uncached: int


def estimate_tokens(value: Any) -> int:
    """The rough estimate used everywhere: canonical JSON length / 4."""
    return len(canonical_json(value)) // 4


class PrefixCache:
    """Simulates prompt caching: remembers the prefixes that ended at a breakpoint.

    Writes happen only at breakpoints. A read is found the way the Anthropic API finds it:
    from each breakpoint it checks that boundary and the ``lookback`` (20) block boundaries
    before it for a remembered prefix; ``read`` is the longest such hit over all
    breakpoints (a prompt without breakpoints reads nothing). So an entry written more than
    20 blocks before the newest breakpoint — a turn of 12 parallel tool calls adds 24 — is
    missed unless another breakpoint sits within 20 blocks of it. ``created`` is the rest up
    to the last breakpoint, ``uncached`` what follows it. Prefixes below
    ``min_cacheable_tokens`` are neither written nor read, as on the real API. TTL expiry
    is not simulated. ``lookback=None`` looks back without limit (OpenAI's automatic
    caching, which has no breakpoints to look back from).
    """

    def __init__(self, min_cacheable_tokens: int = 0, lookback: int | None = 20) -> None:
        self.min_cacheable_tokens = min_cacheable_tokens
        self.lookback = lookback
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def account(self, seed: str, segments: Sequence[Segment], *, write: bool = True) -> CacheUsage:
        """Split the prompt's tokens; with ``write`` remember its breakpoint prefixes."""
        hashes: list[str] = []
        ends: list[int] = []  # estimated tokens of the prefix ending after each segment
        digest = hashlib.sha256(seed.encode()).hexdigest()
        chars = 0
        for segment in segments:
            text = canonical_json(strip_cache_control(segment.data))
            digest = hashlib.sha256(f"{digest}\n{text}".encode()).hexdigest()
            chars += len(text)
            hashes.append(digest)
            ends.append(chars // 4)
        total = ends[-1] if ends else 0
        points = [
            i
            for i, seg in enumerate(segments)
            if seg.breakpoint is not None and ends[i] >= self.min_cacheable_tokens
        ]
        if not points:
            return CacheUsage(total, 0, 0, {}, total)
        last = points[-1]
        with self._lock:
            hits = [self._hit(hashes, point) for point in points]
            hit = max((h for h in hits if h is not None), default=None)
            if write:
                self._seen.update(hashes[i] for i in points)
        read = ends[hit] if hit is not None and ends[hit] >= self.min_cacheable_tokens else 0
        by_ttl: dict[str, int] = {}
        previous = read
        for i in points:
            if ends[i] > previous:
                ttl = segments[i].breakpoint or ""
                by_ttl[ttl] = by_ttl.get(ttl, 0) + ends[i] - previous
                previous = ends[i]
        created = ends[last] - read if ends[last] > read else 0
        return CacheUsage(total, read, created, by_ttl, total - read - created)

    def _hit(self, hashes: Sequence[str], point: int) -> int | None:
        """The latest remembered boundary within the lookback window ending at ``point``."""
        stop = -1 if self.lookback is None else max(-1, point - self.lookback - 1)
        return next((i for i in range(point, stop, -1) if hashes[i] in self._seen), None)


class ScriptedServer(ABC, Generic[ItemT]):
    """Base for the scripted API servers: lifecycle, recording, auth and script handling.

    Subclasses provide the routes and render items and errors in their API's wire format.
    """

    #: Auth styles the API accepts, in precedence order: "bearer" or a header name.
    accepted_auth: tuple[str, ...] = ("bearer",)
    #: The API's ``error.type`` for an internal error.
    server_error_type = "api_error"

    #: How far back from a breakpoint a cache read is found (None: without limit).
    cache_lookback: int | None = 20

    def __init__(
        self,
        script: Script[ItemT],
        *,
        min_cacheable_tokens: int = 0,
        chunks: int = 3,
        validate: bool = True,
    ) -> None:
        """``chunks``: how many deltas a streamed text / tool input is split into.
        ``min_cacheable_tokens``: the API's shortest cacheable prompt (0 = no minimum).
        ``validate``: reject malformed requests with the real API's 400s."""
        self.cache = PrefixCache(min_cacheable_tokens, self.cache_lookback)
        self.chunks = chunks
        self.validate = validate
        self.requests: list[Recorded] = []
        self.errors: list[BaseException] = []  # raised by a script callable or the server
        self.hung = Signal()
        self.disconnected = Signal()
        self._script_fn: Callable[[Json], ItemT] | None = None
        self._queue: deque[ItemT] = deque()
        if callable(script):
            self._script_fn = script
        else:
            self._queue.extend(script)
        self._served = 0
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._release: asyncio.Event | None = None
        self._stopping = False

    # -- lifecycle -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` once started."""
        if self._base_url is None:
            raise RuntimeError("server not started")
        return self._base_url

    @property
    def remaining(self) -> int | None:
        """Unconsumed items of a sequence script (None for a callable script)."""
        return None if self._script_fn is not None else len(self._queue)

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for path, handler in self.routes().items():
            app.router.add_post(path, self._wrap(handler, needs_json=True))
        app.router.add_route("*", "/{tail:.*}", self._wrap(self._unrouted, needs_json=False))
        # handler_cancellation: a client that goes away cancels its handler, which is
        # how a Hang learns about the disconnect without polling.
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, _HOST, 0)
        await site.start()
        self._runner = runner
        self._release = asyncio.Event()
        self._stopping = False
        port = runner.addresses[0][1]
        self._base_url = f"http://{_HOST}:{port}"

    async def stop(self) -> None:
        if self._runner is None:
            return
        self._stopping = True
        if self._release is not None:
            self._release.set()  # let hanging handlers finish instead of stalling shutdown
        await self._runner.cleanup()
        self._runner = None
        self._base_url = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @contextlib.contextmanager
    def in_thread(self) -> Iterator[Self]:
        """Serve from a background thread with its own loop (for synchronous callers)."""
        started = threading.Event()
        box: dict[str, Any] = {}

        async def serve() -> None:
            box["loop"] = asyncio.get_running_loop()
            box["stop"] = stop = asyncio.Event()
            try:
                await self.start()
            except BaseException as err:
                box["error"] = err
                raise
            finally:
                started.set()
            try:
                await stop.wait()
            finally:
                await self.stop()

        def run() -> None:
            with contextlib.suppress(BaseException):
                asyncio.run(serve())

        thread = threading.Thread(target=run, name=f"{type(self).__name__}-loop", daemon=True)
        thread.start()
        started.wait()
        if "error" in box:
            thread.join()
            raise box["error"]
        try:
            yield self
        finally:
            box["loop"].call_soon_threadsafe(box["stop"].set)
            thread.join(_STOP_TIMEOUT_S)

    # -- hooks for subclasses --------------------------------------------------------

    @abstractmethod
    def routes(self) -> dict[str, Handler]:
        """POST path -> handler; every request is recorded and auth-checked first."""

    @abstractmethod
    def error_response(
        self,
        status: int,
        error_type: str,
        message: str = "",
        *,
        headers: Mapping[str, str] | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> web.Response:
        """An error in the API's shape; an empty ``message`` means the API's default."""

    @abstractmethod
    def missing_auth_response(self) -> web.Response:
        """The API's answer to a request without credentials."""

    # -- shared behaviour ------------------------------------------------------------

    def take(self, record: Recorded) -> ItemT | None:
        """The item for this model request, or None when the sequence script ran out."""
        if self._script_fn is not None:
            item = self._script_fn(record.body)
        elif self._queue:
            item = self._queue.popleft()
        else:
            return None
        self._served += 1
        record.item = item
        return item

    def take_or_answer(self, record: Recorded, *, streaming: bool) -> ItemT | web.Response:
        """The item to render, or the answer already decided by it: the script ran out, a
        ``Fail``, or a ``Reset`` / non-streaming ``Drop`` (the connection gets closed)."""
        item = self.take(record)
        if item is None:
            return self.exhausted_response()
        if isinstance(item, Fail):
            return self.fail_response(item)
        if isinstance(item, Reset) or (isinstance(item, Drop) and not streaming):
            return web.Response()  # never sent: the connection is closed instead
        return item

    def exhausted_response(self) -> web.Response:
        return self._internal_error(
            f"scripted server: the script ran out after {self._served} replies; "
            f"request #{len(self.requests)} was not scripted"
        )

    def _internal_error(self, message: str) -> web.Response:
        # x-should-retry: false keeps the SDK from retrying a broken test setup.
        return self.error_response(
            500, self.server_error_type, message, headers={"x-should-retry": "false"}
        )

    def fail_response(self, item: Fail) -> web.Response:
        return self.error_response(
            item.status, item.error_type, item.message, headers=item.headers, code=item.code
        )

    async def hang(self, item: Hang) -> None:
        """Block until the client disconnects (cancelled by aiohttp) or the server stops."""
        assert self._release is not None
        item.reached.set()
        self.hung.set()
        try:
            await self._release.wait()
        except asyncio.CancelledError:
            if not self._stopping:
                item.disconnected.set()
                self.disconnected.set()
            raise

    async def open_stream(
        self, request: web.Request, record: Recorded, headers: Mapping[str, str] | None = None
    ) -> web.StreamResponse:
        """Send the headers of a 200 ``text/event-stream`` response."""
        record.status = 200  # recorded now: a Hang's handler never returns normally
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                **(headers or {}),
            },
        )
        await response.prepare(request)
        return response

    @staticmethod
    def sse_frame(data: Any, event: str | None = None) -> bytes:
        payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
        head = f"event: {event}\n" if event is not None else ""
        return f"{head}data: {payload}\n\n".encode()

    @staticmethod
    async def write_frames(response: web.StreamResponse, frames: Iterable[bytes]) -> bool:
        """Write each frame as its own chunk; False if the client went away meanwhile."""
        try:
            for frame in frames:
                await response.write(frame)
        except ConnectionResetError:
            return False
        return True

    async def cut(
        self,
        request: web.Request,
        response: web.StreamResponse,
        frames: Sequence[bytes],
        item: Drop[Any],
    ) -> web.StreamResponse:
        """Send the first ``item.after_frames`` frames, then end the body or cut the socket."""
        await self.write_frames(response, [*frames[: item.after_frames], item.garbage])
        if item.abort:
            self.abort(request)
            return response
        return await self.finish(response)

    @staticmethod
    def abort(request: web.Request) -> None:
        """Close the socket at once: no response, or the rest of a started one, ever arrives."""
        if request.transport is not None:
            request.transport.abort()

    @staticmethod
    async def finish(response: web.StreamResponse) -> web.StreamResponse:
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    def _credential(self, request: web.Request) -> tuple[str | None, str | None]:
        for style in self.accepted_auth:  # "bearer", or the name of a key header
            if style != "bearer" and request.headers.get(style):
                return style, request.headers[style]
            if style == "bearer":
                scheme, _, token = request.headers.get("Authorization", "").partition(" ")
                if scheme.lower() == "bearer" and token.strip():
                    return style, token.strip()
        return None, None

    def _wrap(
        self, handler: Handler, *, needs_json: bool
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            raw = await request.read()
            body: Any = None
            bad_json = False
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    bad_json = True
            style, key = self._credential(request)
            record = Recorded(
                method=request.method,
                path=request.path,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                auth_style=style,
                api_key=key,
            )
            self.requests.append(record)
            response: web.StreamResponse
            if key is None:
                response = self.missing_auth_response()
            elif bad_json or (needs_json and not isinstance(body, dict)):
                response = self.error_response(
                    400, "invalid_request_error", "The request body is not valid JSON."
                )
            else:
                try:
                    response = await handler(request, record)
                    if isinstance(record.item, Reset):
                        self.abort(request)
                        return response  # never sent; record.status stays 0
                except Exception as err:  # a broken script must fail the test, loudly
                    record.error = err
                    self.errors.append(err)
                    if record.status:  # the stream had started: all we can do is cut it
                        raise
                    response = self._internal_error(f"scripted server: {type(err).__name__}: {err}")
            record.status = response.status
            return response

        return wrapped

    def not_found_response(self, request: web.Request) -> web.Response:
        return self.error_response(404, "not_found_error", "Not Found")

    async def _unrouted(self, request: web.Request, record: Recorded) -> web.StreamResponse:
        return self.not_found_response(request)
