"""The daemon as a worker, end to end with a real cloud (SQLite) and the real anthropic SDK
against the loopback model: a task created through the REST API is claimed, run, verified, and
reported — the cloud ends with the task awaiting review, its logs and its patch."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path

import aiohttp
import pytest

from locusd.daemon import Daemon
from locusd.protocol.errors import Code, LocusError
from locusd.protocol.messages import (
    LoginParams,
    TaskCreateParams,
    TaskPullParams,
    WorkerStartParams,
)
from tests.conftest import Cloud, Template, start_cloud
from tests.locusd.agentkit import (
    TASK,
    call,
    fix_median_session,
    git,
    make_config,
    make_sample_repo,
)
from tests.locusd.peers import Client
from tests.support.anthropic_server import AnthropicServer
from tests.support.client import Api, timeline
from tests.support.cloudrows import every_row
from tests.support.processes import processes_named, until

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


@pytest.mark.parametrize("shared", [False, True], ids=["held", "shared"])
async def test_a_task_from_the_api_runs_to_awaiting_review(
    cloud: Cloud, repo: Path, tmp_path: Path, shared: bool
) -> None:
    """Until the user accepts, the proposed diff stays on the machine: the cloud hears its size
    and the check's verdict (no output: it quotes code) — unless the user listed the checkout
    in ``share_proposed_diffs``, for review on the dashboard."""
    (await cloud.api.patch(f"/projects/{cloud.project_id}", json={"remotes": [REMOTE]})).ok()
    peer = Client()
    async with AnthropicServer(fix_median_session()) as model:
        config = make_config(tmp_path, base_url=model.base_url)
        config.daemon.share_proposed_diffs = [repo] if shared else []
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
    items = await timeline(cloud.api, task.id)
    kinds = [e["kind"] for e in items]
    assert "log" in kinds
    statuses = [e["to_status"] for e in items if e["kind"] == "status"]
    assert statuses[-3:] == ["claimed", "running", "awaiting_review"]
    artifacts = (await cloud.api.get(f"/tasks/{task.id}/artifacts")).ok()["items"]
    contents = {
        a["kind"]: (await cloud.api.get(f"/tasks/{task.id}/artifacts/{a['id']}")).ok()["content"]
        for a in artifacts
    }
    fix = "ordered[middle - 1] + ordered[middle]"
    if shared:
        assert set(contents) == {"patch", "evidence"} and fix in contents["patch"]
        assert "OK" in json.loads(contents["evidence"])["output_tail"]
        return
    assert set(contents) == {"summary", "evidence"}
    assert json.loads(contents["summary"]) == {
        "heldLocally": True, "files": 1, "added": 2, "removed": 0,
    }  # fmt: skip
    evidence = json.loads(contents["evidence"])
    assert evidence["passed"] is True and evidence["output_tail"] == ""
    # No proposed code anywhere the cloud keeps: artifacts, events, the task itself — and every
    # row of every table of its database, which is more than the API shows.
    everything = json.dumps([contents, items, shown])
    assert fix not in everything and "ordered" not in everything
    rows = every_row(cloud.db_url)
    assert "heldLocally" in rows  # (the dump does hold the artifacts' content)
    assert fix not in rows and "ordered" not in rows


async def test_a_cloud_outage_mid_run_loses_and_duplicates_nothing(
    template: Template, db_url: str, repo: Path, tmp_path: Path
) -> None:
    runner, url, _ = await start_cloud(db_url, lease_seconds=600)
    port = int(url.rsplit(":", 1)[1])
    first = template.first_start
    fifo = repo / "go.fifo"  # the checkout is seen (read-only) in the sandbox; /tmp is not
    os.mkfifo(fifo)
    marker = f"locus-outage-{uuid.uuid4().hex}"
    # The agent's command waits for the test: the cloud goes down while it runs.
    script = [
        call("run_command", command=f"exec -a {marker} cat {fifo}", timeout=600),
        *fix_median_session(),
    ]
    peer = Client()
    async with AnthropicServer(script) as model, aiohttp.ClientSession() as session:
        api = Api(session, url, first.token)
        (await api.patch(f"/projects/{first.project_id}", json={"remotes": [REMOTE]})).ok()
        config = make_config(tmp_path, base_url=model.base_url)
        config.daemon.outbox_retry_cap = 0.2
        daemon = Daemon(config)
        try:
            await daemon.auth_login(LoginParams(cloud_url=url, token=first.token), peer)
            task = await daemon.tasks_create(
                TaskCreateParams(project_id=first.project_id, title="Fix median", description=TASK),
                peer,
            )
            await daemon.worker_start(WorkerStartParams(once=True, repos=[str(repo)]), peer)
            await until(lambda: bool(processes_named(marker)), timeout=60)
            await runner.cleanup()  # the cloud is gone …
            await asyncio.to_thread(fifo.write_text, "go\n")  # … while the run finishes
            await asyncio.wait_for(daemon.worker_done(), 90)
            (run,) = daemon.store.all()
            assert run.state == "awaiting_review"
            assert daemon.outbox.pending_count() > 0  # kept, not lost
            runner, _, _ = await start_cloud(db_url, port=port, lease_seconds=600)  # back
            await asyncio.wait_for(daemon.outbox.wait_empty(), 60)
        finally:
            await daemon.close()
            await runner.cleanup()
        runner, _, _ = await start_cloud(db_url, port=port)
        try:
            assert (await api.get(f"/tasks/{task.id}")).ok()["status"] == "awaiting_review"
            items = await timeline(api, task.id)
        finally:
            await runner.cleanup()
    statuses = [e["to_status"] for e in items if e["kind"] == "status"]
    assert statuses.count("running") == 1 and statuses.count("awaiting_review") == 1
    seqs = [e["seq"] for e in items if e["kind"] == "log"]
    assert seqs and len(seqs) == len(set(seqs))  # every chunk once


async def test_pull_claims_a_task_now_and_answers_with_its_run(
    cloud: Cloud, repo: Path, tmp_path: Path
) -> None:
    (await cloud.api.patch(f"/projects/{cloud.project_id}", json={"remotes": [REMOTE]})).ok()
    peer = Client()
    async with AnthropicServer(fix_median_session() + fix_median_session()) as model:
        daemon = Daemon(make_config(tmp_path, base_url=model.base_url))
        try:
            login = LoginParams(cloud_url=cloud.url, token=cloud.first_start.token)
            await daemon.auth_login(login, peer)
            with pytest.raises(LocusError) as nothing:
                await daemon.tasks_pull(TaskPullParams(repos=[str(repo)]), peer)
            assert nothing.value.code == Code.TASK_NOT_FOUND
            task = await daemon.tasks_create(
                TaskCreateParams(project_id=cloud.project_id, title="Fix median", description=TASK),
                peer,
            )
            run = await daemon.tasks_pull(TaskPullParams(task_id=task.id, repos=[str(repo)]), peer)
            assert run.task_id == task.id and run.state == "starting"
            done = await asyncio.wait_for(daemon.runs.wait(run.run_id), 90)
            await asyncio.wait_for(daemon.outbox.wait_empty(), 30)
            # A second pull: the first pull's worker, its run over, is let go.
            again = await daemon.tasks_create(
                TaskCreateParams(project_id=cloud.project_id, title="Again", description=TASK),
                peer,
            )
            second = await daemon.tasks_pull(
                TaskPullParams(task_id=again.id, repos=[str(repo)]), peer
            )
            assert len(daemon._pulled) == 1 and second.run_id in daemon._pulled[0].held
            await asyncio.wait_for(daemon.runs.wait(second.run_id), 90)
        finally:
            await daemon.close()
    assert done.state == "awaiting_review"
    assert (await cloud.api.get(f"/tasks/{task.id}")).ok()["status"] == "awaiting_review"


async def test_the_lease_is_renewed_while_a_long_run_works(
    db_url: str, repo: Path, tmp_path: Path, template: Template
) -> None:
    """Seen from the cloud: with a 3 s lease, a run whose command takes 7 s keeps its task —
    the daemon's heartbeats move the lease's expiry on, and the run's end is accepted."""
    runner, url, _ = await start_cloud(db_url, lease_seconds=3)
    first = template.first_start
    marker = f"locus-lease-{uuid.uuid4().hex}"
    script = [
        call("run_command", command=f"exec -a {marker} sleep 7", timeout=60),
        call("ask_user", question="done?"),
    ]
    peer = Client()
    expiries: set[str] = set()
    async with AnthropicServer(script) as model, aiohttp.ClientSession() as session:
        api = Api(session, url, first.token)
        (await api.patch(f"/projects/{first.project_id}", json={"remotes": [REMOTE]})).ok()
        daemon = Daemon(make_config(tmp_path, base_url=model.base_url))
        try:
            await daemon.auth_login(LoginParams(cloud_url=url, token=first.token), peer)
            task = await daemon.tasks_create(
                TaskCreateParams(project_id=first.project_id, title="Slow", description=TASK),
                peer,
            )
            await daemon.worker_start(WorkerStartParams(once=True, repos=[str(repo)]), peer)
            await until(lambda: bool(processes_named(marker)), timeout=60)
            while processes_named(marker):  # the command runs: watch the lease from the cloud
                shown = (await api.get(f"/tasks/{task.id}")).ok()
                assert shown["status"] == "running", shown
                expiries.add(shown["lease_expires_at"])
                await asyncio.sleep(0.5)
            await asyncio.wait_for(daemon.worker_done(), 60)
            await asyncio.wait_for(daemon.outbox.wait_empty(), 30)
            final = (await api.get(f"/tasks/{task.id}")).ok()
        finally:
            await daemon.close()
            await runner.cleanup()
    assert len(expiries) >= 3, expiries  # renewed again and again, never left to lapse
    assert final["status"] == "needs_input"
