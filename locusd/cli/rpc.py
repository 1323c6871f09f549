"""The CLI's connection to ``locusd``: the same JSON-RPC (LSP framing) that editors speak, with
the same handshake. Each ``locus`` command is a call through this; the CLI holds no logic an
editor would lack.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from locusd import __version__
from locusd.protocol import PROTOCOL_VERSION
from locusd.protocol.codes import Code
from locusd.server.framing import BodyError, FrameError, encode_frame, parse_body, read_frame

if TYPE_CHECKING:  # the models (pydantic) come with the caller's; see call_wire
    from locusd.protocol.base import Wire

W = TypeVar("W", bound="Wire")
OnNotification = Callable[[str, dict[str, Any]], None]
OnRequest = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


class DaemonError(Exception):
    """An error answer from the daemon: its code, message and ``data.kind``."""

    def __init__(self, code: int, message: str, data: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.kind = str((data or {}).get("kind", "error"))
        self.retryable = bool((data or {}).get("retryable", False))

    @property
    def auth_required(self) -> bool:
        return self.code in (Code.AUTH_REQUIRED, Code.AUTH_EXPIRED)


class NoAnswer(Exception):
    """Raised by an ``on_request`` handler that answers nothing: the daemon keeps waiting (for
    another client) or withdraws the request itself."""


class DaemonClient:
    """``async with DaemonClient(reader, writer) as daemon: await daemon.call(...)``"""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        on_notification: OnNotification | None = None,
        on_request: OnRequest | None = None,
        client_name: str = "locus-cli",
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.on_notification = on_notification or (lambda method, params: None)
        self.on_request = on_request
        self.client_name = client_name
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._loop: asyncio.Task[None] | None = None
        self.capabilities: dict[str, Any] = {}
        self._answering: set[asyncio.Task[None]] = set()
        #: Set when the daemon's side closed (it stopped, or was killed).
        self.closed = asyncio.Event()

    async def __aenter__(self) -> DaemonClient:
        self._loop = asyncio.create_task(self._read_loop())
        result = await self._request(
            "initialize",
            {
                "processId": None,
                "capabilities": {},
                "initializationOptions": {
                    "locus": {
                        "protocolVersion": PROTOCOL_VERSION,
                        "client": {"name": self.client_name, "version": __version__},
                    }
                },
            },
        )
        self.capabilities = result.get("capabilities", {}).get("experimental", {}).get("locus", {})
        self._send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._request("shutdown", None), 5)
            self._send({"jsonrpc": "2.0", "method": "exit"})
            await self.writer.drain()
        self.writer.close()
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._loop

    async def call(self, method: str, params: Wire, result: type[W]) -> W:
        return result.model_validate(await self._request(method, params.wire()))

    async def call_wire(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """The daemon's answer as it came (camelCase JSON, not validated): for a command that
        must start fast, without importing pydantic and the protocol's models."""
        return await self._request(method, params or {})

    # --- plumbing ----------------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        self.writer.write(encode_frame(message))

    async def _request(self, method: str, params: Any) -> Any:
        msg_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        self._send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        await self.writer.drain()
        return await future

    async def _read_loop(self) -> None:
        try:
            while (body := await read_frame(self.reader)) is not None:
                await self._dispatch(parse_body(body))
        except (ConnectionError, FrameError, BodyError) as exc:
            self._fail_all(ConnectionError(f"lost the connection to locusd: {exc}"))
            return
        self._fail_all(ConnectionError("locusd closed the connection"))

    async def _dispatch(self, message: dict[str, Any]) -> None:
        if "method" in message and "id" in message:  # a request from the daemon
            answering = asyncio.create_task(self._answer(message))
            self._answering.add(answering)
            answering.add_done_callback(self._answering.discard)
        elif "method" in message:
            self.on_notification(message["method"], message.get("params") or {})
        elif (future := self._pending.pop(int(message.get("id") or 0), None)) is not None:
            if future.done():  # its caller gave up (cancelled): the answer has no taker
                return
            if "error" in message:
                error = message["error"]
                future.set_exception(
                    DaemonError(error.get("code", 0), error.get("message", ""), error.get("data"))
                )
            else:
                future.set_result(message.get("result"))

    async def _answer(self, message: dict[str, Any]) -> None:
        if self.on_request is None:
            reply = {"error": {"code": -32601, "message": f"{message['method']} not handled"}}
        else:
            try:
                answer = await self.on_request(message["method"], message.get("params") or {})
            except NoAnswer:
                return
            reply = {"result": answer}
        self._send({"jsonrpc": "2.0", "id": message["id"], **reply})

    def _fail_all(self, exc: Exception) -> None:
        self.closed.set()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(exc)
        self._pending.clear()
