"""The model gateway between an external agent and its model, against the loopback model
servers (real sockets, a real HTTP client on its UNIX socket): it forwards to the one upstream
and streams without buffering, reads the usage each server sent, and a hostile request — an
absolute URL, ``..``, another Host, CONNECT, a huge body — reaches nothing else."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import unquote

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from locusd.agent.external.gateway import (
    MAX_REQUEST,
    STAND_IN_KEY,
    ModelCall,
    ModelGateway,
    Refused,
)
from locusd.agent.messages import Usage
from tests.support import gemini_server, responses_server
from tests.support.anthropic_server import AnthropicServer, Reply, text
from tests.support.scripted import Hang
from tests.support.shortpath import short_tmp

USAGE = {
    "input_tokens": 321, "output_tokens": 45, "cache_read_input_tokens": 1000,
    "cache_creation_input_tokens": 7,
}  # fmt: skip
BODY = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "hi"}],
}
HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}


@asynccontextmanager
async def gateway(
    upstream: str, calls: list[ModelCall], refusal: str | None = None
) -> AsyncIterator[tuple[ModelGateway, aiohttp.ClientSession]]:
    with short_tmp() as where:
        served = where / "gateway.sock"
        async with (
            ModelGateway(upstream, served, calls.append, lambda: refusal) as gate,
            aiohttp.ClientSession(connector=aiohttp.UnixConnector(str(served))) as client,
        ):
            yield gate, client


async def raw(gate: ModelGateway, request: bytes) -> bytes:
    """One request as bytes on the gateway's socket; its answer's status line."""
    reader, writer = await asyncio.open_unix_connection(gate.socket_path)
    try:
        writer.write(request)
        await writer.drain()
        return (await reader.readline()).strip()
    finally:
        writer.close()


async def test_a_streamed_anthropic_call_is_forwarded_and_metered_as_the_server_sent_it() -> None:
    calls: list[ModelCall] = []
    async with AnthropicServer([Reply([text("hello")], usage=USAGE)] * 2) as server:
        host = server.base_url.removeprefix("http://")
        async with gateway(server.base_url, calls) as (_, client):
            body = {**BODY, "stream": True}
            async with client.post("http://127.0.0.1:8090/v1/messages", json=body,
                                   headers=HEADERS) as answer:  # fmt: skip
                assert answer.status == 200, await answer.text()
                stream = await answer.read()
            assert b"message_delta" in stream
            async with client.post("http://x/v1/messages", json=BODY, headers=HEADERS) as whole:
                assert (await whole.json())["usage"]["output_tokens"] == 45
    expected = Usage(input_tokens=321, output_tokens=45, cache_read_tokens=1000,
                     cache_write_tokens=7)  # fmt: skip
    assert [(c.format, c.status, c.usage, c.model) for c in calls] == [
        ("anthropic", 200, expected, "claude-sonnet-4-5")
    ] * 2
    assert calls[0].received == len(stream) and calls[0].sent > 0
    # The upstream got the agent's headers, and the Host of its own.
    assert server.requests[0].headers["host"] == host
    assert server.requests[0].api_key == "k"


async def test_responses_and_gemini_calls_are_metered() -> None:
    calls: list[ModelCall] = []
    usage = {"input_tokens": 500, "output_tokens": 20,
             "input_tokens_details": {"cached_tokens": 100}}  # fmt: skip
    reply = responses_server.Reply([responses_server.message("ok")], usage=usage)
    async with (
        responses_server.ResponsesServer([reply]) as server,
        gateway(f"{server.base_url}/v1", calls) as (_, client),
    ):
        body = {"model": "gpt-5", "input": "hi", "stream": True}
        headers = {"Authorization": "Bearer k"}
        async with client.post("http://x/v1/responses", json=body, headers=headers) as answer:
            assert answer.status == 200, await answer.text()
            await answer.read()
    assert calls[0].usage == Usage(input_tokens=400, output_tokens=20, cache_read_tokens=100)
    calls.clear()
    gusage = {"promptTokenCount": 90, "candidatesTokenCount": 9, "cachedContentTokenCount": 0}
    greply = gemini_server.Reply([gemini_server.text("ok")], usage=gusage)
    async with (
        gemini_server.GeminiServer([greply, greply]) as gserver,
        gateway(gserver.base_url, calls) as (_, client),
    ):
        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        headers = {"x-goog-api-key": "k"}
        for call in ("streamGenerateContent?alt=sse", "generateContent"):
            url = f"http://x/v1beta/models/gemini-2.5-pro:{call}"
            async with client.post(url, json=body, headers=headers) as answer:
                assert answer.status == 200, await answer.text()
                await answer.read()
    assert [c.usage for c in calls] == [Usage(input_tokens=90, output_tokens=9)] * 2


async def test_a_stream_reaches_the_agent_as_it_comes_not_when_it_ends() -> None:
    """The upstream sends its opening events and then waits: they reach the client meanwhile
    (no buffering); the client going away ends the call, recorded with the usage so far."""
    calls: list[ModelCall] = []
    hang = Hang()
    async with AnthropicServer([hang]) as server, gateway(server.base_url, calls) as (_, client):
        async with client.post("http://x/v1/messages", json={**BODY, "stream": True},
                               headers=HEADERS) as answer:  # fmt: skip
            first = await asyncio.wait_for(answer.content.readuntil(b"\n\n"), 30)
            assert b"message_start" in first
        await asyncio.wait_for(hang.disconnected.wait(), 30)
        while not calls:  # recorded when the handler ends
            await asyncio.sleep(0.01)
    assert calls[0].usage is not None and calls[0].usage.output_tokens <= 1


async def test_hostile_requests_go_nowhere_but_the_upstream() -> None:
    calls: list[ModelCall] = []
    async with AnthropicServer([Reply([text("ok")])]) as server, AnthropicServer([]) as decoy:
        other = decoy.base_url.removeprefix("http://")
        host = server.base_url.removeprefix("http://")
        async with gateway(f"{server.base_url}/v1", calls) as (gate, client):
            refused = {
                b"GET " + decoy.base_url.encode() + b"/v1/messages HTTP/1.1": b"400",
                b"POST /v1/../v1/messages HTTP/1.1": b"400",
                b"POST /v1/%2e%2E/messages HTTP/1.1": b"400",
                b"POST /v1/%2F..%2Fmessages HTTP/1.1": b"400",
                b"POST /v1\\..\\x HTTP/1.1": b"400",
                b"POST //" + other.encode() + b"/v1/messages HTTP/1.1": b"400",
                b"POST /v2/messages HTTP/1.1": b"404",
                b"CONNECT " + other.encode() + b" HTTP/1.1": b"40",
                b"TRACE /v1/messages HTTP/1.1": b"405",
            }
            for line, status in refused.items():
                answer = await raw(gate, line + b"\r\nHost: " + other.encode() + b"\r\n\r\n")
                assert answer.split(b" ")[1].startswith(status), (line, answer)
            huge = b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 9999999999\r\n\r\n"
            assert (await raw(gate, huge)).split(b" ")[1] == b"413"

            async def chunks() -> AsyncIterator[bytes]:
                for _ in range(MAX_REQUEST // (1 << 20) + 2):
                    yield b"x" * (1 << 20)

            async with client.post("http://x/v1/messages", data=chunks()) as over:
                assert over.status == 413
            # Another host in Host: still the upstream, with the upstream's Host.
            headers = {**HEADERS, "Host": other}
            async with client.post("http://x/v1/messages", json=BODY, headers=headers) as ok:
                assert ok.status == 200
    assert decoy.requests == []
    assert [(r.path, r.headers["host"]) for r in server.requests] == [("/v1/messages", host)]
    said = [c.refused for c in calls if c.refused]
    assert len(said) == len(refused) + 2 and all(said)
    assert any("'..'" in s for s in said) and any("outside" in s for s in said)


async def test_once_the_run_is_ending_no_call_reaches_the_upstream() -> None:
    calls: list[ModelCall] = []
    async with (
        AnthropicServer([Reply([text("ok")])]) as server,
        gateway(server.base_url, calls, "max tokens reached") as (_, client),
        client.post("http://x/v1/messages", json=BODY, headers=HEADERS) as no,
    ):
        assert no.status == 429 and "max tokens reached" in await no.text()
    assert server.requests == []
    assert calls[0].refused is not None


async def test_an_unreadable_api_is_counted_in_bytes_and_said(tmp_path: Path) -> None:
    calls: list[ModelCall] = []
    async with AnthropicServer([]) as server, gateway(server.base_url, calls) as (_, client):
        body = json.dumps(BODY).encode()
        async with client.post("http://x/v1/messages/count_tokens", data=body,
                               headers=HEADERS) as answer:  # fmt: skip
            assert answer.status == 200
            counted = await answer.read()
        async with client.get("http://x/v1/models", headers=HEADERS) as missing:
            assert missing.status == 404  # the upstream's own answer, passed on
    assert calls[0].format == "unknown" and calls[0].usage is None
    assert calls[0].received == len(counted) and calls[0].problem is not None
    assert "cannot read" in calls[0].problem


@pytest.mark.parametrize("upstream", ["ftp://model.example", "not a url"])
def test_the_upstream_must_be_an_http_url(upstream: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an http"):
        ModelGateway(upstream, tmp_path / "s", lambda call: None)


@asynccontextmanager
async def echo_server() -> AsyncIterator[str]:
    """An upstream that answers each request with what it received: its query and headers."""

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "query": request.query_string,
                "headers": {k.lower(): v for k, v in request.headers.items()},
            }
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_the_users_key_replaces_the_stand_in_on_the_way_out() -> None:
    """The agent holds only the stand-in; each API's way of sending a key gets the user's."""
    real = "sk-the-users-real-key"
    seen: list[tuple[str, str | None, str | None, str | None]] = []
    async with echo_server() as upstream:
        with short_tmp() as where:
            served = where / "gateway.sock"
            gate = ModelGateway(upstream, served, lambda call: None, key=real)
            connector = aiohttp.UnixConnector(str(served))
            async with gate, aiohttp.ClientSession(connector=connector) as client:
                url = "http://x/v1beta/models/gemini-2.5-pro:generateContent?alt=sse"
                for headers, query in (
                    ({"x-goog-api-key": STAND_IN_KEY}, ""),
                    ({"x-api-key": STAND_IN_KEY}, ""),
                    ({"Authorization": f"Bearer {STAND_IN_KEY}"}, ""),
                    ({}, f"&key={STAND_IN_KEY}"),
                    ({"x-goog-api-key": "a-key-of-its-own"}, ""),
                ):
                    async with client.post(url + query, json={}, headers=headers) as answer:
                        got = await answer.json()
                    h = got["headers"]
                    seen.append((got["query"], h.get("x-goog-api-key"), h.get("x-api-key"),
                                 h.get("authorization")))  # fmt: skip
    assert seen == [
        ("alt=sse", real, None, None),
        ("alt=sse", None, real, None),
        ("alt=sse", None, None, f"Bearer {real}"),
        (f"alt=sse&key={real}", None, None, None),
        ("alt=sse", "a-key-of-its-own", None, None),
    ]


TRICKY = st.text(alphabet="/.%2eEfF\\@:?#a v1\x00", max_size=40)


@given(TRICKY | st.text(max_size=40) | TRICKY.map(lambda tail: f"/v1/{tail}"))
def test_any_target_is_refused_or_a_path_under_the_upstreams(raw: str) -> None:
    """Whatever the request line's target, the URL the gateway would call has the upstream's
    scheme, host and port, a path under the upstream's own, and no dot segment."""
    gate = ModelGateway("https://api.example.com:8443/v1", Path("/unused"), lambda call: None)
    try:
        url = gate.target("POST", raw)
    except Refused as refused:
        assert refused.status in (400, 404) and str(refused)
        return
    assert (url.scheme, url.host, url.port) == ("https", "api.example.com", 8443)
    segments = unquote(url.raw_path).split("/")
    assert segments[:2] == ["", "v1"] and not {".", ".."} & set(segments)
