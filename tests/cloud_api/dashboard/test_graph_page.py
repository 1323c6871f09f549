"""The project's Graph page, in real headless Chromium: the empty state, then what a worker's
real upload (the daemon's indexer on a real repository) shows — with file names that are
markup rendered as text."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page, expect

from tests.cloud_api.dashboard.conftest import sign_in
from tests.conftest import Cloud
from tests.support.client import Worker
from tests.support.graph_repos import body, commit, git

XSS = "<img src=x onerror=\"window.__xss='graph'\">.py"


async def test_the_graph_page_shows_a_workers_upload_as_text(
    cloud: Cloud, page: Page, tmp_path: Path
) -> None:
    first = cloud.first_start
    await sign_in(page, cloud.url, first.email, first.password)
    await page.goto(f"{cloud.url}/projects/{cloud.project_id}/graph")
    await expect(page.locator("#graph-empty")).to_have_text(
        "No graph yet: a worker uploads it when it serves the repository."
    )

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    pyproject = '[project]\nname = "shop"\ndependencies = ["requests>=2"]\n'
    files = {"pyproject.toml": pyproject, "shop/cart.py": "x", "shop/pay.py": "x", XSS: "x"}
    commit(repo, {**files, "web/app.ts": "x"}, "start")
    co_change = {("shop/cart.py", "shop/pay.py"): 12, ("shop/pay.py", XSS): 5}
    upload = body(repo, tmp_path / "state", co_change, tasks={41: ["shop/cart.py", XSS]})
    worker = await Worker.create(cloud.api, cloud.project_id, "box")
    (await worker.api.post(f"/worker/projects/{cloud.project_id}/graph", upload)).ok()

    await page.reload()
    await expect(page.locator("#graph-empty")).to_have_count(0)
    await expect(page.locator("#graph-languages")).to_contain_text("python 3 files")
    await expect(page.locator("#graph-modules")).to_contain_text("shop")
    await expect(page.locator("#graph-dependencies")).to_contain_text("requests")
    await expect(page.locator("#graph-tasks a[href='/tasks/41']")).to_have_text("#41")
    await expect(page.locator("#graph-tasks")).to_contain_text(XSS)
    cluster = page.locator("#graph-clusters li").first
    await expect(cluster).to_contain_text("17 changes together")  # 12 + 5, one cluster
    await expect(cluster).to_contain_text(XSS)
    assert await page.locator("main img").count() == 0
    assert await page.evaluate("window.__xss") is None
