"""The fault proxy does each fault it claims: a cut request never reaches the server, a cut
response reaches it and not the client, a reset reaches nothing, and the plan is the seed's."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from tests.support.faultproxy import Fault, FaultPlan, FaultProxy, Kind


def test_the_same_seed_draws_the_same_faults() -> None:
    first, second, other = FaultPlan(3, 0.5), FaultPlan(3, 0.5), FaultPlan(4, 0.5)
    drawn = [first.next() for _ in range(200)]
    assert drawn == [second.next() for _ in range(200)]
    assert drawn != [other.next() for _ in range(200)]
    assert {f.kind for f in drawn} == set(Kind)  # every kind, and clean connections too


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A real HTTP server that records every request it received in full."""
    seen: list[bytes] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(await request.read())
        return web.json_response({"ok": True, "padding": "x" * 2000})

    app = web.Application()
    app.router.add_post("/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1], seen
    finally:
        await runner.cleanup()


async def post(port: int) -> int:
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http,
        http.post(f"http://127.0.0.1:{port}/", data=b"payload") as resp,
    ):
        await resp.read()
        return resp.status


def through(upstream_port: int, kind: Kind | None) -> FaultProxy:
    plan = FaultPlan(1, rate=1.0, kinds=(kind,)) if kind else FaultPlan(1, rate=0.0)
    proxy = FaultProxy(upstream_port, plan)
    proxy.enabled = True
    return proxy


@pytest.mark.parametrize(
    ("kind", "reaches_server", "answered"),
    [
        (None, True, True),
        (Kind.DELAY, True, True),
        (Kind.CUT_REQUEST, False, False),
        (Kind.CUT_RESPONSE, True, False),
        (Kind.RESET, False, False),
    ],
)
async def test_each_fault_breaks_where_it_says(
    upstream: tuple[int, list[bytes]], kind: Kind | None, reaches_server: bool, answered: bool
) -> None:
    port, seen = upstream
    proxy = through(port, kind)
    proxy_port = await proxy.start()
    try:
        for _ in range(5):  # each connection draws a new cut point: all must break alike
            if answered:
                assert await post(proxy_port) == 200
            else:
                with pytest.raises(aiohttp.ClientError):
                    await post(proxy_port)
    finally:
        await proxy.close()
    assert seen == ([b"payload"] * 5 if reaches_server else [])
    assert sum(proxy.injected.values()) == (5 if kind else 0)
    assert proxy.injected[kind or Kind.NONE] == (5 if kind else 0)


async def test_a_dead_upstream_resets_the_client(upstream: tuple[int, list[bytes]]) -> None:
    port, _ = upstream
    proxy = FaultProxy(port, FaultPlan(1, rate=0.0))
    proxy_port = await proxy.start()
    proxy.upstream_port = 1  # nothing listens there
    try:
        with pytest.raises(aiohttp.ClientError):
            await post(proxy_port)
    finally:
        await proxy.close()
    assert sum(n for k, n in proxy.injected.items() if k.startswith("upstream_down")) == 1


def test_a_clean_connection_is_no_fault() -> None:
    assert FaultPlan(1, rate=0.0).next() == Fault()
