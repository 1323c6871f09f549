"""The Plans page in real headless Chromium, on SQLite and PostgreSQL: ask for a plan, see a
worker's proposals (hostile model text shown as text), accept two of three — once, even when
the same form is sent from two tabs."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.cloud_api.dashboard.conftest import sign_in
from tests.cloud_api.dashboard.test_dashboard_http import jar_session
from tests.conftest import Cloud
from tests.support.client import Worker, every, fence

XSS = "<img src=x onerror=\"window.__xss='plan'\">"


async def test_ask_see_and_accept_two_of_three_proposals(cloud: Cloud, page: Page) -> None:
    first = cloud.first_start
    plans = f"{cloud.url}/projects/{cloud.project_id}/plans"
    await sign_in(page, cloud.url, first.email, first.password)
    await page.goto(plans)
    await expect(page.locator("#plans-empty")).to_be_visible()
    await page.get_by_role("button", name="Ask for a plan").click()  # empty: the browser says so
    await expect(page.locator("#plans-empty")).to_be_visible()
    await page.get_by_label("Goal").fill(f"Make the importer fast {XSS}")
    await page.get_by_role("button", name="Ask for a plan").click()
    await expect(page.locator(".flash")).to_contain_text("Planning request")
    request = page.locator("section.plan").first
    await expect(request.locator(".badge")).to_have_text("pending")
    await expect(request.locator(".goal")).to_have_text(f"Make the importer fast {XSS}")

    worker = await Worker.create(cloud.api, cloud.project_id, "laptop")
    claim = (await worker.api.post("/worker/plans/claim", {})).ok()
    proposals = [
        {"title": XSS, "description": f"desc {XSS}", "likely_files": [f"{XSS}.py"]},
        {"title": "Cache the parsed rows", "description": "", "likely_files": []},
        {"title": "Stream the input", "description": "read lazily", "likely_files": ["io.py"]},
    ]
    body = {**fence(claim), "proposals": proposals}
    (await worker.api.post(f"/worker/plans/{claim['plan']['id']}/report", body)).ok()

    await page.reload()
    plan_id = claim["plan"]["id"]
    await expect(request.locator(".badge")).to_have_text("proposed")
    one = page.locator(f"#proposal-{plan_id}-1")
    await expect(one.locator(".title")).to_have_text(XSS)
    await expect(one.locator(".description")).to_have_text(f"desc {XSS}")
    await expect(one.locator(".files code")).to_have_text(f"{XSS}.py")
    assert await page.locator("main img").count() == 0
    assert await page.evaluate("window.__xss") is None

    # Nothing chosen: a clear refusal naming what to do, and no task.
    await page.get_by_role("button", name="Add the chosen to the backlog").click()
    await expect(page.locator(".flash")).to_contain_text("Not done")
    assert await every(cloud.api, f"/projects/{cloud.project_id}/tasks") == []

    # The same choice from a second tab, sent after the first: no duplicate.
    other = await page.context.new_page()
    await other.goto(plans)
    for tab in (page, other):
        await tab.get_by_label("accept proposal 1").check()
        await tab.get_by_label("accept proposal 3").check()
    await page.get_by_role("button", name="Add the chosen to the backlog").click()
    await expect(page.locator(".flash")).to_have_text("2 tasks added to the backlog.")
    await other.get_by_role("button", name="Add the chosen to the backlog").click()
    await expect(other.locator(".flash")).to_have_text(
        "Already in the backlog: nothing new was created."
    )

    tasks = await every(cloud.api, f"/projects/{cloud.project_id}/tasks")
    assert sorted((t["title"], t["status"]) for t in tasks) == [
        (XSS, "backlog"),
        ("Stream the input", "backlog"),
    ]
    made = {t["title"]: t["id"] for t in tasks}
    await expect(page.locator(f"#proposal-{plan_id}-1 a")).to_have_text(f"#{made[XSS]}")
    await expect(page.get_by_label("accept proposal 2")).to_be_visible()
    await page.goto(f"{cloud.url}/projects/{cloud.project_id}/backlog")
    await expect(page.locator("main")).to_contain_text(XSS)
    assert await page.evaluate("window.__xss") is None


@pytest.mark.parametrize("goal", ["a\x00b", "x" * 4001, ""])
async def test_a_bad_goal_is_an_answer_naming_it(cloud: Cloud, goal: str) -> None:
    """A NUL (PostgreSQL stores none), an over-long or empty goal: a 422 naming the field,
    never a 500, and no request recorded."""
    async with jar_session() as http:
        http.cookie_jar.update_cookies({"locus_session": cloud.first_start.token})
        url = f"{cloud.url}/projects/{cloud.project_id}/plans"
        async with http.get(url) as shown:
            found = re.search(r'name="csrf_token" value="([^"]+)"', await shown.text())
        assert found
        form = {"csrf_token": found.group(1), "goal": goal}
        async with http.post(url, data=form, headers={"Accept": "application/json"}) as asked:
            assert asked.status == 422 and "goal" in await asked.text()
    assert await every(cloud.api, f"/projects/{cloud.project_id}/plans") == []
