"""The egress proxy over its real UNIX socket, against real loopback servers: a tunnel and a
plain request to an allowed host go through with their bytes counted; the proxy's own headers
do not reach the host and one connection carries one request; malformed or oversized requests
and refused hosts get an answer that says why; every connection is recorded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from locusd.agent.egress.proxy import MAX_HEADER, Connection, EgressProxy
from locusd.agent.egress.rules import EgressRules, Rule
from tests.support.shortpath import short_tmp

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[int, list[dict[str, str]]]]:
    """A loopback HTTP server that answers with what it was sent (and keeps the headers)."""
    seen: list[dict[str, str]] = []

    async def echo(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(text=f"{request.method} {request.path_qs}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield runner.addresses[0][1], seen
    finally:
        await runner.cleanup()


@pytest.fixture
async def proxy(
    upstream: tuple[int, list[dict[str, str]]],
) -> AsyncIterator[tuple[EgressProxy, list[Connection]]]:
    port, _ = upstream
    done: list[Connection] = []
    rules = EgressRules([Rule.parse(f"localhost:{port}", "test")])
    with short_tmp() as where:
        async with EgressProxy(rules, where / "p.sock", done.append) as running:
            yield running, done


async def recorded(done: list[Connection]) -> Connection:
    """The one connection, once the proxy has seen both sides close."""
    async with asyncio.timeout(10):
        while not done:
            await asyncio.sleep(0.01)
    (connection,) = done
    return connection


async def ask(proxy: EgressProxy, request: bytes) -> bytes:
    reader, writer = await asyncio.open_unix_connection(str(proxy.socket_path))
    writer.write(request)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer


async def test_a_plain_request_goes_through_without_the_proxy_s_headers(
    proxy: tuple[EgressProxy, list[Connection]], upstream: tuple[int, list[dict[str, str]]]
) -> None:
    running, done = proxy
    port, seen = upstream
    request = (
        f"GET http://localhost:{port}/simple/pkg?x=1 HTTP/1.1\r\nHost: localhost:{port}\r\n"
        "Proxy-Authorization: Basic c2VjcmV0\r\nProxy-Connection: keep-alive\r\n"
        "Connection: keep-alive\r\n\r\n"
    ).encode()
    answer = await ask(running, request)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"GET /simple/pkg?x=1")
    (headers,) = seen
    assert "Proxy-Authorization" not in headers and "Proxy-Connection" not in headers
    assert headers["Connection"] == "close"  # one request per connection
    connection = await recorded(done)
    assert (connection.host, connection.port, connection.method) == ("localhost", port, "GET")
    assert connection.allowed and connection.received == len(answer)
    assert connection.sent > 0


async def test_a_tunnel_to_an_allowed_host_carries_bytes_both_ways(
    proxy: tuple[EgressProxy, list[Connection]], upstream: tuple[int, list[dict[str, str]]]
) -> None:
    running, done = proxy
    port, _ = upstream
    reader, writer = await asyncio.open_unix_connection(str(running.socket_path))
    writer.write(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n".encode())
    assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 200 Connection established\r\n\r\n"
    inner = b"GET /tunnelled HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    writer.write(inner)
    answer = await reader.read()
    writer.close()
    assert answer.endswith(b"GET /tunnelled")
    connection = await recorded(done)
    assert connection.method == "CONNECT" and connection.allowed
    assert (connection.sent, connection.received) == (len(inner), len(answer))


@pytest.mark.parametrize(
    ("request_bytes", "status", "says"),
    [
        (b"CONNECT evil.example:443 HTTP/1.1\r\n\r\n", b"403", b"not on the allowlist"),
        (b"GET http://evil.example/ HTTP/1.1\r\n\r\n", b"403", b"not on the allowlist"),
        (b"GET https://evil.example/ HTTP/1.1\r\n\r\n", b"400", b"http:// URL"),
        (b"GET /relative HTTP/1.1\r\n\r\n", b"400", b"http:// URL"),
        (b"CONNECT evil.example HTTP/1.1\r\n\r\n", b"400", b"host:port"),
        (b"CONNECT evil.example:99999 HTTP/1.1\r\n\r\n", b"400", b"host:port"),
        (b"NONSENSE\r\n\r\n", b"400", b"malformed"),
    ],
)
async def test_refusals_say_why(
    proxy: tuple[EgressProxy, list[Connection]], request_bytes: bytes, status: bytes, says: bytes
) -> None:
    running, _ = proxy
    answer = await ask(running, request_bytes)
    assert answer.startswith(b"HTTP/1.1 " + status), answer
    assert says in answer and b"X-Locus-Egress: refused" in answer


async def test_oversized_headers_are_refused(proxy: tuple[EgressProxy, list[Connection]]) -> None:
    running, done = proxy
    answer = await ask(running, b"GET http://x/ HTTP/1.1\r\nX: " + b"a" * (MAX_HEADER * 2))
    assert answer.startswith(b"HTTP/1.1 431") and not done
