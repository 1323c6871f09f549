"""The board that fits (issue 16): six columns at 1400 px with failures and waiting work
impossible to miss, priorities named as teams name them, escaping in the new places."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.cloud_api.dashboard.test_dashboard_browser import (
    admin_page,
    column,
    make_task,
    status_of,
)
from tests.conftest import Cloud
from tests.support.client import Worker, fence

sqlite_only = pytest.mark.parametrize("template", ["sqlite"], indirect=True)


async def one_task_per_status(cloud: Cloud) -> dict[str, int]:
    """A task in each of the ten statuses, moved there the way workers and people do."""
    api = cloud.api
    worker = await Worker.create(api, cloud.project_id, "box")
    ids: dict[str, int] = {}

    async def started(status: str) -> dict[str, Any]:
        task = await make_task(cloud, f"In {status}", status="queued")
        ids[status] = task["id"]
        claim: dict[str, Any] = (await worker.claim()).ok()
        assert claim["task"]["id"] == task["id"]
        if status != "claimed":
            (await worker.status(claim, "running")).ok()
        return claim

    ids["backlog"] = (await make_task(cloud, "In backlog"))["id"]
    await started("claimed")
    await started("running")
    claim = await started("needs_input")
    (await worker.status(claim, "needs_input", question="Which currency?")).ok()
    claim = await started("awaiting_review")
    (await worker.status(claim, "awaiting_review", summary="s")).ok()
    claim = await started("verification")
    (await worker.status(claim, "awaiting_review", summary="s")).ok()
    (await worker.status(claim, "verification")).ok()
    claim = await started("done")
    (await worker.status(claim, "awaiting_review", summary="s")).ok()
    (await worker.status(claim, "verification")).ok()
    (await api.post(f"/tasks/{ids['done']}/approve", {})).ok()
    claim = await started("failed")
    (await worker.status(claim, "failed", reason="verify command failed 3 times")).ok()
    ids["cancelled"] = (await make_task(cloud, "In cancelled"))["id"]
    (await api.post(f"/tasks/{ids['cancelled']}/cancel", {})).ok()
    # Queued last, so that no claim above took it.
    ids["queued"] = (await make_task(cloud, "In queued", status="queued"))["id"]
    return ids


@sqlite_only
async def test_every_column_fits_at_1400_and_failures_stand_out(cloud: Cloud, page: Page) -> None:
    ids = await one_task_per_status(cloud)
    await page.set_viewport_size({"width": 1400, "height": 900})
    await admin_page(page, cloud)
    await page.goto(f"{cloud.url}/projects/{cloud.project_id}")

    columns = page.locator(".board .column")
    await expect(columns.locator("h2")).to_contain_text(
        ["Backlog", "Queued", "In progress", "Needs you", "Done", "Failed / cancelled"]
    )
    for status, task_id in ids.items():
        card = column(page, status).locator(f"#task-{task_id}")
        await expect(card).to_have_attribute("data-status", status)
        # Every card is on screen: inside the window's width, nothing scrolled sideways.
        box = await card.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 1400, status
    await expect(column(page, "running").locator(".count")).to_have_text("2")
    await expect(column(page, "needs_input").locator(".count")).to_have_text("3")
    await expect(column(page, "failed").locator(".count")).to_have_text("2")
    widths = await page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth,"
        " document.getElementById('board').scrollWidth, document.getElementById('board').clientWidth]"
    )
    assert widths[0] <= widths[1] and widths[2] <= widths[3], widths

    # A failure and a waiting question are marked, not merely listed.
    failed = page.locator(f"#task-{ids['failed']}")
    await expect(failed.locator(".badge")).to_have_text("failed")
    needs = page.locator(f"#task-{ids['needs_input']}")
    await expect(needs.locator(".badge")).to_have_text("needs input")
    red = await column(page, "failed").evaluate("e => getComputedStyle(e).borderTopColor")
    plain = await column(page, "done").evaluate("e => getComputedStyle(e).borderTopColor")
    assert red != plain


@sqlite_only
async def test_priorities_are_named_p0_most_urgent(cloud: Cloud, page: Page) -> None:
    urgent = await make_task(cloud, "Site down", priority=300)
    nudged = await make_task(cloud, "Nudged", priority=205)
    low = await make_task(cloud, "Someday")
    await admin_page(page, cloud)
    await page.goto(f"{cloud.url}/projects/{cloud.project_id}")
    await expect(page.locator(f"#task-{urgent['id']} .prio")).to_have_text("P0 Urgent")
    await expect(page.locator(f"#task-{nudged['id']} .prio")).to_have_text("P1 High")
    await expect(page.locator(f"#task-{low['id']} .prio")).to_have_text("P3 Low")
    # Urgent first, as the agents claim them.
    await expect(column(page, "backlog").locator(".card .title")).to_contain_text(
        ["Site down", "Nudged", "Someday"]
    )

    # The edit form names the levels; saving without touching it keeps the exact value.
    await page.goto(f"{cloud.url}/tasks/{nudged['id']}")
    await expect(page.locator("#task-priority")).to_have_text("P1 High")
    await page.get_by_text("Edit task").click()
    select = page.get_by_label("Priority")
    await expect(select.locator("option")).to_have_text(
        ["P0 Urgent", "P1 High", "P2 Medium", "P3 Low"]
    )
    await page.get_by_label("Title").fill("Nudged a bit")
    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(page.locator("#task-title")).to_have_text("Nudged a bit")
    assert (await cloud.api.get(f"/tasks/{nudged['id']}")).ok()["priority"] == 205
    await page.get_by_text("Edit task").click()
    await page.get_by_label("Priority").select_option(label="P0 Urgent")
    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(page.locator("#task-priority")).to_have_text("P0 Urgent")
    assert (await cloud.api.get(f"/tasks/{nudged['id']}")).ok()["priority"] == 300

    # A new task from the backlog form, by name.
    await page.goto(f"{cloud.url}/projects/{cloud.project_id}/backlog")
    form = page.locator("#new-task")
    await form.get_by_label("Title").fill("Pick a font")
    await form.get_by_label("Priority").select_option(label="P2 Medium")
    await form.get_by_role("button", name="Create task").click()
    row = page.locator("tr", has_text="Pick a font")
    await expect(row.locator(".prio span")).to_have_text("P2 Medium")
    listed = (await cloud.api.get(f"/projects/{cloud.project_id}/tasks")).ok()["items"]
    assert [t["priority"] for t in listed if t["title"] == "Pick a font"] == [100]


@sqlite_only
async def test_cancel_from_a_card_asks_first_even_without_javascript(
    cloud: Cloud, browser: Browser
) -> None:
    task = await make_task(cloud, "Keep <b>me</b> {{ 7*7 }}")
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    await admin_page(page, cloud)
    await page.goto(f"{cloud.url}/projects/{cloud.project_id}")
    card = page.locator(f"#task-{task['id']}")
    await card.get_by_role("link", name="Cancel…").click()
    # One click cancelled nothing: this is a question, naming the task (as text).
    await expect(page.locator(".confirm-title")).to_have_text("Keep <b>me</b> {{ 7*7 }}")
    assert await status_of(cloud, task["id"]) == "backlog"
    await page.get_by_role("button", name="Cancel the task").click()
    # Back to the board it came from, the card now among the cancelled.
    await expect(page).to_have_url(f"{cloud.url}/projects/{cloud.project_id}")
    await expect(column(page, "cancelled").locator(f"#task-{task['id']}")).to_be_visible()
    assert await status_of(cloud, task["id"]) == "cancelled"

    # Asked again once it is cancelled, the page says so and offers nothing.
    await page.goto(f"{cloud.url}/tasks/{task['id']}/cancel?back=//evil.example")
    await expect(page.locator("#confirm-cancel")).to_contain_text("nothing to cancel")
    assert await page.locator("#confirm-cancel form").count() == 0
    # A crafted back address stays on this site.
    back = await page.get_by_role("link", name="Back", exact=True).get_attribute("href")
    assert back == f"/tasks/{task['id']}"
    await context.close()


@sqlite_only
async def test_timeline_speaks_and_the_log_is_split_by_attempt(cloud: Cloud, page: Page) -> None:
    api, project = cloud.api, cloud.project_id
    sprint = (await api.post(f"/projects/{project}/sprints", {"name": "Checkout"})).ok(201)
    task = await make_task(cloud, "Round totals", status="queued")
    task_id = task["id"]
    worker = await Worker.create(api, project, "box")
    first = (await worker.claim()).ok()
    (await worker.status(first, "running")).ok()
    body = {**fence(first), "seq": 1, "text": "first try\n"}
    (await worker.api.post(f"/worker/tasks/{task_id}/logs", body)).ok()
    reason = "cancelled on the developer's machine"
    (await worker.status(first, "queued", reason=reason)).ok()
    title = "<script>window.__xss=1</script> {{ 7*7 }}"
    edit = {"sprint_id": sprint["id"], "priority": 200, "title": title}
    (await api.patch(f"/tasks/{task_id}", edit)).ok()

    await admin_page(page, cloud)
    await page.goto(f"{cloud.url}/tasks/{task_id}")
    await expect(page.locator("p.reason")).to_have_text(reason)
    said = page.locator(".timeline .said")
    await expect(said.first).to_have_text(
        f"renamed it to {title}, moved it to sprint Checkout and set the priority to P1 High"
    )
    await expect(page.locator(".timeline")).to_contain_text("box gave it back to the queue")
    await expect(page.locator(".timeline")).to_contain_text("box picked it up (attempt 1)")
    assert "sprint_id" not in await page.locator(".timeline").inner_text()
    await expect(page.locator("#log-attempt-1 pre")).to_have_text("first try")

    # Claimed again: the old reason goes, and the new attempt's log is a section of its own,
    # made live.
    second = (await worker.claim()).ok()
    await expect(page.locator("#task-status")).to_have_text("claimed")
    await expect(page.locator("p.reason")).to_have_count(0)
    body = {**fence(second), "seq": 1, "text": "second try\n"}
    (await worker.api.post(f"/worker/tasks/{task_id}/logs", body)).ok()
    await expect(page.locator("#log-attempt-2 h3")).to_have_text("Attempt 2")
    await expect(page.locator("#log-attempt-2 pre")).to_have_text("second try")
    await expect(page.locator("#log-attempt-1 pre")).to_have_text("first try")
    await page.reload()
    await expect(page.locator("#log .attempt-log h3")).to_have_text(["Attempt 1", "Attempt 2"])
    assert await page.evaluate("window.__xss") is None


@sqlite_only
async def test_a_new_projects_slug_follows_its_name_until_edited(
    cloud: Cloud, page: Page, browser: Browser
) -> None:
    await admin_page(page, cloud)
    form = page.locator("form[action='/projects']")
    await form.get_by_label("Name", exact=True).fill("Café Crème Shop")
    slug = form.get_by_label("Slug")
    await expect(slug).to_have_value("cafe-creme-shop")
    await slug.fill("creme")
    await form.get_by_label("Name", exact=True).fill("Café Crème Shop 2")
    await expect(slug).to_have_value("creme")  # edited by hand: it stays
    await form.get_by_role("button", name="Create project").click()
    await expect(page.locator(".project-name")).to_have_text("Café Crème Shop 2")

    # Without JavaScript an empty slug is derived by the server, by the same rule.
    context = await browser.new_context(java_script_enabled=False)
    bare = await context.new_page()
    await admin_page(bare, cloud)
    form = bare.locator("form[action='/projects']")
    await form.get_by_label("Name", exact=True).fill("Ünïcode & Co.")
    await form.get_by_role("button", name="Create project").click()
    await expect(bare.locator(".project-name")).to_have_text("Ünïcode & Co.")
    await bare.goto(cloud.url)
    await expect(bare.locator(".project-list")).to_contain_text("unicode-co")
    # A name with nothing a slug can use is a clear error naming the field.
    form = bare.locator("form[action='/projects']")
    await form.get_by_label("Name", exact=True).fill("中文")
    await form.get_by_role("button", name="Create project").click()
    await expect(bare.locator("p.flash.error")).to_contain_text("slug")
    await expect(bare.locator("p.flash.error")).to_contain_text("type a slug")
    await context.close()
    slugs = [p["slug"] for p in (await cloud.api.get("/projects")).ok()["items"]]
    assert "creme" in slugs and "unicode-co" in slugs
