"""The rest of the board that fits (issue 16): assignee and reviewer set from the task page and
shown on cards, "assigned to me", text search (with and without JavaScript; ``%`` is data),
keyboard shortcuts, and multi-select bulk moves through the one write path — in a real
headless Chromium against a real cloud. Names and titles are text, never HTML."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.cloud_api.dashboard.conftest import sign_in
from tests.cloud_api.dashboard.test_dashboard_browser import (
    PASSWORD,
    admin_page,
    column,
    make_task,
    status_of,
)
from tests.conftest import Cloud
from tests.support.client import Worker

pytestmark = pytest.mark.parametrize("template", ["sqlite"], indirect=True)

EVIL_NAME = "<img src=x onerror=\"window.__xss='name'\">Mallory"
EVIL_TITLE = "<img src=x onerror=\"window.__xss='title'\"> Fix 100% of it"


async def add_member(cloud: Cloud, email: str, name: str) -> int:
    """A user with ``name`` (any text), made a member of the test project's organisation."""
    body = {"email": email, "name": name, "password": PASSWORD}
    user_id: int = (await cloud.api.post("/users", body)).ok(201)["id"]
    org_id = (await cloud.api.get(f"/projects/{cloud.project_id}")).ok()["org_id"]
    (await cloud.api.post(f"/orgs/{org_id}/members", {"email": email, "role": "member"})).ok(201)
    return user_id


async def board(page: Page, cloud: Cloud, query: str = "") -> None:
    await page.goto(f"{cloud.url}/projects/{cloud.project_id}{query}")
    await expect(page.locator("body")).to_have_attribute("data-live", "on")


async def titles(page: Page) -> list[str]:
    return await page.locator(".card .title").all_text_contents()


async def no_script_ran(page: Page) -> None:
    assert await page.evaluate("window.__xss") is None


async def test_assign_from_the_task_page_and_filter_assigned_to_me(
    cloud: Cloud, page: Page
) -> None:
    mallory = await add_member(cloud, "mallory@example.com", EVIL_NAME)
    me: int = (await cloud.api.get("/me")).ok()["user"]["id"]
    task = await make_task(cloud, EVIL_TITLE)
    other = await make_task(cloud, "Someone else's")
    await admin_page(page, cloud)

    await page.goto(f"{cloud.url}/tasks/{task['id']}")
    people = page.get_by_role("form", name="People")
    await people.get_by_label("Assignee").select_option(value=str(me))
    await people.get_by_label("Reviewer").select_option(value=str(mallory))
    await people.get_by_role("button", name="Save people").click()
    await expect(page.locator("p.flash")).to_contain_text(f"Task #{task['id']} saved")
    saved = (await cloud.api.get(f"/tasks/{task['id']}")).ok()
    assert (saved["assignee_id"], saved["reviewer_id"]) == (me, mallory)
    # The timeline names them, as text.
    await expect(page.locator(".timeline")).to_contain_text(f"asked {EVIL_NAME} to review it")
    await expect(page.locator("#task-title")).to_have_text(EVIL_TITLE)

    # The card shows both; names and title are text.
    await board(page, cloud)
    card = page.locator(f"#task-{task['id']}")
    await expect(card.locator(".assignee")).to_have_text("Admin")
    await expect(card.locator(".reviewer")).to_have_text(f"review: {EVIL_NAME}")
    await expect(card.locator(".title")).to_have_text(f"#{task['id']} {EVIL_TITLE}")
    assert await page.locator(".card img").count() == 0
    # Live: assigning the other task (elsewhere) shows on its card without a reload.
    (await cloud.api.patch(f"/tasks/{other['id']}", {"assignee_id": mallory})).ok()
    await expect(page.locator(f"#task-{other['id']} .assignee")).to_have_text(EVIL_NAME)

    # Assigned to me: only mine, and it stays a filter of the page's URL.
    await page.get_by_label("Assigned to me").check()
    await page.get_by_role("button", name="Filter").click()
    await expect(page).to_have_url(f"{cloud.url}/projects/{cloud.project_id}?mine=1")
    assert await titles(page) == [f"#{task['id']} {EVIL_TITLE}"]
    await no_script_ran(page)

    # A stranger cannot be given a task even by a hand-made form: the field is named.
    token = await page.locator('#act input[name="csrf_token"]').get_attribute("value")
    assert token
    stranger = (
        await cloud.api.post(
            "/users", {"email": "eve@example.com", "name": "Eve", "password": PASSWORD}
        )
    ).ok(201)["id"]
    refused = await page.request.post(
        f"{cloud.url}/tasks/{other['id']}",
        form={"csrf_token": token, "assignee_id": str(stranger)},
        headers={"Accept": "application/json"},
    )
    assert refused.status == 422
    assert (await refused.json())["errors"][0]["field"] == "assignee_id"
    assert (await cloud.api.get(f"/tasks/{other['id']}")).ok()["assignee_id"] == mallory


