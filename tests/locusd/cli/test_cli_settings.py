"""Settings that take effect (issue 16, point 5), with the real CLI, a real daemon it starts and
a real cloud: the model variables of the shell ``locus run`` runs in reach the next run of an
older daemon, an edited ``config.toml`` applies to the next run, a broken one is said (line or
key) and starts nothing, and relative paths in it are relative to the file."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import textwrap
from pathlib import Path

import pytest

from locusd.runner.worker import UNREADABLE_CONFIG
from tests.cloud_api.dispatch.test_dispatch import wait_for_waiters
from tests.conftest import Cloud
from tests.locusd.agentkit import BUGGY, DEMO_TRANSCRIPT, FIXED, TASK, call
from tests.locusd.cliuser import User, cloud_status, login_and_queue
from tests.support.anthropic_server import AnthropicServer
from tests.support.client import timeline

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.parametrize("template", ["sqlite"], indirect=True),
]
KEY = "sk-ant-exported-after-the-daemon-started-0123456789"


async def test_a_key_exported_after_the_daemon_started_reaches_the_next_run(
    user: User, cloud: Cloud
) -> None:
    del user.env["ANTHROPIC_API_KEY"]  # the daemon starts without one
    script = [call("edit_file", path="stats.py", old_string=BUGGY, new_string=FIXED),
              call("finish", summary="fixed")]  # fmt: skip
    async with AnthropicServer(script) as model:
        user.agent(provider="anthropic", base_url=model.base_url)
        task_id = await login_and_queue(user, cloud)
        pid = (await user.json("daemon", "status"))["pid"]

        code, _, err = await user.locus("run", "--once", "--repo", str(user.repo), check=False)
        assert code == 2, err
        assert "export ANTHROPIC_API_KEY=" in err and "and run the command again" in err, err

        user.env["ANTHROPIC_API_KEY"] = KEY  # as the error says; no daemon stop
        _, out, err = await user.locus("run", "--once", "--repo", str(user.repo), "--json")
        (run,) = json.loads(out)
        assert run["state"] == "awaiting_review" and run["task_id"] == task_id, err
        assert {r.api_key for r in model.requests} == {KEY}  # the shell's key, this run
    assert (await user.json("daemon", "status"))["pid"] == pid  # the same daemon

    # The key went nowhere else: not into the daemon's log, the run store, the cloud.
    state = user.env["XDG_STATE_HOME"]
    assert not any(KEY.encode() in p.read_bytes() for p in _files(state)), "the key was kept"
    events = (await cloud.api.get(f"/tasks/{task_id}/events")).ok()
    assert KEY not in json.dumps(events)


def _files(root: str) -> list[Path]:
    return [p for p in Path(root).rglob("*") if p.is_file()]


async def test_an_edited_config_applies_to_the_next_run_and_a_broken_one_is_said(
    user: User, cloud: Cloud
) -> None:
    user.agent(provider="openai")  # no base URL, no model: nothing can run
    task_id = await login_and_queue(user, cloud)
    pid = (await user.json("daemon", "status"))["pid"]
    code, _, err = await user.locus("run", "--once", "--repo", str(user.repo), check=False)
    assert code == 2 and "the openai provider needs a base URL" in err, err

    # A broken file: the line is named, nothing is claimed, the previous settings are kept.
    user.config.write_text('[agent]\nprovider = "replay\n')
    status = await user.json("status")
    (problem,) = status["config"]["problems"]
    assert str(user.config) in problem and "line 2" in problem, problem
    _, out, _ = await user.locus("status")
    assert f"config: {user.config}" in out and "keeps its previous settings" in out, out
    code, _, err = await user.locus("run", "--once", "--repo", str(user.repo), check=False)
    assert code == 2 and "line 2" in err, err
    user.config.write_text('[agent]\nprovider = "replay"\nreplay_file = "x.jsonl"\n')
    code, _, err = await user.locus("run", "--once", "--repo", str(user.repo), check=False)
    assert code == 2 and "agent.replay_file: Extra inputs are not permitted" in err, err

    # Fixed, with a path relative to the config file (the daemon's cwd is /): the next run
    # replays it, in the same daemon.
    shutil.copy(DEMO_TRANSCRIPT, user.config.parent / "fix.jsonl")
    user.config.write_text(textwrap.dedent('[agent]\nprovider = "replay"\nreplay = "fix.jsonl"\n'))
    assert (await user.json("status"))["config"]["problems"] == []
    _, out, err = await user.locus("run", "--once", "--repo", str(user.repo), "--json")
    (run,) = json.loads(out)
    assert run["state"] == "awaiting_review" and run["task_id"] == task_id, err
    assert (await user.json("daemon", "status"))["pid"] == pid


async def test_settings_a_daemon_is_built_on_say_restart_and_restart_applies_them(
    user: User, cloud: Cloud
) -> None:
    await user.json("daemon", "start")
    pid = (await user.json("daemon", "status"))["pid"]
    user.config.write_text("[daemon]\noutbox_retry_cap = 5.0\n")
    (problem,) = (await user.json("status"))["config"]["problems"]
    assert "daemon.outbox_retry_cap" in problem and "locus daemon restart" in problem, problem
    restarted = await user.json("daemon", "restart")
    assert restarted["pid"] != pid and restarted["config"]["problems"] == []


async def test_a_running_worker_claims_nothing_while_the_config_is_broken(
    user: User, cloud: Cloud
) -> None:
    user.agent(provider="replay", replay=str(DEMO_TRANSCRIPT))
    await user.json("login", "--cloud", cloud.url, "--token", cloud.first_start.token)
    worker = await user.start("run", "--repo", str(user.repo), "--json")
    try:
        # (the worker first enqueues its graph, then claims: the cloud counts its long-poll)
        await wait_for_waiters(cloud.api, 1)
        # Broken while the worker waits in a claim: the task it gets is given back, unrun.
        user.config.write_text('[agent]\nprovider = "replay"\nreplay = \n')
        created = await user.json(
            "tasks", "create", "--project", str(cloud.project_id), "--title", TASK
        )
        task_id = int(created["id"])

        async def given_back() -> bool:
            events = await timeline(cloud.api, task_id)
            return any(UNREADABLE_CONFIG in json.dumps(e) for e in events)

        async with asyncio.timeout(60):
            while not await given_back():
                await asyncio.sleep(0.2)
        async with asyncio.timeout(60):
            while "not claiming" not in str((await user.json("status"))["worker"].get("lastError")):
                await asyncio.sleep(0.2)
        error = (await user.json("status"))["worker"]["lastError"]
        assert f"not claiming: {user.config}: not valid TOML" in error, error
        assert (await user.json("runs"))["runs"] == []
        assert await cloud_status(cloud, task_id) == "queued"

        # Fixed: the same worker takes the task and runs it.
        user.agent(provider="replay", replay=str(DEMO_TRANSCRIPT))
        async with asyncio.timeout(90):
            while not (runs := (await user.json("runs"))["runs"]) or runs[0]["state"] in (
                "starting",
                "running",
            ):
                await asyncio.sleep(0.2)
        assert runs[0]["taskId"] == task_id and runs[0]["state"] == "awaiting_review", runs
    finally:
        worker.send_signal(signal.SIGINT)
        await asyncio.wait_for(worker.communicate(), 60)


async def test_a_daemon_started_on_a_broken_config_says_the_line_without_a_traceback(
    user: User,
) -> None:
    user.config.write_text('[agent]\nprovider = "replay\n')
    code, _, err = await user.locus("status", check=False)
    assert code == 5 and f"locusd serve: {user.config}: not valid TOML" in err, err
    assert "line 2" in err and "Traceback" not in err, err
