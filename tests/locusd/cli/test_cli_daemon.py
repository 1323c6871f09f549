"""The `locus` CLI, the daemon it starts, and a real cloud (SQLite), as a user runs them: every
command is a subprocess, the daemon a detached process of its own, all state in a temp dir.
Includes the faults: kill -9 of the daemon mid-run, and a cancel from the cloud's REST API."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cloud, start_cloud
from tests.locusd.agentkit import DEMO_TRANSCRIPT, TASK, call
from tests.locusd.cliuser import LOCUS, User, cloud_status, drained, login_and_queue
from tests.support.anthropic_server import AnthropicServer, Hang
from tests.support.client import timeline
from tests.support.processes import processes_named, until

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.parametrize("template", ["sqlite"], indirect=True),
]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Heartbeats come every lease/3 s: with a 10-minute lease, a cancel that arrives within
    # the test's deadline came through the signals long-poll, not a heartbeat.
    return {"lease_seconds": 600}


async def test_login_then_run_once_takes_a_task_to_awaiting_review(
    user: User, cloud: Cloud
) -> None:
    user.agent(provider="replay", replay=str(DEMO_TRANSCRIPT))
    task_id = await login_and_queue(user, cloud)
    assert (await user.json("tasks", "list", "--status", "queued"))["tasks"][0]["id"] == task_id

    _, out, err = await user.locus("run", "--once", "--repo", str(user.repo), "--json")
    (run,) = json.loads(out)
    assert run["state"] == "awaiting_review" and run["task_id"] == task_id, err
    await drained(user)  # the run is over; its reports may still be on their way
    assert await cloud_status(cloud, task_id) == "awaiting_review"
    # Every upload is in the audit log: to where, what, its sha256.
    uploads = (await user.json("audit"))["entries"]
    # (the served repository's graph too, enqueued before the first claim: about no task)
    assert {e["kind"] for e in uploads} == {"status", "log", "artifact", "graph"}
    assert {e["destination"] for e in uploads} == {cloud.url}
    assert all(len(e["sha256"]) == 64 for e in uploads)
    assert all(e.get("taskId") == (None if e["kind"] == "graph" else task_id) for e in uploads)

    # Review in the terminal, accept, commit: the task goes to verification.
    view = await user.json("review", run["run_id"])
    assert [f["path"] for f in view["files"]] == ["stats.py"] and view["undecided"] == 1
    committed = await user.json("review", run["run_id"], "--accept-all", "--commit")
    assert committed["reportQueued"] is True and len(committed["commit"]) == 40
    await drained(user)
    assert await cloud_status(cloud, task_id) == "verification"

    runs = (await user.json("runs"))["runs"]
    assert [r["runId"] for r in runs] == [run["run_id"]]
    _, logs, _ = await user.locus("logs", run["run_id"], "--json")
    events = [json.loads(line) for line in logs.splitlines()]
    kinds = [event["kind"] for event in events]
    assert kinds[0] == "state" and "completed" in kinds and "verify" in kinds
    # after the agent's end, the review's: committing, committed, reported (acknowledged)
    after = [e["text"] for e in events[kinds.index("completed") + 1 :] if e["kind"] == "state"]
    assert after == ["committing", "committed", "reported"]
    status = await user.json("status")
    assert status["auth"]["loggedIn"] and status["runs"] == {"reported": 1}
    assert status["outboxPending"] == 0


async def test_a_daemon_killed_mid_run_leaves_an_explicit_state(user: User, cloud: Cloud) -> None:
    async with AnthropicServer([Hang()]) as model:
        user.agent(provider="anthropic", base_url=model.base_url)
        task_id = await login_and_queue(user, cloud)
        worker = await asyncio.create_subprocess_exec(
            LOCUS, "run", "--once", "--repo", str(user.repo), env=user.env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        await asyncio.wait_for(model.hung.wait(), 60)  # the run is mid-flight
        pid = (await user.json("daemon", "status"))["pid"]
        os.kill(pid, signal.SIGKILL)
        _, stderr = await asyncio.wait_for(worker.communicate(), 60)
        assert worker.returncode == 5, stderr  # the daemon is gone: said, not hung

    # A new daemon, as systemd would start it: no client connects. It recovers the run and
    # its outbox sends the report from start-up, without waiting for one.
    serving = await asyncio.create_subprocess_exec(
        str(Path(LOCUS).with_name("locusd")), "serve", env=user.env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:

        async def reported() -> bool:
            return await cloud_status(cloud, task_id) == "failed"

        async with asyncio.timeout(60):
            while not await reported():
                await asyncio.sleep(0.1)
    finally:
        if serving.returncode is None:
            serving.terminate()
        await serving.wait()

    (run,) = (await user.json("runs"))["runs"]
    assert run["state"] == "failed"
    assert run["reason"] == "interrupted: the daemon stopped during the run"
    # Its worktree (with whatever the agent did) is still there, and the run names it.
    data = Path(user.env["XDG_DATA_HOME"]) / "locus" / "worktrees"
    (kept,) = data.glob("*/*")
    assert kept.name.startswith(run["runId"]) and run["worktree"] == str(kept)


async def test_a_cancel_in_the_cloud_kills_the_agents_command(user: User, cloud: Cloud) -> None:
    marker = f"locus-cli-cancel-{uuid.uuid4().hex}"
    script = [call("run_command", command=f"exec -a {marker} sleep 300", timeout=600)]
    async with AnthropicServer(script) as model:
        user.agent(provider="anthropic", base_url=model.base_url)
        task_id = await login_and_queue(user, cloud)
        worker = await user.start("run", "--once", "--repo", str(user.repo), "--json")
        await until(lambda: bool(processes_named(marker)), timeout=60)
        (await cloud.api.post(f"/tasks/{task_id}/cancel", json={})).ok()
        await until(lambda: not processes_named(marker), timeout=60)
        out, err = await asyncio.wait_for(worker.communicate(), 60)

    (run,) = json.loads(out)
    assert run["state"] == "cancelled", err
    assert worker.returncode == 130
    assert await cloud_status(cloud, task_id) == "cancelled"


async def test_commands_fail_clearly_without_a_login(user: User) -> None:
    code, _, err = await user.locus("tasks", "list", check=False)
    assert code == 4
    assert "not logged in" in err and "locus login" in err


async def test_run_task_takes_the_named_task_only(user: User, cloud: Cloud) -> None:
    user.agent(provider="replay", replay=str(DEMO_TRANSCRIPT))
    first = await login_and_queue(user, cloud)
    second = int(
        (await user.json("tasks", "create", "--project", str(cloud.project_id), "--title", TASK))[
            "id"
        ]
    )
    _, out, err = await user.locus("run", "--task", str(second), "--repo", str(user.repo), "--json")
    (run,) = json.loads(out)
    assert run["task_id"] == second and run["state"] == "awaiting_review", err
    assert await cloud_status(cloud, first) == "queued"  # older, same priority: left alone


async def test_review_hunk_by_hunk_at_the_terminal(user: User, cloud: Cloud) -> None:
    user.agent(provider="replay", replay=str(DEMO_TRANSCRIPT))
    await login_and_queue(user, cloud)
    _, out, _ = await user.locus("run", "--once", "--repo", str(user.repo), "--json")
    (run,) = json.loads(out)
    # First pass: reject with a comment; the decision is recorded, nothing committed.
    _, shown, _ = await user.locus(
        "review", run["run_id"], "--interactive", stdin="c\nkeep the old median\n"
    )
    assert "stats.py" in shown and "1 undecided" not in shown
    view = await user.json("review", run["run_id"])
    (hunk,) = view["files"][0]["hunks"]
    assert hunk["decision"] == {"action": "reject", "comment": "keep the old median"}
    # Second pass: accept, and commit.
    _, done, err = await user.locus(
        "review", run["run_id"], "--interactive", "--commit", stdin="a\n"
    )
    assert "committed" in done and "report queued for the cloud" in done, err


async def test_kill_9_between_commit_and_report_still_reports_once(
    user: User, cloud: Cloud
) -> None:
    user.agent(provider="replay", replay=str(DEMO_TRANSCRIPT))
    task_id = await login_and_queue(user, cloud)
    _, out, _ = await user.locus("run", "--once", "--repo", str(user.repo), "--json")
    (run,) = json.loads(out)
    await drained(user)
    port = int(cloud.url.rsplit(":", 1)[1])
    await cloud.runner.cleanup()  # the cloud goes away: the report cannot leave yet
    committed = await user.json("review", run["run_id"], "--accept-all", "--commit")
    assert committed["reportQueued"] is True
    status = await user.json("status")
    assert status["outboxPending"] >= 2
    os.kill(status["pid"], signal.SIGKILL)  # the daemon dies holding the report
    runner, _, _ = await start_cloud(cloud.db_url, port=port, lease_seconds=600)
    try:
        await drained(user)  # a new daemon (started by `locus status`) sends what was kept
        assert await cloud_status(cloud, task_id) == "verification"
        moves = [
            e["to_status"] for e in await timeline(cloud.api, task_id) if e["kind"] == "status"
        ]
        assert moves.count("verification") == 1
    finally:
        await user.locus("daemon", "stop", check=False)
        await runner.cleanup()