async def test_search_is_literal_and_works_without_javascript(
    cloud: Cloud, page: Page, browser: Browser
) -> None:
    wanted = await make_task(cloud, EVIL_TITLE)
    await make_task(cloud, "Fix 1000 of them")  # '100%' as a LIKE pattern would match it
    described = await make_task(cloud, "Quiet title", description="see the cart code")
    await admin_page(page, cloud)
    await board(page, cloud)

    # '/' jumps to the search box; typing there is text, not shortcuts ('c' is "new task").
    await page.keyboard.press("/")
    search = page.get_by_label("Search")
    await expect(search).to_be_focused()
    await page.keyboard.type("cart")
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{cloud.url}/projects/{cloud.project_id}?q=cart")
    assert await titles(page) == [f"#{described['id']} Quiet title"]

    await search.fill("100%")
    await search.press("Enter")
    await expect(page.locator(".card")).to_have_count(1)
    assert await titles(page) == [f"#{wanted['id']} {EVIL_TITLE}"]
    await expect(search).to_have_value("100%")
    # A search is echoed back as text, in the box and the live URLs, never as markup.
    crafted = '"><img src=x onerror="window.__xss=\'q\'">'
    await search.fill(crafted)
    await search.press("Enter")
    await expect(page.locator(".card")).to_have_count(0)
    await expect(search).to_have_value(crafted)
    assert await page.locator("main img").count() == 0
    await no_script_ran(page)

    # The same without JavaScript: a plain GET form, the server filters.
    context = await browser.new_context(java_script_enabled=False)
    try:
        plain = await context.new_page()
        await admin_page(plain, cloud)
        await plain.goto(f"{cloud.url}/projects/{cloud.project_id}")
        await plain.get_by_label("Search").fill("100%")
        await plain.get_by_role("button", name="Filter").click()
        await expect(plain.locator(".card .title")).to_have_text([f"#{wanted['id']} {EVIL_TITLE}"])
        await plain.get_by_label("Search").fill(f"#{described['id']}")  # a task's number
        await plain.get_by_role("button", name="Filter").click()
        await expect(plain.locator(".card .title")).to_have_text(
            [f"#{described['id']} Quiet title"]
        )
    finally:
        await context.close()


