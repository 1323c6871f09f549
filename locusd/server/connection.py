"""One client connection: reads frames, gates each message, hands the ones that pass to the
connection's pygls session, writes and closes; and it is the core's
:class:`~locusd.server.peer.Peer` for that client.

Why the pieces are where they are: the rules a message must pass are pure functions
(:mod:`locusd.server.gates`), every use of pygls is in :mod:`locusd.server.pygls_adapter`, and
this module is the socket side: framing errors, parse errors, a bug in a gate answered instead
of taking the daemon down, byte-exact writes with a bound on what a slow reader can make the
daemon buffer, and the daemon → client requests (notifications, requests with their own id
space, LSP work-done progress).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import ValidationError

from locusd.protocol.base import Wire
from locusd.protocol.messages import ClientInfo
from locusd.server.framing import (
    MAX_BODY,
    BodyError,
    FrameError,
    RpcCode,
    encode_frame,
    error_message,
    parse_body,
    read_frame,
)
from locusd.server.gates import (
    Answer,
    Cancel,
    Deliver,
    Disposition,
    Drop,
    Exit,
    MsgId,
    Refuse,
    gate,
    valid_id,
)
from locusd.server.handlers import Handler
from locusd.server.params import shape
from locusd.server.peer import Core
from locusd.server.pygls_adapter import LocusProtocol, PyglsSession

log = logging.getLogger("locusd.server")

W = TypeVar("W", bound=Wire)

#: A client that stops reading while the daemon streams events to it is cut off at this much
#: unsent data, rather than letting the daemon's memory grow without bound.
MAX_WRITE_BUFFER = 4 * MAX_BODY


class PeerRequestError(Exception):
    """The client answered a daemon → client request with an error, or with a result that does
    not validate."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.message = message


