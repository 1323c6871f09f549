"""Server-sent events of the task timeline: replay then live, resume without repeats, and the
project-wide stream. Frames are parsed off a real aiohttp response."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.conftest import Cloud
from tests.support.client import Api, Worker, new_user

#: Generous: a frame normally arrives in milliseconds; this only bounds a broken stream.
FRAME_TIMEOUT = 30.0


@dataclass
class Frame:
    id: int
    event: str
    data: dict[str, Any]


class EventStream:
    """Reads `id:` / `event:` / `data:` frames; skips comments and retry-only frames."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def _frame(self) -> Frame:
        fields: dict[str, str] = {}
        while True:
            raw = await self.response.content.readline()
            if not raw:
                raise EOFError("the stream ended")
            line = raw.decode().rstrip("\r\n")
            if line == "":
                if "id" in fields:
                    return Frame(int(fields["id"]), fields["event"], json.loads(fields["data"]))
                fields = {}  # a keepalive comment or the retry: advice
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")

    async def next(self) -> Frame:
        return await asyncio.wait_for(self._frame(), FRAME_TIMEOUT)

    async def take(self, n: int) -> list[Frame]:
        return [await self.next() for _ in range(n)]


@asynccontextmanager
async def stream(
    api: Api, path: str, last_event_id: int | str | None = None
) -> AsyncIterator[EventStream]:
    headers = {"Authorization": f"Bearer {api.token}", "Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=FRAME_TIMEOUT * 2)
    async with api.session.get(
        f"{api.base_url}/api/v1{path}", headers=headers, timeout=timeout
    ) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        yield EventStream(response)


async def timeline(api: Api, task_id: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (
        await api.get(f"/tasks/{task_id}/events", params={"limit": 200})
    ).ok()["items"]
    return items


async def test_task_stream_replays_then_follows_live(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    task = (await api.post(f"/projects/{pid}/tasks", {"title": "t"})).ok(201)
    tid = task["id"]
    (await api.post(f"/tasks/{tid}/queue")).ok()
    (await api.post(f"/tasks/{tid}/comments", {"body": "before"})).ok(201)
    existing = await timeline(api, tid)
    async with stream(api, f"/tasks/{tid}/events/stream") as events:
        replay = await events.take(3)
        assert [f.id for f in replay] == [e["id"] for e in existing]
        assert [f.event for f in replay] == ["created", "status", "comment"]
        assert [f.data for f in replay] == existing, "data is the same EventOut as the list"
        # Live: events written after the stream opened arrive as they happen.
        (await api.post(f"/tasks/{tid}/comments", {"body": "live"})).ok(201)
        live = await events.next()
        assert (live.event, live.data["data"], live.data["task_id"]) == (
            "comment",
            {"body": "live"},
            tid,
        )
        worker = await Worker.create(api, pid, "w")
        claim = (await worker.claim()).ok()
        claimed = await events.next()
        assert (claimed.event, claimed.data["from_status"], claimed.data["to_status"]) == (
            "status",
            "queued",
            "claimed",
        )
        (await worker.status(claim, "running")).ok()
        running = await events.next()
        assert running.data["to_status"] == "running"
        assert [f.id for f in [*replay, live, claimed, running]] == [
            e["id"] for e in await timeline(api, tid)
        ]


async def test_stream_resumes_from_last_event_id_without_repeats(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    tid = (await api.post(f"/projects/{pid}/tasks", {"title": "t"})).ok(201)["id"]
    for i in range(3):
        (await api.post(f"/tasks/{tid}/comments", {"body": f"c{i}"})).ok(201)
    async with stream(api, f"/tasks/{tid}/events/stream") as events:
        seen = await events.take(2)  # then the connection drops
    # Meanwhile more happens.
    for i in range(3, 5):
        (await api.post(f"/tasks/{tid}/comments", {"body": f"c{i}"})).ok(201)
    async with stream(api, f"/tasks/{tid}/events/stream", last_event_id=seen[-1].id) as events:
        rest = await events.take(4)
        (await api.post(f"/tasks/{tid}/comments", {"body": "c5"})).ok(201)
        rest.append(await events.next())
    all_ids = [e["id"] for e in await timeline(api, tid)]
    got = [f.id for f in seen + rest]
    assert got == all_ids, "every event exactly once, in order"
    assert [f.data["data"].get("body") for f in rest] == ["c1", "c2", "c3", "c4", "c5"]
    # ?after= resumes the same way (for clients that cannot set headers).
    async with stream(api, f"/tasks/{tid}/events/stream?after={all_ids[-2]}") as events:
        tail = await events.next()
        assert tail.id == all_ids[-1]
        (await api.post(f"/tasks/{tid}/comments", {"body": "c6"})).ok(201)
        assert (await events.next()).data["data"] == {"body": "c6"}


async def test_project_stream_carries_every_task_of_the_project(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    org = (await api.get(f"/projects/{pid}")).ok()["org_id"]
    other_pid = (await api.post("/projects", {"org_id": org, "name": "Other", "slug": "other"})).ok(
        201
    )["id"]
    one = (await api.post(f"/projects/{pid}/tasks", {"title": "one"})).ok(201)["id"]
    two = (await api.post(f"/projects/{pid}/tasks", {"title": "two"})).ok(201)["id"]
    async with stream(api, f"/projects/{pid}/events/stream") as events:
        replay = await events.take(2)
        assert [(f.event, f.data["task_id"]) for f in replay] == [
            ("created", one),
            ("created", two),
        ]
        # Another project's events are not in this stream: the next frame is ours.
        (await api.post(f"/projects/{other_pid}/tasks", {"title": "elsewhere"})).ok(201)
        (await api.post(f"/tasks/{two}/comments", {"body": "on two"})).ok(201)
        (await api.post(f"/tasks/{one}/queue")).ok()
        three = (await api.post(f"/projects/{pid}/tasks", {"title": "three"})).ok(201)["id"]
        live = await events.take(3)
        assert [(f.event, f.data["task_id"]) for f in live] == [
            ("comment", two),
            ("status", one),
            ("created", three),
        ]
    # A user without access to the project cannot open its stream.
    stranger = await new_user(api, "stranger@example.com")
    for path in (f"/projects/{pid}/events/stream", f"/tasks/{one}/events/stream"):
        assert (await stranger.get(path)).status == 404
    assert (await api.as_(None).get(f"/projects/{pid}/events/stream")).status == 401


async def test_a_malformed_last_event_id_replays_from_the_start(cloud: Cloud) -> None:
    """A bad header is ignored, never a broken stream ('²' passes str.isdigit())."""
    api, pid = cloud.api, cloud.project_id
    tid = (await api.post(f"/projects/{pid}/tasks", {"title": "t"})).ok(201)["id"]
    first = (await timeline(api, tid))[0]["id"]
    for bad in ("²", "abc", "-1", str(2**64)):
        async with stream(api, f"/tasks/{tid}/events/stream", last_event_id=bad) as events:
            assert (await events.next()).id == first, bad