async def test_shortcuts_help_new_task_and_moving_through_cards(cloud: Cloud, page: Page) -> None:
    first = await make_task(cloud, "First", priority=10)
    second = await make_task(cloud, "Second")
    await admin_page(page, cloud)
    await board(page, cloud)

    await page.keyboard.press("?")
    help_ = page.get_by_role("dialog", name="Keyboard shortcuts")
    await expect(help_).to_be_visible()
    await expect(help_).to_contain_text("New task")
    await page.keyboard.press("Escape")
    await expect(help_).to_be_hidden()

    # j / k move through the cards in the board's order; Enter opens one.
    await page.keyboard.press("j")
    await expect(page.locator(f"#task-{first['id']} .title")).to_be_focused()
    await page.keyboard.press("j")
    await expect(page.locator(f"#task-{second['id']} .title")).to_be_focused()
    await page.keyboard.press("k")
    await expect(page.locator(f"#task-{first['id']} .title")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{cloud.url}/tasks/{first['id']}")

    # c: a new task, its title ready to type in.
    await board(page, cloud)
    await page.keyboard.press("c")
    await expect(page).to_have_url(
        f"{cloud.url}/projects/{cloud.project_id}/backlog#new-task-title"
    )
    title = page.locator("#new-task").get_by_label("Title")
    await expect(title).to_be_focused()
    await page.keyboard.type("Typed after c")
    await page.get_by_role("button", name="Create task").click()
    await expect(page.locator("p.flash")).to_contain_text("created (backlog)")


async def status_moves(cloud: Cloud, task_id: int) -> list[str]:
    events = (await cloud.api.get(f"/tasks/{task_id}/events", params={"kind": "status"})).ok()
    return [e["to_status"] for e in events["items"]]


async def test_bulk_moves_report_what_could_not_move_and_cancel_asks_first(
    cloud: Cloud, page: Page
) -> None:
    running = await make_task(cloud, "Running job", status="queued")
    worker = await Worker.create(cloud.api, cloud.project_id, "box")
    claim = (await worker.claim()).ok()
    (await worker.status(claim, "running")).ok()
    a, b, c = [await make_task(cloud, name) for name in ("Alpha", "Beta", "Gamma")]
    await admin_page(page, cloud)
    await board(page, cloud)
    bar = page.locator("#bulk")
    await expect(bar).to_be_hidden()  # nothing selected yet

    # A box, then shift-click another: the range between them; the running task too.
    await page.get_by_label(f"Select #{a['id']}").click()
    await page.get_by_label(f"Select #{c['id']}").click(modifiers=["Shift"])
    await page.get_by_label(f"Select #{running['id']}").click()
    await expect(page.get_by_label(f"Select #{b['id']}")).to_be_checked()
    await expect(page.locator("#selected-count")).to_have_text("4 selected")
    await bar.get_by_label("Move to").select_option(label="Queued")
    await bar.get_by_role("button", name="Move selected").click()
    await expect(page.locator("p.flash")).to_have_text(
        f"Moved 3 tasks to queued: #{a['id']}, #{b['id']}, #{c['id']}. "
        f"Not moved: #{running['id']}: a running task cannot move there."
    )
    for task in (a, b, c):
        assert await status_moves(cloud, task["id"]) == ["queued"]  # each moved once
    assert await status_of(cloud, running["id"]) == "running"
    await expect(column(page, "queued").locator(".card")).to_have_count(3)

    # By keyboard: j to a card, x to select it, m then 3 (cancelled): a page asks first.
    await expect(page.locator("body")).to_have_attribute("data-live", "on")
    await page.keyboard.press("j")
    await page.keyboard.press("x")
    await page.keyboard.press("j")
    await page.keyboard.press("x")
    await expect(page.locator("#selected-count")).to_have_text("2 selected")
    await page.keyboard.press("m")
    await expect(page.get_by_role("menu", name="Move to")).to_be_visible()
    await page.keyboard.press("3")
    await expect(page.get_by_role("heading")).to_have_text("Move 2 tasks to cancelled?")
    await expect(page.locator("#confirm-bulk li")).to_have_text(
        [f"queued #{a['id']} Alpha", f"queued #{b['id']} Beta"]
    )
    await page.get_by_role("link", name="Keep them").click()
    await expect(page).to_have_url(f"{cloud.url}/projects/{cloud.project_id}")
    assert await status_of(cloud, a["id"]) == "queued"

    # Again, confirmed: the running one too, whose worker is told at once.
    await expect(page.locator("body")).to_have_attribute("data-live", "on")
    for task in (a, running):
        await page.get_by_label(f"Select #{task['id']}").check()
    await page.keyboard.press("m")
    await page.keyboard.press("3")
    await page.get_by_role("button", name="Cancel 2 tasks").click()
    await expect(page.locator("p.flash")).to_contain_text(
        f"Moved 2 tasks to cancelled: #{a['id']}, #{running['id']}."
    )
    assert [await status_of(cloud, t["id"]) for t in (a, b, running)] == [
        "cancelled",
        "queued",
        "cancelled",
    ]
    assert (await worker.heartbeat(claim)).ok()["cancel"] is True


async def test_bulk_moves_only_this_projects_tasks_and_never_for_a_viewer(
    cloud: Cloud, page: Page
) -> None:
    mine = await make_task(cloud, "Here")
    org_id = (await cloud.api.get(f"/projects/{cloud.project_id}")).ok()["org_id"]
    other = (
        await cloud.api.post("/projects", {"org_id": org_id, "name": "Other", "slug": "other"})
    ).ok(201)
    elsewhere = (await cloud.api.post(f"/projects/{other['id']}/tasks", {"title": "There"})).ok(201)
    vera = await add_member(cloud, "vera@example.com", "Vera")
    (await cloud.api.patch(f"/orgs/{org_id}/members/{vera}", {"role": "viewer"})).ok()

    await admin_page(page, cloud)
    await board(page, cloud)
    token = await page.locator('#bulk input[name="csrf_token"]').get_attribute("value")
    assert token
    url = f"{cloud.url}/projects/{cloud.project_id}/bulk"
    form = f"csrf_token={token}&to=queued&task={mine['id']}&task={elsewhere['id']}"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    moved = await page.request.post(url, data=form, headers=headers)
    assert f"#{elsewhere['id']}: not a task of this project" in await moved.text()
    # Another project's task in the form is refused by name, even though the admin could
    # move it on its own board.
    assert await status_of(cloud, mine["id"]) == "queued"
    assert await status_of(cloud, elsewhere["id"]) == "backlog"
    await page.goto(f"{cloud.url}/projects/{cloud.project_id}")

    # A viewer: refused as a whole (403), nothing moves.
    (await cloud.api.post(f"/tasks/{mine['id']}/cancel", {})).ok()
    viewer = await page.context.browser.new_context()  # type: ignore[union-attr]
    try:
        vpage = await viewer.new_page()
        await sign_in(vpage, cloud.url, "vera@example.com", PASSWORD)
        await vpage.goto(f"{cloud.url}/projects/{cloud.project_id}")
        assert await vpage.locator("#bulk, .card input.select").count() == 0
        vtoken = await vpage.locator('input[name="csrf_token"]').first.get_attribute("value")
        refused = await vpage.request.post(
            url,
            data=f"csrf_token={vtoken}&to=queued&task={mine['id']}",
            headers=headers,
            max_redirects=0,
        )
        assert refused.status == 403
    finally:
        await viewer.close()
    assert await status_of(cloud, mine["id"]) == "cancelled"
