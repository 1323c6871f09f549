"""``locus plan`` from the dashboard, end to end with real parts: a person asks on the Plans
page (real headless Chromium), the daemon's worker claims the request, runs the planning run
(the agent process and the built-in loop against the scripted Anthropic server) on its
checkout, and reports the proposals through the outbox; the page shows them (a hostile title
as text), the person accepts two of three, and exactly those two are in the backlog. What
the daemon sent the cloud holds the proposals' text and likely paths, never the code it read.
A kill -9 of the daemon after the run keeps the report: the next daemon sends it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import expect

from locusd.daemon import Daemon
from locusd.protocol.base import Empty
from locusd.protocol.messages import LoginParams, WorkerStartParams
from tests.cloud_api.dashboard.conftest import chromium_path, launched, sign_in
from tests.conftest import Cloud, Template, start_cloud
from tests.locusd.agentkit import call, make_config, make_planning_repo
from tests.locusd.peers import Client
from tests.support.anthropic_server import AnthropicServer
from tests.support.client import Api, every
from tests.support.recorder import Recorder
from tests.support.shortpath import short_tmp

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.parametrize("template", ["sqlite"], indirect=True),
]
REMOTE = "https://git.example.com/acme/planned.git"
CANARY = "CANARY_DASHBOARD_PLAN_private_algorithm_5e1a"
XSS = "<img src=x onerror=\"window.__xss='proposal'\">"
PROPOSALS = [
    {"title": XSS, "description": "Average the two middle values.", "likely_files": ["stats.py"]},
    {"title": "Document stats.py", "description": "Add docstrings.", "likely_files": []},
    {
        "title": "Test the empty list",
        "description": "median([]) should raise ValueError.",
        "likely_files": ["test_stats.py"],
    },
]


@pytest.fixture(autouse=True)
def model_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-dashboard-plan-test")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_planning_repo(tmp_path, CANARY, REMOTE)


def planner() -> list[Any]:
    return [call("read_file", path="engine.py"), call("propose_tasks", proposals=PROPOSALS)]


async def until_planned(api: Api, project_id: int, plan_id: int) -> dict[str, Any]:
    """The request once it is no longer waiting or being planned (woken by the cloud's
    answers, checked every 0.2 s; the test's timeout bounds it)."""
    while True:
        got = (await api.get(f"/projects/{project_id}/plans/{plan_id}")).ok()
        if got["status"] not in ("pending", "planning"):
            return dict(got)
        await asyncio.sleep(0.2)


async def test_dashboard_request_to_backlog_through_a_real_daemon(
    cloud: Cloud, repo: Path, tmp_path: Path
) -> None:
    (await cloud.api.patch(f"/projects/{cloud.project_id}", json={"remotes": [REMOTE]})).ok()
    plans = f"{cloud.url}/projects/{cloud.project_id}/plans"
    peer = Client()
    async with Recorder(cloud.url) as proxy, AnthropicServer(planner()) as model:
        daemon = Daemon(make_config(tmp_path / "d", base_url=model.base_url))
        try:
            await daemon.auth_login(
                LoginParams(cloud_url=proxy.url, token=cloud.first_start.token), peer
            )
            await daemon.worker_start(WorkerStartParams(repos=[str(repo)]), peer)
            with short_tmp() as tmp:
                async with launched(chromium_path(), tmp) as browser:
                    page = await browser.new_page()
                    first = cloud.first_start
                    await sign_in(page, cloud.url, first.email, first.password)
                    await page.goto(plans)
                    await page.get_by_label("Goal").fill("Make stats.py correct")
                    await page.get_by_role("button", name="Ask for a plan").click()
                    await expect(page.locator(".flash")).to_contain_text("Planning request")
                    (asked,) = await every(cloud.api, f"/projects/{cloud.project_id}/plans")

                    waiting = until_planned(cloud.api, cloud.project_id, asked["id"])
                    planned = await asyncio.wait_for(waiting, 90)
                    assert planned["status"] == "proposed", planned
                    await page.reload()
                    one = page.locator(f"#proposal-{asked['id']}-1")
                    await expect(one.locator(".title")).to_have_text(XSS)
                    await expect(one.locator(".files code")).to_have_text("stats.py")
                    assert await page.locator("main img").count() == 0
                    assert await page.evaluate("window.__xss") is None

                    await page.get_by_label("accept proposal 1").check()
                    await page.get_by_label("accept proposal 3").check()
                    await page.get_by_role("button", name="Add the chosen to the backlog").click()
                    await expect(page.locator(".flash")).to_have_text(
                        "2 tasks added to the backlog."
                    )
            await daemon.worker_stop(Empty(), peer)
            (run,) = [r for r in daemon.store.all() if r.kind == "plan"]
        finally:
            await daemon.close()

    assert run.state == "completed" and len(run.proposals) == 3
    # The model was asked the person's goal, as data of the planning run.
    assert "Make stats.py correct" in json.dumps(model.requests[0].body)
    tasks = await every(cloud.api, f"/projects/{cloud.project_id}/tasks")
    assert sorted((t["title"], t["description"], t["status"]) for t in tasks) == sorted(
        (p["title"], p["description"], "backlog") for p in (PROPOSALS[0], PROPOSALS[2])
    )
    sent = b"\n".join(r.raw for r in proxy.requests)
    assert CANARY.encode() not in sent  # the code the agent read stayed here
    (report,) = [r for r in proxy.requests if r.path_qs.endswith("/report")]
    assert [p["title"] for p in json.loads(report.body)["proposals"]] == [
        p["title"] for p in PROPOSALS
    ]
    assert set(json.loads(report.body)) == {"attempt", "claim_token", "proposals"}


PROBE = """
import asyncio, json, sys
from pathlib import Path
from locusd.daemon import Daemon
from locusd.protocol.messages import LoginParams
from tests.locusd.agentkit import make_config
from tests.locusd.peers import Client

async def main() -> None:
    where, repo, base_url, cloud_url, token, project = sys.argv[1:7]
    config = make_config(Path(where), base_url=base_url)
    config.daemon.outbox_retry_cap = 0.2
    daemon = Daemon(config)
    await daemon.auth_login(LoginParams(cloud_url=cloud_url, token=token), Client())
    client = await daemon.session.worker_client(int(project))
    await client.register(host="probe", capacity=1, repositories=[], version="test")
    claim = await client.claim_plan(0)
    print(json.dumps({"plan_id": claim.plan.id}), flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # the test takes the cloud away meanwhile
    run = daemon.plan_requests.start(claim, Path(repo), int(project), {})
    ended = await daemon.runs.wait(run.run_id)
    print(json.dumps({"state": ended.state, "pending": daemon.outbox.pending_count()}), flush=True)
    await asyncio.Event().wait()  # until killed

asyncio.run(main())
"""


async def test_the_report_survives_a_kill_9_after_the_run(
    template: Template, db_url: str, repo: Path, tmp_path: Path
) -> None:
    runner, url, _ = await start_cloud(db_url)
    port = int(url.rsplit(":", 1)[1])
    first = template.first_start
    async with AnthropicServer(planner()) as model, aiohttp.ClientSession() as session:
        api = Api(session, url, first.token)
        (await api.patch(f"/projects/{first.project_id}", json={"remotes": [REMOTE]})).ok()
        asked = (await api.post(f"/projects/{first.project_id}/plans", {"goal": "Tidy"})).ok(201)
        args = [str(tmp_path / "d"), str(repo), model.base_url, url, first.token]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", PROBE, *args, str(first.project_id),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            cwd=Path(__file__).resolve().parents[2],
        )  # fmt: skip
        assert process.stdin is not None and process.stdout is not None
        try:
            claimed = json.loads(await asyncio.wait_for(process.stdout.readline(), 60))
            assert claimed["plan_id"] == asked["id"]
            await runner.cleanup()  # the cloud is gone while the run ends
            process.stdin.write(b"go\n")
            await process.stdin.drain()
            ended = json.loads(await asyncio.wait_for(process.stdout.readline(), 90))
            assert ended == {"state": "completed", "pending": 1}  # the report, kept
        finally:
            os.kill(process.pid, signal.SIGKILL)
            await process.wait()
        runner, _, _ = await start_cloud(db_url, port=port)  # back
        try:
            shown = (await api.get(f"/projects/{first.project_id}/plans/{asked['id']}")).ok()
            assert shown["status"] == "planning"  # nothing reached it before the kill
            daemon = Daemon(make_config(tmp_path / "d", base_url=model.base_url))
            try:
                await asyncio.wait_for(daemon.outbox.wait_empty(), 60)
            finally:
                await daemon.close()
            shown = (await api.get(f"/projects/{first.project_id}/plans/{asked['id']}")).ok()
        finally:
            await runner.cleanup()
    assert shown["status"] == "proposed"
    assert [p["title"] for p in shown["proposals"]] == [p["title"] for p in PROPOSALS]
