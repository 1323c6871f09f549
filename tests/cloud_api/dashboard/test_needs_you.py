""" "Needs you" (issue 16, Deliver 11): across a person's projects — and only theirs — what
waits for them, counted in every page's navigation, answerable in place; and browser
notifications, opted into, when a task starts waiting while a board or task page is open."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.cloud_api.dashboard.conftest import sign_in
from tests.cloud_api.dashboard.test_dashboard_browser import PASSWORD, admin_page, status_of
from tests.conftest import Cloud
from tests.support.client import Worker, new_user

sqlite_only = pytest.mark.parametrize("template", ["sqlite"], indirect=True)

#: Wraps the browser's own Notification so the test can see what was shown (a headless
#: browser displays nothing); the real constructor still runs.
RECORD_NOTIFICATIONS = """
window.__notes = [];
const Real = window.Notification;
window.Notification = class extends Real {
  constructor(title, options) {
    super(title, options);
    window.__notes.push([title, options.body]);
    const seen = document.createElement("output");
    seen.className = "test-note";
    document.body.appendChild(seen);
  }
};
"""


async def waiting_task(
    cloud: Cloud, worker: Worker, project: int, title: str, status: str, **report: Any
) -> int:
    body = {"title": title, "status": "queued"}
    task_id: int = (await cloud.api.post(f"/projects/{project}/tasks", body)).ok(201)["id"]
    claim = (await worker.claim()).ok()
    assert claim["task"]["id"] == task_id
    (await worker.status(claim, "running")).ok()
    if status == "verification":
        (await worker.status(claim, "awaiting_review", summary="s")).ok()
    (await worker.status(claim, status, **report)).ok()
    return task_id


@sqlite_only
async def test_needs_you_lists_only_your_projects_and_answers_in_place(
    cloud: Cloud, page: Page
) -> None:
    api = cloud.api
    mine = cloud.project_id
    org = (await api.post("/orgs", {"name": "Other", "slug": "other"})).ok(201)
    body = {"org_id": org["id"], "name": "Secret", "slug": "secret"}
    theirs = (await api.post("/projects", body)).ok(201)["id"]
    here = await Worker.create(api, mine, "box")
    there = await Worker.create(api, theirs, "far")
    question = "<script>window.__xss=1</script> EUR or {{ 'USD' }}?"
    asked = await waiting_task(cloud, here, mine, "Prices", "needs_input", question=question)
    review = await waiting_task(cloud, here, mine, "Rounding", "verification")
    hidden = await waiting_task(cloud, there, theirs, "Hidden", "needs_input", question="?")
    await new_user(api, "bob@example.com", PASSWORD)
    project = (await api.get(f"/projects/{mine}")).ok()
    body = {"email": "bob@example.com", "role": "member"}
    (await api.post(f"/orgs/{project['org_id']}/members", body)).ok(201)

    await sign_in(page, cloud.url, "bob@example.com", PASSWORD)
    # Every page counts it; the link leads to the list.
    await expect(page.locator("#needs-you-count")).to_have_text("2")
    await page.get_by_role("link", name="Needs you").click()
    await expect(page.locator("#waiting-needs_input li")).to_have_count(1)
    item = page.locator(f"#waiting-task-{asked}")
    await expect(item.locator(".question")).to_have_text(question)
    await expect(page.locator(f"#waiting-verification #waiting-task-{review}")).to_be_visible()
    assert await page.locator(f"#waiting-task-{hidden}").count() == 0
    await expect(page.locator("main")).not_to_contain_text("Secret")

    await item.get_by_label("Your answer").fill("EUR")
    await item.get_by_role("button", name="Answer and queue").click()
    await expect(page.locator("p.flash")).to_contain_text("Answered")
    await expect(page).to_have_url(f"{cloud.url}/needs-you")
    await expect(page.locator("#needs-you-count")).to_have_text("1")
    assert await page.locator(f"#waiting-task-{asked}").count() == 0
    assert await status_of(cloud, asked) == "queued"
    assert await page.evaluate("window.__xss") is None

    # The admin sees every project's.
    await page.get_by_role("button", name="Sign out").click()
    await admin_page(page, cloud)
    await expect(page.locator("#needs-you-count")).to_have_text("2")


@sqlite_only
async def test_notifications_when_a_task_starts_waiting(cloud: Cloud, browser: Browser) -> None:
    context = await browser.new_context(permissions=["notifications"])
    await context.add_init_script(RECORD_NOTIFICATIONS)
    page = await context.new_page()
    api, project = cloud.api, cloud.project_id
    worker = await Worker.create(api, project, "box")
    (await api.post(f"/projects/{project}/tasks", {"title": "Pick a currency"})).ok(201)
    await admin_page(page, cloud)
    await page.goto(f"{cloud.url}/projects/{project}")
    await expect(page.locator("body")).to_have_attribute("data-live", "on")

    # Nothing until the person opts in.
    toggle = page.locator("#notify-toggle")
    await expect(toggle).to_have_text("Notify me")
    task_id = await waiting_task(cloud, worker, project, "Prices", "needs_input", question="A?")
    await expect(page.locator(f"#task-{task_id}")).to_have_attribute("data-status", "needs_input")
    assert await page.evaluate("window.__notes") == []

    await toggle.click()
    await expect(toggle).to_have_text("Notifications on")
    second = await waiting_task(
        cloud, worker, project, "Rounding", "needs_input", question="Half up or even?"
    )
    await expect(page.locator(f"#task-{second}")).to_have_attribute("data-status", "needs_input")
    await expect(page.locator("output.test-note")).to_have_count(1)
    notes = await page.evaluate("window.__notes")
    assert notes == [[f"#{second} Rounding asks a question", "Half up or even?"]]

    # On a task page too, and the choice is remembered; moves that need nobody stay quiet.
    body = {"title": "Totals", "status": "queued"}
    third = (await api.post(f"/projects/{project}/tasks", body)).ok(201)["id"]
    await page.goto(f"{cloud.url}/tasks/{third}")
    await expect(page.locator("body")).to_have_attribute("data-live", "on")
    await expect(page.locator("#notify-toggle")).to_have_text("Notifications on")
    claim = (await worker.claim()).ok()
    (await worker.status(claim, "running")).ok()
    await expect(page.locator("#task-status")).to_have_text("running")
    (await worker.status(claim, "awaiting_review", summary="Summed as Decimal")).ok()
    await expect(page.locator("output.test-note")).to_have_count(1)  # a new page
    notes = await page.evaluate("window.__notes")
    assert notes == [[f"#{third} Totals awaits review", "Summed as Decimal"]]
    await context.close()
