"""Clients for the server tests: pygls's stock ``LanguageClient`` over the real socket, a raw
blocking socket client that speaks frames byte by byte, and a daemon running on a thread of
its own (so that blocking clients and hypothesis can drive it from the test's thread)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.io_ import run_async
from pygls.lsp.client import LanguageClient

from locusd.protocol import PROTOCOL_VERSION
from locusd.server.server import LocusServer
from tests.locusd.server.democore import DemoCore
from tests.support.shortpath import short_tmp

TIMEOUT = 10.0


def init_options(version: str = PROTOCOL_VERSION, name: str = "test") -> dict[str, Any]:
    return {"locus": {"protocolVersion": version, "client": {"name": name}}}


def init_params(
    options: Any = None, *, progress: bool = False, name: str = "test"
) -> types.InitializeParams:
    return types.InitializeParams(
        process_id=None,
        capabilities=types.ClientCapabilities(
            window=types.WindowClientCapabilities(work_done_progress=progress)
        ),
        initialization_options=init_options(name=name) if options is None else options,
    )


@dataclass
class Lsp:
    """A pygls LanguageClient connected to the socket (what an editor extension would use)."""

    client: LanguageClient
    writer: asyncio.StreamWriter
    task: asyncio.Task[None]

    async def call(self, method: str, params: Any = None) -> Any:
        return await asyncio.wait_for(
            self.client.protocol.send_request_async(method, params), TIMEOUT
        )

    async def initialize(self, **kwargs: Any) -> types.InitializeResult:
        result = await asyncio.wait_for(
            self.client.initialize_async(init_params(**kwargs)), TIMEOUT
        )
        self.client.initialized(types.InitializedParams())
        return result

    async def closed(self) -> None:
        """Wait until the daemon has closed the connection (the reader hits EOF)."""
        await asyncio.wait_for(self.task, TIMEOUT)


def on(client: LanguageClient, method: str, handler: Callable[[Any], Any]) -> None:
    """Register a client-side handler (as a call: pygls's ``feature`` decorator returns an
    unannotated callable, which would make a decorated function untyped)."""
    client.feature(method)(handler)


async def stop(client: LanguageClient) -> None:
    """pygls's ``JsonRPCClient.stop`` (unannotated)."""
    await asyncio.wait_for(client.stop(), TIMEOUT)  # type: ignore[no-untyped-call]  # pygls leaves stop() unannotated


@contextlib.asynccontextmanager
async def lsp_client(path: Path) -> AsyncIterator[Lsp]:
    client = LanguageClient("locus-test", "1.0")
    reader, writer = await asyncio.open_unix_connection(str(path))
    client.protocol.set_writer(writer)
    task = asyncio.create_task(
        run_async(stop_event=client._stop_event, reader=reader, protocol=client.protocol)
    )
    try:
        yield Lsp(client, writer, task)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, TIMEOUT)


@contextlib.asynccontextmanager
async def running_server() -> AsyncIterator[tuple[LocusServer, DemoCore, Path]]:
    """A daemon with the demo core on this test's event loop."""
    with short_tmp() as tmp:
        path = tmp / "run" / "locusd.sock"
        core = DemoCore(path)
        server = LocusServer(path)
        await server.start(core)
        try:
            yield server, core, path
        finally:
            await server.close()


# --- a daemon on its own thread, and a blocking raw client -------------------------------------


class ThreadedDaemon:
    """The server and the demo core on a private event loop in a thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.server: LocusServer | None = None
        self.core: DemoCore | None = None
        self.error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            self.core = DemoCore(self.path)
            self.server = LocusServer(self.path)
            await self.server.start(self.core)
        except BaseException as exc:
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        await self._stop.wait()
        await self.server.close()

    def __enter__(self) -> ThreadedDaemon:
        self.thread.start()
        assert self.ready.wait(TIMEOUT)
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(TIMEOUT)
        self.loop.close()


def frame(message: Any) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


class RawClient:
    """Blocking frames over the socket, for byte-exact and fuzz tests."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(str(path))
        self.buffer = b""
        self._ids = iter(range(1, 1 << 30))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, message: Any) -> None:
        self.send_bytes(frame(message))

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        self.buffer += data
        return bool(data)

    def recv(self) -> dict[str, Any] | None:
        """The next message, or None at EOF."""
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                return None
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        while len(rest) < length:
            if not self._fill():
                return None
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
        self.buffer = rest[length:]
        message: dict[str, Any] = json.loads(rest[:length])
        return message

    def at_eof(self) -> bool:
        """True once the daemon has closed the connection (after any pending messages)."""
        while True:
            if self.buffer:
                return False
            if not self._fill():
                return True

    def request(self, method: str, params: Any = None) -> dict[str, Any]:
        """Send a request and return its response (skipping notifications)."""
        msg_id = next(self._ids)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return self.response(msg_id)

    def response(self, msg_id: Any) -> dict[str, Any]:
        while True:
            reply = self.recv()
            assert reply is not None, f"the daemon closed the connection before answering {msg_id}"
            if "method" not in reply and reply.get("id") == msg_id:
                return reply

    def initialize(self) -> dict[str, Any]:
        reply = self.request(
            "initialize",
            {"processId": None, "capabilities": {}, "initializationOptions": init_options()},
        )
        assert "result" in reply, reply
        return reply
