"""``locus cancel`` and Ctrl-C of ``locus run`` as a user runs them (every command a subprocess,
the daemon a detached process, a real cloud): cancelling a run stops the task there and then,
``--requeue`` and Ctrl-C give it back to the queue."""

from __future__ import annotations

import asyncio
import signal
import uuid
from typing import Any

import pytest

from locusd.runner.attempt import CANCELLED_HERE, GIVEN_BACK
from tests.conftest import Cloud
from tests.locusd.agentkit import call
from tests.locusd.cliuser import User, cloud_status, drained, login_and_queue
from tests.support.anthropic_server import AnthropicServer
from tests.support.client import timeline
from tests.support.processes import processes_named, until

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.parametrize("template", ["sqlite"], indirect=True),
]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"lease_seconds": 600}  # nothing goes back to the queue by itself


async def until_run_of(user: User, task_id: int) -> None:
    """Until the daemon has a run of the task (bounded)."""
    for _ in range(600):
        if any(r["taskId"] == task_id for r in (await user.json("runs"))["runs"]):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no run of task {task_id}")


async def last_worker_move(cloud: Cloud, task_id: int) -> dict[str, Any]:
    events = await timeline(cloud.api, task_id)
    moves = [e for e in events if e["kind"] == "status" and e["actor"] == "worker"]
    return moves[-1]


@pytest.mark.parametrize("how", ["locus cancel", "locus cancel --requeue", "Ctrl-C"])
async def test_stopping_a_run_cancels_its_task_or_gives_it_back(
    user: User, cloud: Cloud, how: str
) -> None:
    marker = f"locus-cli-cancel-{uuid.uuid4().hex}"
    script = [call("run_command", command=f"exec -a {marker} sleep 600", timeout=900)]
    async with AnthropicServer(script) as model:
        user.agent(base_url=model.base_url)
        task_id = await login_and_queue(user, cloud)
        working = await user.start("run", "--repo", str(user.repo))  # a loop, not --once
        try:
            await until(lambda: bool(processes_named(marker)), timeout=60)
            (run,) = (await user.json("runs"))["runs"]
            if how == "Ctrl-C":
                working.send_signal(signal.SIGINT)
            else:
                requeue = ["--requeue"] if how.endswith("--requeue") else []
                ended = await user.json("cancel", run["runId"], *requeue)
                assert ended["state"] == "cancelled"
                assert not processes_named(marker)
                await drained(user)
                # The loop goes on. Had it not passed over the task it was told to stop, it
                # would take it first: another task, queued after, is what it takes next.
                project = str(cloud.project_id)
                queued = await user.json("tasks", "create", "--project", project, "--title", "Next")
                next_id = int(queued["id"])
                await until_run_of(user, next_id)
                working.send_signal(signal.SIGINT)
            await asyncio.wait_for(working.communicate(), 60)
        finally:
            if working.returncode is None:
                working.kill()
                await working.wait()
        await drained(user)
    expected = "cancelled" if how == "locus cancel" else "queued"
    assert await cloud_status(cloud, task_id) == expected
    move = await last_worker_move(cloud, task_id)
    assert move["to_status"] == expected
    assert move["data"]["reason"] == (CANCELLED_HERE if expected == "cancelled" else GIVEN_BACK)
    runs = (await user.json("runs"))["runs"]
    assert [r["runId"] for r in runs if r["taskId"] == task_id] == [run["runId"]]


async def test_cancel_says_what_requeue_does(user: User) -> None:
    _, out, _ = await user.locus("cancel", "--help")
    assert "--requeue" in out and "queue" in out
