"""The daemon as a worker, end to end with a real cloud (SQLite) and the real anthropic SDK
against the loopback model: a task created through the REST API is claimed, run, verified, and
reported — the cloud ends with the task awaiting review, its logs and its patch."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from locusd.daemon import Daemon
from locusd.protocol.messages import LoginParams, TaskCreateParams, WorkerStartParams
from tests.conftest import Cloud
from tests.locusd.agentkit import TASK, fix_median_session, git, make_config, make_sample_repo
from tests.locusd.peers import Client
from tests.support.anthropic_server import AnthropicServer

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.parametrize("template", ["sqlite"], indirect=True),
]
REMOTE = "https://git.example.com/acme/sample.git"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    checkout = make_sample_repo(tmp_path)
    git(checkout, "remote", "add", "origin", REMOTE)
    return checkout


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-worker-test")


async def test_a_task_from_the_api_runs_to_awaiting_review(
    cloud: Cloud, repo: Path, tmp_path: Path
) -> None:
    (await cloud.api.patch(f"/projects/{cloud.project_id}", json={"remotes": [REMOTE]})).ok()
    peer = Client()
    async with AnthropicServer(fix_median_session()) as model:
        config = make_config(tmp_path, base_url=model.base_url)
        daemon = Daemon(config)
        try:
            login = LoginParams(cloud_url=cloud.url, token=cloud.first_start.token)
            status = await daemon.auth_login(login, peer)
            assert status.logged_in and status.kind == "user"
            task = await daemon.tasks_create(
                TaskCreateParams(project_id=cloud.project_id, title="Fix median", description=TASK),
                peer,
            )
            assert task.status == "queued"
            started = await daemon.worker_start(
                WorkerStartParams(once=True, repos=[str(repo)]), peer
            )
            assert started.running and started.projects == [cloud.project_id]
            await asyncio.wait_for(daemon.worker_done(), 90)
            await asyncio.wait_for(daemon.outbox.wait_empty(), 30)
            (run,) = daemon.store.all()
        finally:
            await daemon.close()

    assert run.state == "awaiting_review" and run.task_id == task.id
    shown = (await cloud.api.get(f"/tasks/{task.id}")).ok()
    assert shown["status"] == "awaiting_review"
    events = (await cloud.api.get(f"/tasks/{task.id}/events", params={"limit": 200})).ok()
    items = events["items"] if isinstance(events, dict) else events
    kinds = [e["kind"] for e in items]
    assert "log" in kinds
    statuses = [e["to_status"] for e in items if e["kind"] == "status"]
    assert statuses[-3:] == ["claimed", "running", "awaiting_review"]
    artifacts = (await cloud.api.get(f"/tasks/{task.id}/artifacts")).ok()
    found = artifacts["items"] if isinstance(artifacts, dict) else artifacts
    assert {a["kind"] for a in found} >= {"patch", "evidence"}
