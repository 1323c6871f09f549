"""The daemon keeps the project's graph in the cloud current, through the outbox and the audit
log (docs/graph.md, "Uploads"): the real ``locus`` CLI and daemon against a real cloud."""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.cloud_api.dashboard.conftest import browser, page, sign_in
from tests.conftest import Cloud
from tests.locusd.agentkit import DEMO_TRANSCRIPT, git
from tests.locusd.cliuser import User, drained, login_and_queue

__all__ = ["browser", "page"]  # the dashboard's Chromium fixtures


async def graph(cloud: Cloud) -> dict[str, Any]:
    found: dict[str, Any] = (await cloud.api.get(f"/projects/{cloud.project_id}/graph")).ok()
    return found


def files(doc: dict[str, Any]) -> set[str]:
    return {n["key"] for n in doc["nodes"] if n["kind"] == "file"}


def touched(doc: dict[str, Any]) -> set[tuple[str, str]]:
    keys = {n["id"]: (n["kind"], n["key"]) for n in doc["nodes"]}
    return {
        (keys[e["src_id"]][1], keys[e["dst_id"]][1]) for e in doc["edges"] if e["kind"] == "touched"
    }


async def until(check: Any, timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.2)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("template", ["sqlite"], indirect=True)
async def test_a_served_repository_s_graph_reaches_the_project_and_follows_its_commits(
    user: User, cloud: Cloud, page: Page
) -> None:
    user.config.write_text(f'[agent]\nprovider = "replay"\nreplay = "{DEMO_TRANSCRIPT}"\n')
    task_id = await login_and_queue(user, cloud)
    _, out, err = await user.locus("run", "--once", "--repo", str(user.repo), "--json")
    (run,) = json.loads(out)
    assert run["state"] == "awaiting_review", err
    await drained(user)
    first = await graph(cloud)
    assert {"stats.py", "test_stats.py", "README.md"} <= files(first)
    assert ("language", "python") in {(n["kind"], n["key"]) for n in first["nodes"]}
    assert not touched(first)  # nothing accepted yet

    # The person accepts: the commit carries the task's trailer, on a locus/ branch.
    await user.locus("review", run["run_id"], "--accept-all", "--commit")
    worker = await user.start("run", "--repo", str(user.repo), quiet=True)
    try:

        async def task_files_arrived() -> bool:
            return (str(task_id), "stats.py") in touched(await graph(cloud))

        await until(task_files_arrived)

        # A new commit on the served branch: the next look (every 10 s) sends it.
        (user.repo / "parser.py").write_text("def parse(): ...\n")
        git(user.repo, "add", "parser.py")
        git(user.repo, "commit", "-q", "-m", "Add a parser")

        async def new_file_arrived() -> bool:
            return "parser.py" in files(await graph(cloud))

        await until(new_file_arrived)

        # The project page shows it (the dashboard's Graph tab, in Chromium).
        first_start = cloud.first_start
        await sign_in(page, cloud.url, first_start.email, first_start.password)
        await page.goto(f"{cloud.url}/projects/{cloud.project_id}/graph")
        await expect(page.locator("#graph-languages")).to_contain_text("python")
        await expect(page.locator(f"#graph-tasks a[href='/tasks/{task_id}']")).to_be_visible()
        await expect(page.locator("#graph-tasks")).to_contain_text("stats.py")
    finally:
        worker.send_signal(signal.SIGINT)  # Ctrl-C: `locus run` stops the daemon's worker
        await asyncio.wait_for(worker.wait(), 60)
    await drained(user)
    audit = await user.json("audit")
    graphs = [entry for entry in audit["entries"] if entry["kind"] == "graph"]
    assert len(graphs) >= 3 and all(entry.get("taskId") is None for entry in graphs), graphs
