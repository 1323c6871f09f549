"""Small faults found by fuzzing and fault injection (issue 15, "Why" 8): ids beyond 64 bits and
beyond int()'s 4,300 digits are 404/422, never 500; a client hanging up mid-request is neither
logged as an error nor counted as a 500; JSON bodies must say they are JSON (415); the
``Idempotency-Key`` the server accepts is exactly what the OpenAPI document states."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from prometheus_client import generate_latest

from cloud_api.app import openapi_document
from cloud_api.services import SERVICES
from tests.cloud_api.api.test_api_bad_input import problem
from tests.conftest import Cloud

WAIT = 60.0  # bounds a broken server; nothing here is timed
TOO_BIG = ["9" * 20, str(2**64), "1" * 5000]


async def test_ids_beyond_64_bits_are_404_or_422_never_500(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    tid = (await api.post(f"/projects/{pid}/tasks", {"title": "t"})).ok(201)["id"]
    for raw in TOO_BIG:
        for method, path in (
            ("GET", f"/orgs/{raw}"),
            ("GET", f"/orgs/{raw}/members"),
            ("DELETE", f"/orgs/1/members/{raw}"),
            ("GET", f"/tasks/{raw}/events/stream"),
            ("GET", f"/projects/{raw}/tasks"),
        ):
            body = problem(await api.call(method, path), 404)
            assert len(body["detail"]) < 200, "the detail does not echo thousands of digits"
        problem(await api.get(f"/tasks/{tid}/events/stream", params={"after": raw}), 422)
    # A Last-Event-ID out of range is ignored: the stream replays from the start.
    headers = {"Authorization": f"Bearer {api.token}", "Last-Event-ID": TOO_BIG[-1]}
    url = f"{api.base_url}/api/v1/tasks/{tid}/events/stream"
    async with api.session.get(url, headers=headers) as response:
        assert response.status == 200
        while not (line := await asyncio.wait_for(response.content.readline(), WAIT)).startswith(
            b"id:"
        ):
            pass
        first = (await api.get(f"/tasks/{tid}/events")).ok()["items"][0]["id"]
        assert line.strip() == f"id: {first}".encode()


def _count(cloud: Cloud, route: str, status: int) -> float:
    text = generate_latest(cloud.app[SERVICES].metrics.registry).decode()
    pattern = rf'locus_http_requests_total{{method="POST",route="{re.escape(route)}",status="{status}"}} (\S+)'
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


async def test_a_client_hanging_up_mid_body_is_not_a_500(
    cloud: Cloud, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="cloud_api")
    address = urlsplit(cloud.url)
    assert address.hostname is not None and address.port is not None
    # An API route and a dashboard form (its own error pages must not swallow the hang-up).
    targets = [
        (f"/api/v1/projects/{cloud.project_id}/tasks", "/api/v1/projects/{project_id}/tasks"),
        ("/logout", "/logout"),  # a form: the body is read as one
    ]
    for path, route in targets:
        kind = (
            "application/json" if path.startswith("/api/") else "application/x-www-form-urlencoded"
        )
        for _ in range(3):
            _reader, writer = await asyncio.open_connection(address.hostname, address.port)
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {cloud.api.token}"
                f"\r\nContent-Type: {kind}\r\nContent-Length: 1000\r\n\r\n"
                '{"title": '.encode()
            )
            await writer.drain()
            writer.close()  # mid-body
            await writer.wait_closed()

        async def counted(route: str = route) -> None:
            while _count(cloud, route, 499) < 3:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(counted(), WAIT)
        assert _count(cloud, route, 500) == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    # And the server still serves.
    (await cloud.api.post(f"/projects/{cloud.project_id}/tasks", {"title": "after"})).ok(201)


async def test_json_bodies_must_be_sent_as_json(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    path = f"/projects/{pid}/tasks"
    data = b'{"title": "t"}'
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers: dict[str, str] = {} if content_type is None else {"Content-Type": content_type}
        body = problem(await api.call("POST", path, data=data, headers=headers), 415)
        assert "Content-Type: application/json" in body["detail"], body
    assert (await api.get(path)).ok()["items"] == [], "nothing was created"
    for content_type in ("application/json", "application/json; charset=utf-8"):
        headers = {"Content-Type": content_type}
        (await api.call("POST", path, data=data, headers=headers)).ok(201)
    # No body at all needs no Content-Type (it reads as {}).
    tid = (await api.get(path)).ok()["items"][0]["id"]
    (await api.call("POST", f"/tasks/{tid}/queue")).ok()
    # The document says so for every route with a body.
    paths: dict[str, dict[str, Any]] = openapi_document()["paths"]  # type: ignore[assignment]
    ops = [op for item in paths.values() for op in item.values()]
    assert all(("415" in op["responses"]) == ("requestBody" in op) for op in ops)


async def test_the_idempotency_key_accepted_is_the_one_documented(cloud: Cloud) -> None:
    paths: dict[str, dict[str, Any]] = openapi_document()["paths"]  # type: ignore[assignment]
    op = paths["/api/v1/projects/{project_id}/tasks"]["post"]
    schema = next(p for p in op["parameters"] if p["name"] == "Idempotency-Key")["schema"]
    address = urlsplit(cloud.url)
    assert address.hostname is not None and address.port is not None
    keys = ["k1", "a b", "~" * 255, "x" * 256, "caf\u00e9", "tab\there", "del\x7f"]
    for n, key in enumerate(keys):
        documented = bool(re.fullmatch(schema["pattern"], key)) and len(key) <= schema["maxLength"]
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        body = f'{{"title": "t{n}"}}'.encode()
        writer.write(
            f"POST /api/v1/projects/{cloud.project_id}/tasks HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {cloud.api.token}\r\nContent-Type: application/json\r\n"
            f"Idempotency-Key: {key}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), WAIT)
        writer.close()
        status = int(status_line.split()[1])
        assert status == (201 if documented else 400), (key, status_line)
