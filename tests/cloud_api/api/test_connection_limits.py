"""Limits that keep one client from holding the server: a body trickled slower than
``body_read_seconds`` is a 408 and the connection closes; oversized headers are a 400, never a
500. Real sockets against the real server."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import aiohttp
import pytest

from cloud_api.api.limits import MAX_FIELD_BYTES, MAX_HEADERS
from tests.conftest import Cloud

pytestmark = pytest.mark.parametrize("template", ["sqlite"], indirect=True)


@pytest.mark.parametrize("settings_overrides", [{"body_read_seconds": 0.5}])
async def test_a_trickled_body_is_cut_off_with_a_408(cloud: Cloud) -> None:
    address = urlsplit(cloud.url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    body = b'{"email": "a@example.com", "password": "x"}'
    writer.write(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body[:1]
    )
    await writer.drain()
    # The rest never comes: the server answers on its own and closes the connection.
    # (The 30 s bound only turns a hang into a failure; the deadline under test is 0.5 s.)
    answer = await asyncio.wait_for(reader.read(), 30)  # until EOF: the server closed it
    writer.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert b"application/problem+json" in head
    assert "did not arrive within 0.5 s" in json.loads(payload)["detail"]


async def test_a_body_sent_in_time_is_read_as_usual(cloud: Cloud) -> None:
    first = cloud.first_start
    reply = await cloud.api.as_(None).post(
        "/auth/login", {"email": first.email, "password": first.password}
    )
    assert reply.status == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Big": "a" * (MAX_FIELD_BYTES + 1)},
        {f"X-H{i}": "v" for i in range(MAX_HEADERS + 1)},
    ],
    ids=["long header", "too many headers"],
)
async def test_oversized_headers_are_a_400(cloud: Cloud, headers: dict[str, str]) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{cloud.url}/healthz", headers=headers) as r,
    ):
        assert r.status == 400
    async with aiohttp.ClientSession() as http, http.get(f"{cloud.url}/healthz") as r:
        assert r.status == 200, "the server still answers"
