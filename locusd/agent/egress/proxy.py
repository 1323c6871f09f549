"""The egress proxy: an HTTP proxy on a UNIX socket, outside the sandbox, that connects the
agent's commands to the hosts :class:`~locusd.agent.egress.rules.EgressRules` allows, and
records every connection.

It speaks what package managers send to an ``HTTPS_PROXY``/``HTTP_PROXY``: ``CONNECT host:port``
(a TLS tunnel it does not open: it sees the host, never the content) and plain HTTP requests in
absolute form (``GET http://host:port/path``), forwarded one per connection. Each connection is
judged on the host the command asked for, resolved here, judged again on its addresses, and
connected to the address that was judged (no second lookup a rebinding resolver could answer
differently). A refusal is an HTTP 403 whose body says why and how to allow the host. A redirect
to another host is the client's to follow, through the proxy again: judged like any other.

An allowed ``(address, port)`` in ``routes`` is served from a UNIX socket of the daemon's
instead (an external agent's model gateway, :mod:`locusd.agent.external.gateway`): no TCP port
on the host's loopback, which any local user could reach, is needed.

What is recorded (:class:`Connection`, to ``on_connection`` when it ends): host, port, the verdict
and its reason, bytes each way, how long. The proxy holds no credential and adds none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from locusd.agent.egress.bridge import pipe
from locusd.agent.egress.rules import EgressRules, Verdict, normalise_host

log = logging.getLogger(__name__)

MAX_HEADER = 64 * 1024
HEADER_TIMEOUT = 30.0
CONNECT_TIMEOUT = 30.0
MAX_CONNECTIONS = 64
_CHUNK = 64 * 1024
_HOP_BY_HOP = {b"proxy-connection", b"proxy-authorization", b"connection", b"keep-alive"}


@dataclass
class Connection:
    """One connection a command asked for, as the run's transcript and review show it."""

    host: str
    port: int
    method: str  # CONNECT, or the HTTP method of a plain request
    allowed: bool
    reason: str
    sent: int = 0  # bytes from the command to the host
    received: int = 0  # bytes from the host to the command
    started: float = field(default_factory=time.monotonic)
    duration: float = 0.0

    def count_sent(self, n: int) -> None:
        self.sent += n

    def count_received(self, n: int) -> None:
        self.received += n


class BadRequest(Exception):
    pass


def _target(request_line: bytes) -> tuple[str, str, int, bytes | None]:
    """(method, host, port, the request line to send upstream or None for a tunnel)."""
    try:
        method, target, version = request_line.decode("latin-1").rstrip("\r\n").split(" ")
    except ValueError:
        raise BadRequest("malformed request line") from None
    if method == "CONNECT":
        host, sep, digits = target.rpartition(":")
        if not sep or not digits.isdigit() or not 0 < int(digits) < 65536:
            raise BadRequest(f"CONNECT needs host:port, not {target!r}")
        return method, host, int(digits), None
    url = urlsplit(target)
    if url.scheme != "http" or not url.hostname:
        raise BadRequest(f"a plain request must name an http:// URL, not {target!r}")
    try:
        port = url.port or 80
    except ValueError:
        raise BadRequest(f"bad port in {target!r}") from None
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    return method, url.hostname, port, f"{method} {path} {version}\r\n".encode("latin-1")


def _forwarded_headers(head: bytes) -> bytes:
    """The request's headers without the proxy's own and the hop-by-hop ones; one request per
    connection (``Connection: close``), so a second request cannot ride an allowed host's
    connection to another."""
    lines = head.split(b"\r\n")[1:]
    kept = [
        line for line in lines if line and line.split(b":", 1)[0].strip().lower() not in _HOP_BY_HOP
    ]
    return b"\r\n".join([*kept, b"Connection: close", b"", b""])


def _refusal(status: str, text: str) -> bytes:
    body = f"locus egress: {text}\n".encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"X-Locus-Egress: refused\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class EgressProxy:
    """Serve on ``socket_path`` until :meth:`close`; ``on_connection`` hears each connection
    once it ends (or is refused)."""

    def __init__(
        self,
        rules: EgressRules,
        socket_path: Path,
        on_connection: Callable[[Connection], None],
        routes: Mapping[tuple[str, int], Path] | None = None,
    ) -> None:
        self.rules = rules
        #: Allowed ``(address, port)`` pairs served by a UNIX socket of the daemon's (the
        #: model gateway) instead of a TCP connection.
        self.routes = dict(routes or {})
        self.socket_path = socket_path
        self.on_connection = on_connection
        self._server: asyncio.Server | None = None
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.socket_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.socket_path.unlink(missing_ok=True)
        self._server = await asyncio.start_unix_server(self._accept, path=str(self.socket_path))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None
        self.socket_path.unlink(missing_ok=True)

    async def __aenter__(self) -> EgressProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            async with self._slots:
                await self._serve(reader, writer)
        except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass  # close() ends the connections still open: this handler's end, not an error
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(HEADER_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
        except (TimeoutError, asyncio.IncompleteReadError):
            return
        except asyncio.LimitOverrunError:
            writer.write(_refusal("431 Request Header Fields Too Large", "headers too large"))
            return
        first = head.split(b"\r\n", 1)[0]
        try:
            method, host, port, line = _target(first)
        except BadRequest as exc:
            writer.write(_refusal("400 Bad Request", str(exc)))
            return
        connection = Connection(host, port, method, False, "")
        try:
            upstream = await self._open(connection)
            if isinstance(upstream, bytes):
                writer.write(upstream)
                return
            up_reader, up_writer = upstream
            try:
                if line is None:
                    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                else:
                    request = line + _forwarded_headers(head)
                    connection.sent += len(request)
                    up_writer.write(request)
                await asyncio.gather(
                    pipe(reader, up_writer, connection.count_sent),
                    pipe(up_reader, writer, connection.count_received),
                )
            finally:
                up_writer.close()
        finally:
            connection.duration = round(time.monotonic() - connection.started, 3)
            self.on_connection(connection)

    async def _open(
        self, connection: Connection
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | bytes:
        """The upstream connection, or the answer that refuses it; the verdict goes in
        ``connection``."""
        verdict = self.rules.judge(connection.host, connection.port)
        addresses: list[str] = []
        normal = normalise_host(connection.host) or connection.host
        routed = self.routes.get((normal, connection.port))
        if verdict.allowed and routed is not None:
            connection.allowed, connection.reason = True, f"{verdict.reason}, served by Locus"
            try:
                return await asyncio.open_unix_connection(routed, limit=_CHUNK)
            except OSError as exc:
                connection.reason += f"; unreachable: {exc}"
                return _refusal("502 Bad Gateway", f"{normal}:{connection.port} is not serving")
        if verdict.allowed:
            try:
                found = await asyncio.get_running_loop().getaddrinfo(
                    normal, connection.port, type=socket.SOCK_STREAM
                )
                addresses = [str(info[4][0]) for info in found]
            except OSError as exc:
                verdict = Verdict(False, f"{normal} does not resolve: {exc}")
            else:
                verdict = self.rules.resolved(verdict, addresses)
        connection.allowed, connection.reason = verdict.allowed, verdict.reason
        if not verdict.allowed:
            return _refusal("403 Forbidden", verdict.reason)
        failure = "no address"
        for address in addresses:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    return await asyncio.open_connection(address, connection.port, limit=_CHUNK)
            except (OSError, TimeoutError) as exc:
                failure = str(exc) or type(exc).__name__
        connection.reason += f"; unreachable: {failure}"
        return _refusal(
            "502 Bad Gateway", f"{connection.host}:{connection.port} is unreachable: {failure}"
        )