class Connection:
    """One connected client: reads frames, gates and routes messages into its pygls
    session, and is the core's :class:`~locusd.server.peer.Peer` for that client."""

    _ids = itertools.count(1)

    def __init__(
        self,
        core: Core,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        handlers: Mapping[str, Handler],
        max_body: int = MAX_BODY,
    ) -> None:
        self.id: int = next(self._ids)
        self.core = core
        self.reader = reader
        self.writer = writer
        self.max_body = max_body
        self.client: ClientInfo | None = None
        self.closing = False
        self.finished = asyncio.Event()
        self._connected = False
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._request_ids = itertools.count(1)
        self._progress_tokens: set[str] = set()
        self.lsp = PyglsSession(self, handlers)

    @property
    def protocol(self) -> LocusProtocol:
        """The connection's pygls protocol object (for tests that look at its feature table)."""
        return self.lsp.protocol

    def __repr__(self) -> str:
        name = self.client.name if self.client else "?"
        return f"<Connection {self.id} {name}>"

    # --- reading -------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the client until it exits, disconnects or sends a frame that cannot be
        trusted; then tell the core it is gone."""
        try:
            while not self.closing:
                try:
                    body = await read_frame(self.reader, self.max_body)
                except FrameError as exc:
                    log.warning("client %d: bad frame, closing: %s", self.id, exc)
                    self.send(
                        error_message(
                            None,
                            RpcCode.PARSE_ERROR,
                            f"bad frame: {exc}; closing the connection",
                            {"kind": "bad_frame", "retryable": False},
                        )
                    )
                    break
                except OSError as exc:
                    log.info("client %d: read failed: %s", self.id, exc)
                    break
                if body is None:
                    break
                self.receive(body)
        finally:
            await self._finish()

    def receive(self, body: bytes) -> None:
        """Handle one frame's body (never raises: a bad message gets an error answer)."""
        try:
            data = parse_body(body)
        except BodyError as exc:
            self.send(error_message(None, RpcCode.PARSE_ERROR, f"parse error: {exc}"))
            return
        try:
            self._act(gate(data, self.lsp.session()))
        except Exception:  # a bug here must not take the daemon (or this client) down
            log.exception("client %d: failed to handle a message", self.id)
            msg_id = data.get("id") if isinstance(data, dict) else None
            if valid_id(msg_id) and "method" in data:
                self.send(error_message(msg_id, RpcCode.INTERNAL_ERROR, "internal error (see log)"))

    def _act(self, disposition: Disposition | None) -> None:
        """Carry out a gate's disposition."""
        match disposition:
            case Refuse(msg_id, code, message):
                self.send(error_message(msg_id, code, message))
            case Drop(reason):
                log.debug("client %d: %s", self.id, reason)
            case Answer(msg_id, data):
                self._response(msg_id, data)
            case Cancel(msg_id):
                self.lsp.cancel(msg_id)
            case Exit():
                self.close()
            case Deliver() as message:
                self._act(self.lsp.deliver(message))
                if message.method == "initialize" and self.lsp.initialized and not self._connected:
                    self._connected = True
                    self.core.connected(self)

    # --- responses to our requests -----------------------------------------------------------

    def _response(self, msg_id: Any, data: dict[str, Any]) -> None:
        future = self._pending.get(msg_id) if isinstance(msg_id, str) else None
        if future is None or future.done():
            log.debug("client %d: response to unknown id %r dropped", self.id, msg_id)
            return
        error = data.get("error")
        if error is not None:
            code = error.get("code") if isinstance(error, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            future.set_exception(
                PeerRequestError(
                    code if isinstance(code, int) else RpcCode.INTERNAL_ERROR,
                    message if isinstance(message, str) else "the client answered an error",
                )
            )
        else:
            future.set_result(data.get("result"))

    # --- Peer ---------------------------------------------------------------------------------

    def notify(self, method: str, params: Wire) -> None:
        """Send a notification; dropped once the connection is closing."""
        self.send({"jsonrpc": "2.0", "method": method, "params": params.wire()})

    async def request(self, method: str, params: Wire, result: type[W]) -> W:
        """Ask the client; ConnectionError if it goes away first, PeerRequestError if it
        answers an error or something that is not a ``result``."""
        raw = await self._request_raw(method, params.wire())
        try:
            return result.model_validate(raw)
        except ValidationError as exc:
            raise PeerRequestError(
                RpcCode.INVALID_PARAMS,
                f"the client's answer to {method} is not {shape(result)}: {exc.errors(include_url=False)[0]['msg']}",
            ) from None

    async def create_progress(self, token: str) -> None:
        """``window/workDoneProgress/create``, if the client declared
        ``window.workDoneProgress`` (LSP forbids it otherwise; progress is then not sent)."""
        if not self.lsp.supports_progress():
            return
        await self._request_raw("window/workDoneProgress/create", {"token": token})
        self._progress_tokens.add(token)

    def progress(self, token: str, value: dict[str, Any]) -> None:
        """``$/progress`` for a token created with :meth:`create_progress`."""
        if token not in self._progress_tokens:
            return
        self.send(
            {"jsonrpc": "2.0", "method": "$/progress", "params": {"token": token, "value": value}}
        )
        if value.get("kind") == "end":
            self._progress_tokens.discard(token)

    async def _request_raw(self, method: str, params: Any) -> Any:
        if self.closing:
            raise ConnectionError(f"client {self.id} has disconnected")
        # Our ids are strings with a prefix, so they never collide with the client's (pygls
        # keeps both kinds in one table, and a clash would resolve the wrong future).
        msg_id = f"locusd-{next(self._request_ids)}"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        try:
            return await future
        except asyncio.CancelledError:
            if not self.closing:  # tell the client to withdraw its prompt
                self.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": msg_id}})
            raise
        finally:
            self._pending.pop(msg_id, None)

    # --- writing and closing ----------------------------------------------------------------

    def send(self, message: Any, default: Callable[[Any], Any] | None = None) -> None:
        """Frame and write one message; a closed or closing connection drops it. An answer
        that cannot be serialised or exceeds the frame limit becomes an error answer."""
        if self.closing or self.writer.is_closing():
            return
        try:
            frame = encode_frame(message, default)
            if len(frame) - 64 > self.max_body:
                raise ValueError(f"{len(frame)} bytes exceed the frame limit of {self.max_body}")
        except (TypeError, ValueError) as exc:
            log.error("client %d: cannot send %s: %s", self.id, _describe(message), exc)
            msg_id = _response_id(message)
            if msg_id is None:
                return
            frame = encode_frame(
                error_message(msg_id, RpcCode.INTERNAL_ERROR, f"the answer cannot be sent: {exc}")
            )
        self.writer.write(frame)
        buffered = self.writer.transport.get_write_buffer_size()
        if buffered > MAX_WRITE_BUFFER:
            log.warning("client %d: %d bytes unread, closing the connection", self.id, buffered)
            self.closing = True
            self.writer.transport.abort()

    def close(self) -> None:
        """Close after what is already written has been flushed (exit, daemon stop)."""
        if not self.closing:
            self.closing = True
            self.writer.close()

    async def _finish(self) -> None:
        self.closing = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError(f"client {self.id} disconnected"))
        if self._connected:
            try:
                self.core.disconnected(self)
            except Exception:
                log.exception("client %d: core.disconnected failed", self.id)
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()
        self.finished.set()
        log.info("client %d (%s) disconnected", self.id, self.client.name if self.client else "?")


def _response_id(message: Any) -> MsgId | None:
    """The id of a response we are sending (dict or pygls message object), else None."""
    if isinstance(message, dict):
        if "method" in message:
            return None
        value = message.get("id")
    else:
        if getattr(message, "method", None) is not None:
            return None
        value = getattr(message, "id", None)
    return value if valid_id(value) else None


def _describe(message: Any) -> str:
    if isinstance(message, dict):
        return str(message.get("method") or f"answer to {message.get('id')!r}")
    return type(message).__name__
