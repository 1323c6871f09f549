"""The outbox and the client together against real servers: a crash after the cloud applied a
write, a cloud that goes away and comes back, 503s, and writes the cloud refuses for good."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from cloud_api.app import create_app
from cloud_api.config import CloudSettings
from cloud_api.schemas.workers import Fence
from locusd.cloud.client import CloudClient, outbox_sender
from locusd.cloud.errors import CloudError, CloudUnavailable
from locusd.cloud.outbox import Backoff, Outbox, OutboxEntry, Sender
from locusd.cloud.writes import fence_of, follow_up_body, log_body, status_body
from tests.conftest import Template
from tests.locusd.cloud.conftest import Clients, draining, settled
from tests.support.client import Api, timeline

sqlite_only = pytest.mark.parametrize("template", ["sqlite"], indirect=True)
FAST = Backoff(base=0.001, cap=0.01)


def counting(inner: Sender, failures_wanted: int) -> tuple[Sender, asyncio.Event, list[str]]:
    """Wrap a sender: records each failure, and sets the event after ``failures_wanted``."""
    errors: list[str] = []
    reached = asyncio.Event()

    async def send(entry: OutboxEntry) -> None:
        try:
            await inner(entry)
        except CloudError as exc:
            errors.append(type(exc).__name__)
            if len(errors) >= failures_wanted:
                reached.set()
            raise

    return send, reached, errors


@sqlite_only
async def test_a_resend_after_a_crash_is_a_replay_not_a_second_effect(
    clients: Clients, tmp_path: Path
) -> None:
    claim = await clients.claimed()
    fence, task_id = fence_of(claim), claim.task.id
    path = tmp_path / "outbox.sqlite"
    crashed = Outbox(path)
    status_id = crashed.enqueue("status", task_id, status_body(fence, "running"))
    crashed.enqueue("log", task_id, log_body(fence, 0, "step one\n"))
    sender = outbox_sender(clients.worker)
    # The old daemon sent both, and died before marking either sent.
    for entry in crashed.pending():
        await sender(entry)
    # The new daemon finds them pending and sends them again, under the same keys.
    revived = Outbox(path, backoff=FAST)
    assert revived.pending()[0].id == status_id
    async with draining(revived, sender):
        await settled(revived)
    assert revived.dead() == []  # a second "running" without the key would have been a 409
    events = await timeline(clients.cloud.api, task_id)
    assert [e["to_status"] for e in events if e["kind"] == "status"] == ["claimed", "running"]
    assert [e["data"]["text"] for e in events if e["kind"] == "log"] == ["step one\n"]


@sqlite_only
async def test_a_stale_fence_kills_that_entry_only(clients: Clients, tmp_path: Path) -> None:
    mine = await clients.claimed("mine")
    lost = await clients.claimed("taken away")
    await clients.user.cancel_task(lost.task.id)
    outbox = Outbox(tmp_path / "outbox.sqlite", backoff=FAST)
    doomed = outbox.enqueue("log", lost.task.id, log_body(fence_of(lost), 0, "too late"))
    outbox.enqueue("status", mine.task.id, status_body(fence_of(mine), "running"))
    outbox.enqueue("log", mine.task.id, log_body(fence_of(mine), 0, "working"))
    outbox.enqueue("follow_up", None, follow_up_body("", parent_task_id=mine.task.id))
    async with draining(outbox, outbox_sender(clients.worker)):
        await settled(outbox)
    dead = {e.id: e for e in outbox.dead()}
    assert doomed in dead and "409" in (dead[doomed].last_error or "")
    [invalid] = [e for e in dead.values() if e.kind == "follow_up"]  # refused before sending
    assert "invalid follow_up write" in (invalid.last_error or "")
    assert len(dead) == 2
    assert (await clients.user.task(mine.task.id)).status == "running"


@asynccontextmanager
async def serving(app: web.Application, port: int = 0) -> AsyncIterator[int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


@sqlite_only
async def test_writes_wait_out_a_cloud_outage(
    template: Template, db_url: str, tmp_path: Path
) -> None:
    settings = CloudSettings(db=db_url, port=0)
    outbox = Outbox(tmp_path / "outbox.sqlite", backoff=FAST)
    first = template.first_start
    async with aiohttp.ClientSession() as session:  # shared by both clients, as in the daemon
        async with serving(create_app(settings, migrate=False)) as port:
            url = f"http://127.0.0.1:{port}"
            login = await CloudClient.login(url, first.email, first.password, session=session)
            user = CloudClient(url, login.token, session=session)
            secret = await user.create_worker_token(first.project_id, "box")
            worker = CloudClient(url, secret.token, session=session)
            await worker.register("box", 1, [], "t")
            await user.create_task(first.project_id, "survive an outage", queued=True)
            claim = await worker.claim()
            assert claim is not None
        # The cloud is down: the writes are enqueued, tried, and kept.
        task_id, fence = claim.task.id, fence_of(claim)
        outbox.enqueue("status", task_id, status_body(fence, "running"))
        outbox.enqueue("log", task_id, log_body(fence, 0, "offline work"))
        sender, failed_twice, errors = counting(outbox_sender(worker), 2)
        async with draining(outbox, sender):
            await asyncio.wait_for(failed_twice.wait(), 30)
            assert set(errors) == {CloudUnavailable.__name__}
            assert [e.kind for e in outbox.pending()] == ["status", "log"]
            assert outbox.pending()[0].attempts >= 2
            # The cloud comes back on the same address, and the outbox delivers.
            async with serving(create_app(settings, migrate=False), port):
                await settled(outbox)
                assert (await user.task(task_id)).status == "running"
                events = await timeline(Api(session, url, login.token), task_id)
        assert [e["kind"] for e in events].count("log") == 1
        assert outbox.dead() == []


async def test_503s_are_retried_with_the_same_key_and_bytes(tmp_path: Path) -> None:
    """A cloud behind a proxy that answers 503 three times, then accepts the write."""
    seen: list[tuple[str, bytes]] = []
    third, release = asyncio.Event(), asyncio.Event()

    async def logs(request: web.Request) -> web.Response:
        seen.append((request.headers["Idempotency-Key"], await request.read()))
        if len(seen) <= 3:
            if len(seen) == 3:
                third.set()
                await release.wait()
            return web.Response(status=503, text="<html>upstream down</html>")
        return web.json_response({"event_id": 1, "duplicate": False})

    app = web.Application()
    app.router.add_post("/api/v1/worker/tasks/{task_id}/logs", logs)
    outbox = Outbox(tmp_path / "outbox.sqlite", backoff=FAST)
    async with serving(app) as port, CloudClient(f"http://127.0.0.1:{port}", "w") as client:
        fence = Fence(attempt=3, claim_token="tok")
        entry_id = outbox.enqueue("log", 9, log_body(fence, 4, "chunk"))
        async with draining(outbox, outbox_sender(client)):
            await asyncio.wait_for(third.wait(), 10)
            entry = outbox.get(entry_id)
            assert entry is not None and entry.state == "pending" and entry.attempts == 2
            assert entry.last_error is not None
            assert "503" in entry.last_error and "upstream down" in entry.last_error
            release.set()
            await settled(outbox)
    assert len(seen) == 4 and len(set(seen)) == 1  # one key, one body, byte for byte
    entry = outbox.get(entry_id)
    assert entry is not None and entry.state == "sent" and entry.attempts == 3
