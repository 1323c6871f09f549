"""Exactly once across a crash: the cloud is SIGKILLed just before, and just after, a keyed
request commits (``LOCUS_CRASH_AT``, cloud_api/crashpoints.py), on both databases. After a
restart the retry with the same key is answered at once — run for the first time if nothing
committed, replayed if it had — and the effect exists exactly once: never a task created twice,
never a transition stranded behind "Request in progress"."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from cloud_api.crashpoints import POINTS, crashpoint
from tests.conftest import Template
from tests.support.client import Api, Reply, Worker, every, timeline
from tests.support.cloudproc import start_cloud_process


def replayed(reply: Reply) -> bool:
    return {k.lower(): v for k, v in reply.headers.items()}.get("idempotent-replayed") == "true"


@asynccontextmanager
async def cloud_process(
    db_url: str, token: str, crash_at: str | None = None
) -> AsyncIterator[tuple[Api, asyncio.subprocess.Process]]:
    env = {"LOCUS_CRASH_AT": crash_at} if crash_at else {}
    proc, base_url = await start_cloud_process(db_url, env)
    try:
        async with aiohttp.ClientSession() as session:
            yield Api(session, base_url, token), proc
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


async def killed_by(call: Callable[[], Awaitable[Reply]], proc: asyncio.subprocess.Process) -> None:
    """The call gets no answer because the server killed itself at its crash point."""
    with pytest.raises(aiohttp.ClientError):
        await call()
    assert await asyncio.wait_for(proc.wait(), 30) == -9


def key(name: str) -> dict[str, str]:
    return {"Idempotency-Key": name}


@pytest.mark.parametrize("point", sorted(POINTS))
async def test_a_task_created_across_a_crash_exists_once(
    template: Template, tmp_path: Path, point: str
) -> None:
    db_url = template.new_url(tmp_path)
    first = template.first_start
    path = f"/projects/{first.project_id}/tasks"
    body = {"title": "exactly once", "status": "queued"}
    async with cloud_process(db_url, first.token, crash_at=point) as (api, proc):
        await killed_by(lambda: api.post(path, body, headers=key("create-1")), proc)
    async with cloud_process(db_url, first.token) as (api, _):
        retry = await api.post(path, body, headers=key("create-1"))
        assert retry.status == 201, retry.body
        # Committed before the kill: the stored answer; rolled back: the request's first run.
        assert replayed(retry) == (point == "idempotency.committed")
        tasks = [t for t in await every(api, path) if t["title"] == "exactly once"]
        assert [t["id"] for t in tasks] == [retry.body["id"]]
        events = await timeline(api, retry.body["id"])
        assert [e["kind"] for e in events] == ["created"]


@pytest.mark.parametrize("point", sorted(POINTS))
async def test_a_worker_report_across_a_crash_is_not_stranded(
    template: Template, tmp_path: Path, point: str
) -> None:
    """The issue's stranded task: the transition to awaiting_review committed, the answer was
    lost; the retry (same key, then even a new key) must be success, not 409 for a minute and
    then "cannot move from awaiting_review to awaiting_review"."""
    db_url = template.new_url(tmp_path)
    first = template.first_start
    async with cloud_process(db_url, first.token) as (api, _):
        task = (
            await api.post(
                f"/projects/{first.project_id}/tasks", {"title": "t", "status": "queued"}
            )
        ).ok(201)
        worker = await Worker.create(api, first.project_id, "w")
        claim = (await worker.claim()).ok()
        (await worker.status(claim, "running")).ok()
        worker_token = worker.api.token
    assert worker_token is not None
    report: dict[str, Any] = {
        "attempt": claim["attempt"],
        "claim_token": claim["claim_token"],
        "status": "awaiting_review",
        "summary": "proposed",
    }
    status_path = f"/worker/tasks/{task['id']}/status"
    async with cloud_process(db_url, worker_token, crash_at=point) as (api, proc):
        await killed_by(lambda: api.post(status_path, report, headers=key("report-1")), proc)
    async with cloud_process(db_url, worker_token) as (api, _):
        retry = await api.post(status_path, report, headers=key("report-1"))
        assert retry.status == 200, retry.body
        assert retry.body["status"] == "awaiting_review"
        assert replayed(retry) == (point == "idempotency.committed")
        # A retry under a new key (a client that lost its key) is success too, and no-op.
        again = await api.post(status_path, report, headers=key("report-2"))
        assert again.status == 200 and again.body["version"] == retry.body["version"]
        admin = api.as_(first.token)
        moves = [e["to_status"] for e in await timeline(admin, task["id"]) if e["kind"] == "status"]
        assert moves == ["claimed", "running", "awaiting_review"]


def test_the_crash_points_are_documented() -> None:
    page = Path(__file__).parents[3] / "docs" / "operations.md"
    table = crashpoint.markdown("crash point", "what a retry finds after a kill there")
    assert table in page.read_text(encoding="utf-8")
