"""The dashboard in a real headless Chromium, against a real cloud (SQLite): sign-in, the
plan → queue → work → review → done trip with live updates, drag and drop, cancellation
reaching the worker, and the security promises (escaping, CSRF, roles, 404s)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.cloud_api.dashboard.conftest import sign_in
from tests.conftest import Cloud
from tests.support.client import Worker, fence, new_user

#: Most tests run on SQLite; the whole trip also runs on PostgreSQL (the board's and task
#: page's reads are the API's, on either engine).
sqlite_only = pytest.mark.parametrize("template", ["sqlite"], indirect=True)

PASSWORD = "correct horse battery"
PATCH = """\
diff --git a/shop/cart.py b/shop/cart.py
index 1111111..2222222 100644
--- a/shop/cart.py
+++ b/shop/cart.py
@@ -1,3 +1,3 @@ class Cart:
 def total(items):
-    return sum(items)
+    return round(sum(items), 2)  # "<script>window.__xss = 'diff'</script>"
 # end
"""
EVIDENCE = (
    '{"command": "pytest -q", "reason": "pyproject.toml", "exit_code": 0, "duration": 1.5,'
    ' "output_tail": "3 passed", "passed": true}'
)
USAGE = {
    "input_tokens": 1200,
    "output_tokens": 340,
    "cache_read_tokens": 9000,
    "cache_write_tokens": 800,
    "turns": 4,
    "cost_usd": 0.0421,
}


async def admin_page(page: Page, cloud: Cloud) -> None:
    first = cloud.first_start
    await sign_in(page, cloud.url, first.email, first.password)


async def make_task(cloud: Cloud, title: str, **extra: Any) -> dict[str, Any]:
    body = {"title": title, **extra}
    task: dict[str, Any] = (await cloud.api.post(f"/projects/{cloud.project_id}/tasks", body)).ok(
        201
    )
    return task


async def status_of(cloud: Cloud, task_id: int) -> str:
    status: str = (await cloud.api.get(f"/tasks/{task_id}")).ok()["status"]
    return status


def column(page: Page, status: str) -> Any:
    """The board column that shows tasks of ``status`` (several statuses share a column)."""
    return page.locator(f'.column[data-statuses~="{status}"]')


async def mark_page(page: Page) -> None:
    """A flag that only survives if the page is never reloaded."""
    await page.evaluate("window.__noReload = true")


async def assert_not_reloaded(page: Page) -> None:
    assert await page.evaluate("window.__noReload === true"), "the page was reloaded"


@sqlite_only
async def test_sign_in_sets_a_safe_cookie_and_sign_out_revokes_it(cloud: Cloud, page: Page) -> None:
    first = cloud.first_start
    await page.goto(f"{cloud.url}/projects/{cloud.project_id}")
    await expect(page).to_have_url(f"{cloud.url}/login?next=/projects/{cloud.project_id}")
    await page.get_by_label("E-mail").fill(first.email)
    await page.get_by_label("Password").fill("wrong password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("Wrong e-mail or password.")

    await page.get_by_label("Password").fill(first.password)
    await page.get_by_role("button", name="Sign in").click()
    # Back where the visitor wanted to go.
    await expect(page).to_have_url(f"{cloud.url}/projects/{cloud.project_id}")
    cookies = {c["name"]: c for c in await page.context.cookies()}
    session = cookies["locus_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"
    assert session["secure"] is False  # plain HTTP on loopback; Secure when served over HTTPS
    assert (await cloud.api.as_(session["value"]).get("/me")).status == 200

    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(f"{cloud.url}/login")
    assert (await cloud.api.as_(session["value"]).get("/me")).status == 401


async def test_plan_queue_work_review_and_approve_with_live_updates(
    cloud: Cloud, page: Page, browser: Any, artifacts_dir: Path
) -> None:
    await admin_page(page, cloud)

    # A project, from the projects page.
    await page.get_by_label("Name").first.fill("Shop")
    await page.get_by_label("Slug").first.fill("shop")
    await page.get_by_label("Git remotes it serves").fill("git@github.com:acme/shop.git")
    await page.get_by_role("button", name="Create project").click()
    await expect(page.locator("p.flash")).to_contain_text("Project Shop created")
    project_id = int(page.url.rsplit("/", 1)[1])

    # A sprint and a task in it, from the backlog page.
    await page.get_by_role("link", name="Backlog & sprints").click()
    await page.locator("#new-sprint").get_by_label("Name").fill("Sprint 1")
    await page.locator("#new-sprint").get_by_label("Goal").fill("Make the cart right")
    await page.get_by_role("button", name="Plan sprint").click()
    await expect(page.locator("p.flash")).to_contain_text("Sprint Sprint 1 planned")
    new_task = page.locator("#new-task")
    await new_task.get_by_label("Title").fill("Round the cart total")
    await new_task.get_by_label("Description").fill("Totals show **cents**:\n\n- round to 2")
    await new_task.get_by_label("Labels").fill("cart, bug")
    await new_task.get_by_label("Sprint").select_option(label="Sprint 1")
    await page.get_by_role("button", name="Create task").click()
    await expect(page.locator("p.flash")).to_contain_text("created (backlog)")
    await page.get_by_role("button", name="Start sprint").click()
    await expect(page.locator(".sprint .badge").first).to_have_text("active")
    await page.get_by_role("button", name="Queue 1 backlog task").click()
    await expect(page.locator("p.flash")).to_contain_text("1 task of Sprint 1 queued")

    tasks = (await cloud.api.get(f"/projects/{project_id}/tasks")).ok()["items"]
    assert [(t["title"], t["status"], t["labels"]) for t in tasks] == [
        ("Round the cart total", "queued", ["cart", "bug"])
    ]
    task_id = tasks[0]["id"]

    # The board, open before the worker acts; a second page on the task.
    await page.get_by_role("link", name="Board").click()
    await expect(column(page, "queued").locator(f"#task-{task_id}")).to_be_visible()
    await mark_page(page)
    task_page = await page.context.new_page()
    await task_page.goto(f"{cloud.url}/tasks/{task_id}")
    await expect(task_page.locator(".description strong")).to_have_text("cents")
    await mark_page(task_page)
    await expect(page.locator("body")).to_have_attribute("data-live", "on")
    await expect(task_page.locator("body")).to_have_attribute("data-live", "on")

    worker = await Worker.create(cloud.api, project_id, "laptop", ["https://github.com/acme/shop"])
    claim = (await worker.claim()).ok()
    assert claim["task"]["id"] == task_id
    await expect(
        column(page, "claimed").locator(f'#task-{task_id}[data-status="claimed"]')
    ).to_be_visible()
    await expect(column(page, "claimed").locator(".count")).to_have_text("1")
    await expect(column(page, "queued").locator(".count")).to_have_text("0")
    await expect(page.locator(f"#task-{task_id} .worker")).to_have_text("laptop")

    (await worker.status(claim, "running")).ok()
    await expect(
        column(page, "running").locator(f'#task-{task_id}[data-status="running"]')
    ).to_be_visible()
    await expect(task_page.locator("#task-status")).to_have_text("running")
    log = f"/worker/tasks/{task_id}/logs"
    for seq, text in enumerate(["reading shop/cart.py\n", "running pytest -q\n"], 1):
        (await worker.api.post(log, {**fence(claim), "seq": seq, "text": text})).ok()
    await expect(task_page.locator("#log")).to_contain_text("running pytest -q")

    artifacts = f"/worker/tasks/{task_id}/artifacts"
    patch = {**fence(claim), "kind": "patch", "media_type": "text/x-diff", "content": PATCH}
    (await worker.api.post(artifacts, patch)).ok(201)
    evidence = {**fence(claim), "kind": "evidence", "content": EVIDENCE}
    (await worker.api.post(artifacts, evidence)).ok(201)
    summary = "Rounded the total to cents."
    (await worker.status(claim, "awaiting_review", summary=summary, usage=USAGE)).ok()
    (await worker.status(claim, "verification")).ok()
    await expect(
        column(page, "verification").locator(f'#task-{task_id}[data-status="verification"]')
    ).to_be_visible()

    # The task page, without a reload: the diff per file and hunk, coloured; the rest.
    await expect(task_page.locator("#task-status")).to_have_text("verification")
    diff = task_page.locator("#diff")
    await expect(diff.locator(".path")).to_have_text("shop/cart.py")
    await expect(diff.locator("table.hunk thead")).to_contain_text("@@ -1,3 +1,3 @@ class Cart:")
    await expect(diff.locator("tr.added .code")).to_contain_text("return round(sum(items), 2)")
    await expect(diff.locator("tr.removed .code")).to_contain_text("return sum(items)")
    await expect(diff.locator("tr.added .code .k").first).to_have_text("return")  # coloured
    await expect(task_page.locator(".summary")).to_contain_text(summary)
    await expect(task_page.locator(".evidence")).to_contain_text("passed")
    await expect(task_page.locator(".evidence")).to_contain_text("pytest -q")
    await expect(task_page.locator(".evidence pre")).to_have_text("3 passed")
    await expect(task_page.locator(".usage")).to_contain_text("$0.0421")
    await expect(task_page.locator(".usage")).to_contain_text("9,000")
    await expect(task_page.locator(".attempts tbody tr")).to_have_count(1)
    await assert_not_reloaded(task_page)
    await assert_not_reloaded(page)
    await page.screenshot(path=str(artifacts_dir / "trip-board.png"), full_page=True)
    await task_page.screenshot(path=str(artifacts_dir / "trip-task.png"), full_page=True)

    # Request changes: the feedback goes to the next attempt.
    await task_page.get_by_label("What should change?").fill("Use Decimal, not round().")
    await task_page.get_by_role("button", name="Request changes").click()
    await expect(task_page.locator("p.flash")).to_contain_text("Changes requested")
    await expect(task_page.locator("#task-status")).to_have_text("queued")
    await expect(task_page.locator("p.feedback")).to_contain_text("Use Decimal, not round().")
    again = (await worker.claim()).ok()
    assert again["attempt"] == 2
    assert again["task"]["feedback"] == "Use Decimal, not round()."
    (await worker.status(again, "running")).ok()
    (await worker.status(again, "awaiting_review", summary="Decimal now.", usage=USAGE)).ok()
    (await worker.status(again, "verification")).ok()
    await expect(task_page.locator("#task-status")).to_have_text("verification")
    await expect(task_page.locator(".attempts tbody tr")).to_have_count(2)
    await expect(task_page.locator(".usage")).to_contain_text("$0.0842")  # both attempts

    await task_page.get_by_role("button", name="Approve").click()
    await expect(task_page.locator("p.flash")).to_contain_text("Approved")
    await expect(task_page.locator("#task-status")).to_have_text("done")
    await expect(column(page, "done").locator(f"#task-{task_id}")).to_be_visible()
    assert await status_of(cloud, task_id) == "done"


@sqlite_only
async def test_cancel_on_the_task_page_reaches_the_worker(cloud: Cloud, page: Page) -> None:
    task = await make_task(cloud, "Long job", status="queued")
    worker = await Worker.create(cloud.api, cloud.project_id, "box")
    claim = (await worker.claim()).ok()
    (await worker.status(claim, "running")).ok()
    assert (await worker.heartbeat(claim)).ok()["cancel"] is False

    await admin_page(page, cloud)
    await page.goto(f"{cloud.url}/tasks/{task['id']}")
    # Cancel asks first (a page: it works without JavaScript); keeping it changes nothing.
    await page.get_by_role("link", name="Cancel…").click()
    await expect(page.get_by_role("heading")).to_have_text(f"Cancel task #{task['id']}?")
    await expect(page.locator("#confirm-cancel")).to_contain_text("told to stop")
    await page.get_by_role("link", name="Keep it").click()
    await expect(page.locator("#task-status")).to_have_text("running")
    assert (await worker.heartbeat(claim)).ok()["cancel"] is False
    await page.get_by_role("link", name="Cancel…").click()
    await page.get_by_label("Why?").fill("wrong approach")
    await page.get_by_role("button", name="Cancel the task").click()
    await expect(page.locator("#task-status")).to_have_text("cancelled")
    await expect(page.locator(".timeline")).to_contain_text("wrong approach")
    beat = (await worker.heartbeat(claim)).ok()
    assert beat["cancel"] is True
    assert beat["status"] == "cancelled"
    signals = (await worker.api.get("/worker/signals")).ok()
    assert [s["task_id"] for s in signals["cancellations"]] == [task["id"]]


@sqlite_only
async def test_buttons_and_drag_move_cards_only_along_allowed_moves(
    cloud: Cloud, page: Page
) -> None:
    first = await make_task(cloud, "Drag me")
    second = await make_task(cloud, "Click me")
    await admin_page(page, cloud)
    await page.goto(f"{cloud.url}/projects/{cloud.project_id}")
    await expect(page.locator("body")).to_have_attribute("data-live", "on")

    # A backlog card offers what its state allows: queue and cancel, not approve.
    card = page.locator(f"#task-{second['id']}")
    await expect(card.locator(".moves > *")).to_have_text(["Queue", "Cancel…"])
    await card.get_by_role("button", name="Queue").click()
    await expect(column(page, "queued").locator(f"#task-{second['id']}")).to_be_visible()

    await mark_page(page)
    # Dropping on a column with no allowed move does nothing.
    await page.locator(f"#task-{first['id']}").drag_to(column(page, "done"))
    await page.locator(f"#task-{first['id']}").drag_to(column(page, "queued"))
    await expect(column(page, "queued").locator(f"#task-{first['id']}")).to_be_visible()
    await assert_not_reloaded(page)
    assert await status_of(cloud, first["id"]) == "queued"
    assert [e["to_status"] for e in await _status_events(cloud, first["id"])] == ["queued"]


async def _status_events(cloud: Cloud, task_id: int) -> list[dict[str, Any]]:
    page = (await cloud.api.get(f"/tasks/{task_id}/events", params={"kind": "status"})).ok()
    items: list[dict[str, Any]] = page["items"]
    return items


@sqlite_only
async def test_filters_narrow_the_board(cloud: Cloud, page: Page) -> None:
    sprint = (await cloud.api.post(f"/projects/{cloud.project_id}/sprints", {"name": "S1"})).ok(201)
    await make_task(cloud, "In sprint", sprint_id=sprint["id"], labels=["ui"])
    await make_task(cloud, "Outside", labels=["api"])
    await admin_page(page, cloud)
    await page.goto(f"{cloud.url}/projects/{cloud.project_id}")
    await expect(page.locator(".card")).to_have_count(2)
    await page.get_by_label("Sprint").select_option(label="S1 (planned)")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator(".card .title")).to_have_text(["#1 In sprint"])
    await page.goto(f"{cloud.url}/projects/{cloud.project_id}?label=api")
    await expect(page.locator(".card .title")).to_have_text(["#2 Outside"])
    await expect(column(page, "backlog").locator(".count")).to_have_text("1")

    # The project is a filter too: another project's board, keeping the label.
    org_id = (await cloud.api.get(f"/projects/{cloud.project_id}")).ok()["org_id"]
    other = (
        await cloud.api.post("/projects", {"org_id": org_id, "name": "Other", "slug": "other"})
    ).ok(201)
    body = {"title": "Elsewhere", "labels": ["api"]}
    (await cloud.api.post(f"/projects/{other['id']}/tasks", body)).ok(201)
    await page.reload()
    await page.get_by_role("combobox", name="Project").select_option(label="Other")
    await page.get_by_role("button", name="Filter").click()
    await expect(page).to_have_url(f"{cloud.url}/projects/{other['id']}?label=api")
    await expect(page.locator(".card .title")).to_have_text(["#3 Elsewhere"])
    # Live, the filters hold: a task that loses the label leaves this board, one that gains
    # it arrives.
    await expect(page.locator("body")).to_have_attribute("data-live", "on")
    (await cloud.api.patch("/tasks/3", {"labels": ["ui"]})).ok()
    await expect(page.locator(".card")).to_have_count(0)
    await expect(column(page, "backlog").locator(".count")).to_have_text("0")
    new: dict[str, Any] = {"title": "New here", "labels": ["api"], "priority": 9}
    (await cloud.api.post(f"/projects/{other['id']}/tasks", new)).ok(201)
    await expect(page.locator(".card .title")).to_have_text(["#4 New here"])
    await expect(column(page, "backlog").locator(".count")).to_have_text("1")
    for title, priority in (("Top", 20), ("Low", 1)):  # placed in the board's order
        new = {"title": title, "labels": ["api"], "priority": priority}
        (await cloud.api.post(f"/projects/{other['id']}/tasks", new)).ok(201)
    await expect(page.locator(".card .title")).to_have_text(["#5 Top", "#4 New here", "#6 Low"])


@sqlite_only
async def test_user_text_and_diffs_render_as_text(cloud: Cloud, page: Page) -> None:
    title = "<script>window.__xss = 'title'</script><img src=x onerror=\"window.__xss='img'\">"
    description = "<img src=x onerror=\"window.__xss='md'\"> [click](javascript:window.__xss=1)"
    task = await make_task(cloud, title, description=description, status="queued")
    worker = await Worker.create(cloud.api, cloud.project_id, "box")
    claim = (await worker.claim()).ok()
    (await worker.status(claim, "running")).ok()
    content = PATCH.replace("# end", "# <img src=x onerror=\"window.__xss='diff'\">")
    body = {**fence(claim), "kind": "patch", "content": content}
    (await worker.api.post(f"/worker/tasks/{task['id']}/artifacts", body)).ok(201)
    log = {**fence(claim), "seq": 1, "text": "<script>window.__xss='log'</script>"}
    (await worker.api.post(f"/worker/tasks/{task['id']}/logs", log)).ok()

    await admin_page(page, cloud)
    await page.goto(f"{cloud.url}/projects/{cloud.project_id}")
    await expect(page.locator(f"#task-{task['id']} .title")).to_have_text(f"#{task['id']} {title}")
    await page.goto(f"{cloud.url}/tasks/{task['id']}")
    await expect(page.locator("#task-title")).to_have_text(title)
    await expect(page.locator(".description")).to_contain_text("<img src=x onerror=")
    await expect(page.locator("#diff tr.context .code").last).to_contain_text("<img src=x")
    await expect(page.locator("#log pre")).to_have_text("<script>window.__xss='log'</script>")
    # Live: a log line arriving now is text too.
    log2 = {**fence(claim), "seq": 2, "text": "<img src=x onerror=\"window.__xss='live'\">"}
    (await worker.api.post(f"/worker/tasks/{task['id']}/logs", log2)).ok()
    await expect(page.locator("#log")).to_contain_text("window.__xss='live'")
    assert await page.locator("main img").count() == 0
    assert await page.locator("main script").count() == 0
    assert await page.locator('a[href^="javascript"]').count() == 0
    assert await page.evaluate("window.__xss") is None


@sqlite_only
async def test_a_form_without_the_csrf_token_is_refused(cloud: Cloud, page: Page) -> None:
    task = await make_task(cloud, "Guarded")
    await admin_page(page, cloud)
    await page.goto(f"{cloud.url}/tasks/{task['id']}")
    # The page's own form works (it carries the token)…
    token = await page.locator('input[name="csrf_token"]').first.get_attribute("value")
    assert token
    # …a post without it, with a wrong one, or from another site is refused.
    url = f"{cloud.url}/tasks/{task['id']}/queue"
    attempts: list[tuple[dict[str, str | float | bool], dict[str, str]]] = [
        ({}, {}),
        ({"csrf_token": "0" * 64}, {}),
        ({"csrf_token": token}, {"Origin": "http://evil.example"}),
    ]
    for form, headers in attempts:
        refused = await page.request.post(url, form=form, headers=headers, max_redirects=0)
        assert refused.status == 403, await refused.text()
        assert "Refused" in await refused.text()
    assert await status_of(cloud, task["id"]) == "backlog"
    accepted = await page.request.post(url, form={"csrf_token": token}, max_redirects=0)
    assert accepted.status == 303
    assert await status_of(cloud, task["id"]) == "queued"


@sqlite_only
async def test_a_viewer_sees_no_actions_and_the_server_refuses_them(
    cloud: Cloud, page: Page
) -> None:
    task = await make_task(cloud, "Look, don't touch")
    viewer = await new_user(cloud.api, "viewer@example.com", PASSWORD)
    org_id = (await cloud.api.get(f"/projects/{cloud.project_id}")).ok()["org_id"]
    body = {"email": "viewer@example.com", "role": "viewer"}
    (await cloud.api.post(f"/orgs/{org_id}/members", body)).ok(201)
    assert (await viewer.get(f"/projects/{cloud.project_id}")).status == 200

    await sign_in(page, cloud.url, "viewer@example.com", PASSWORD)
    await page.goto(f"{cloud.url}/projects/{cloud.project_id}")
    await expect(page.locator(f"#task-{task['id']}")).to_be_visible()
    await expect(page.locator(".role")).to_have_text("viewer")
    assert await page.locator(".card button, #act, .card[draggable]").count() == 0
    assert await page.get_by_role("link", name="New task").count() == 0
    await page.goto(f"{cloud.url}/tasks/{task['id']}")
    await expect(page.locator("#task-title")).to_have_text("Look, don't touch")
    assert await page.locator("section.actions, section.comment, details.edit").count() == 0
    await page.goto(f"{cloud.url}/projects/{cloud.project_id}/backlog")
    assert await page.locator("main form").count() == 0

    # The server refuses anyway, even with a valid token (from the sign-out form).
    token = await page.locator('input[name="csrf_token"]').first.get_attribute("value")
    assert token
    for path in (f"/tasks/{task['id']}/queue", f"/tasks/{task['id']}/cancel"):
        refused = await page.request.post(
            cloud.url + path, form={"csrf_token": token}, max_redirects=0
        )
        assert refused.status == 403
        assert "does not allow" in await refused.text()
    assert await status_of(cloud, task["id"]) == "backlog"


@sqlite_only
async def test_someone_elses_project_is_a_404_page(cloud: Cloud, page: Page) -> None:
    task = await make_task(cloud, "Private")
    await new_user(cloud.api, "stranger@example.com", PASSWORD)
    await sign_in(page, cloud.url, "stranger@example.com", PASSWORD)
    for path in (
        f"/projects/{cloud.project_id}",
        f"/projects/{cloud.project_id}/settings",
        f"/tasks/{task['id']}",
        "/no/such/page",
    ):
        response = await page.goto(cloud.url + path)
        assert response is not None and response.status == 404
        await expect(page.locator(".status-code")).to_have_text("404")
        await expect(page.get_by_role("link", name="Your projects")).to_be_visible()
    assert "Private" not in await page.content()


@sqlite_only
async def test_worker_tokens_are_shown_once_and_revocable(cloud: Cloud, page: Page) -> None:
    await admin_page(page, cloud)
    await page.goto(f"{cloud.url}/projects/{cloud.project_id}/settings")
    await page.get_by_label("worker name").fill("ci-runner")
    await page.get_by_role("button", name="Create token").click()
    token = (await page.locator("#new-token").text_content() or "").strip()
    worker = cloud.api.as_(token)
    assert (await worker.post("/worker/register", {"host": "ci"})).status == 200

    await page.goto(f"{cloud.url}/projects/{cloud.project_id}/settings")
    assert await page.locator("#new-token").count() == 0
    assert token not in await page.content()
    row = page.locator("table.tokens tr", has_text="ci-runner")
    await row.get_by_role("button", name="Revoke").click()
    await expect(page.locator("table.tokens tr", has_text="ci-runner")).to_contain_text("revoked")
    assert (await worker.post("/worker/register", {"host": "ci"})).status == 401


@sqlite_only
async def test_members_roles_and_remotes_are_managed_in_settings(cloud: Cloud, page: Page) -> None:
    await new_user(cloud.api, "dev@example.com", PASSWORD)
    await admin_page(page, cloud)
    await page.goto(f"{cloud.url}/projects/{cloud.project_id}/settings")
    await page.get_by_label("e-mail", exact=True).fill("dev@example.com")
    await page.get_by_label("role", exact=True).select_option("viewer")
    await page.get_by_role("button", name="Add member").click()
    await expect(page.locator("p.flash")).to_contain_text("dev@example.com added as viewer")
    await page.get_by_label("role of dev@example.com").select_option("member")
    row = page.locator("table.members tr", has_text="dev@example.com")
    await row.get_by_role("button", name="Change").click()
    await expect(page.locator("p.flash")).to_contain_text("dev@example.com is now member")

    await page.get_by_label("Git remotes this project serves").fill(
        "https://github.com/acme/api.git\ngit@gitlab.com:acme/web.git"
    )
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("p.flash")).to_contain_text("saved")
    project = (await cloud.api.get(f"/projects/{cloud.project_id}")).ok()
    assert project["remotes"] == ["github.com/acme/api", "gitlab.com/acme/web"]
    # The form shows the stored fingerprints; saving it unchanged keeps them.
    await page.reload()
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("p.flash")).to_have_text("Project settings saved.")
    project = (await cloud.api.get(f"/projects/{cloud.project_id}")).ok()
    assert project["remotes"] == ["github.com/acme/api", "gitlab.com/acme/web"]

    # A bad value names the field and keeps the page.
    await page.get_by_label("Name", exact=True).fill("")
    await page.get_by_label("Name", exact=True).evaluate("el => el.removeAttribute('required')")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("p.flash.error")).to_contain_text("name")


@sqlite_only
async def test_backlog_orders_by_priority_and_plans_sprints(cloud: Cloud, page: Page) -> None:
    low = await make_task(cloud, "Low", priority=1)
    high = await make_task(cloud, "High", priority=5)
    sprint = (await cloud.api.post(f"/projects/{cloud.project_id}/sprints", {"name": "S9"})).ok(201)
    in_sprint = page.locator(f"#sprint-{sprint['id']}")
    await admin_page(page, cloud)
    await page.goto(f"{cloud.url}/projects/{cloud.project_id}/backlog")
    rows = page.locator("#backlog tbody tr")
    await expect(rows.locator("a")).to_have_text([f"#{high['id']} High", f"#{low['id']} Low"])
    await page.get_by_role("button", name=f"move #{low['id']} up").click()
    await expect(rows.locator("a")).to_have_text([f"#{low['id']} Low", f"#{high['id']} High"])
    assert (await cloud.api.get(f"/tasks/{low['id']}")).ok()["priority"] == 6

    await page.get_by_label(f"sprint of #{high['id']}").select_option(label="S9")
    await page.locator(f"#row-{high['id']}").get_by_role("button", name="Move", exact=True).click()
    await expect(in_sprint.locator("tbody a")).to_have_text([f"#{high['id']} High"])
    await page.get_by_role("button", name="Start sprint").click()
    await expect(in_sprint.locator("h2 .badge")).to_have_text("active")
    await page.get_by_role("button", name="Close sprint").click()
    await expect(page.locator("p.flash")).to_contain_text("closed")


@sqlite_only
async def test_workers_page_shows_who_is_online_and_what_they_hold(
    cloud: Cloud, page: Page
) -> None:
    task = await make_task(cloud, "Held", status="queued")
    worker = await Worker.create(
        cloud.api, cloud.project_id, "desk", ["https://github.com/acme/shop"]
    )
    claim = (await worker.claim()).ok()
    (await worker.status(claim, "running")).ok()
    await admin_page(page, cloud)
    await page.goto(f"{cloud.url}/projects/{cloud.project_id}/workers")
    row = page.locator(f"#worker-{worker.id}")
    await expect(row).to_contain_text("desk")
    await expect(row.locator(".badge")).to_have_text("online")
    await expect(row.get_by_role("link")).to_have_text(f"#{task['id']}")
    await expect(row).to_contain_text("1 / 1")
    await expect(row).to_contain_text("github.com/acme/shop")
    await expect(row).to_contain_text("s ago")


@sqlite_only
async def test_api_and_dashboard_errors_keep_their_formats(cloud: Cloud, page: Page) -> None:
    api = await page.request.get(f"{cloud.url}/api/v1/nope")
    assert api.status == 404
    assert api.headers["content-type"] == "application/problem+json"
    html = await page.goto(f"{cloud.url}/nope")
    assert html is not None and html.status == 404
    assert html.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in html.headers["content-security-policy"]
    await expect(page.locator("h1")).to_have_text("Not Found")


DOCS_PATCH = "\n".join(
    [
        "diff --git a/shop/cart.py b/shop/cart.py",
        "index 1111111..2222222 100644",
        "--- a/shop/cart.py",
        "+++ b/shop/cart.py",
        "@@ -1,8 +1,11 @@",
        "+from decimal import ROUND_HALF_UP, Decimal",
        "+",
        " ",
        " class Cart:",
        '     """Items and their prices, in euros."""',
        " ",
        "     def total(self) -> float:",
        "-        return sum(item.price for item in self.items)",
        "+        cents = sum(Decimal(str(item.price)) for item in self.items)",
        '+        return float(cents.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))',
        " ",
        "     # Discounts are applied by the checkout.",
        "diff --git a/tests/test_cart.py b/tests/test_cart.py",
        "index 3333333..4444444 100644",
        "--- a/tests/test_cart.py",
        "+++ b/tests/test_cart.py",
        "@@ -4,2 +4,6 @@ from shop.cart import Cart",
        " def test_total_of_nothing():",
        "     assert Cart([]).total() == 0",
        "+",
        "+",
        "+def test_total_rounds_to_cents():",
        "+    assert Cart([Item(0.1), Item(0.2)]).total() == 0.3",
        "",
    ]
)


@sqlite_only
async def test_screenshots_for_the_docs(cloud: Cloud, page: Page, artifacts_dir: Path) -> None:
    """A busy board (with people on the cards), a selection about to move, and a reviewed
    task. ``docs/screenshots/`` holds the current ones:
    ``LOCUS_TEST_ARTIFACTS=docs/screenshots pytest tests/cloud_api/dashboard -k screenshots``."""
    api, project = cloud.api, cloud.project_id
    sprint = (await api.post(f"/projects/{project}/sprints", {"name": "Checkout"})).ok(201)
    plan = [  # priorities: 300 P0 Urgent, 200 P1 High, 100 P2 Medium, 0 P3 Low
        ("Round the cart total to cents", ["cart", "bug"], 300),
        ("Show VAT on the invoice", ["invoice"], 100),
        ("Retry card payments once", ["payments"], 200),
        ("Remember the last shipping address", ["checkout"], 101),
        ("Explain an empty cart", ["cart", "ux"], 99),
        ("Log slow checkout requests", ["ops"], 0),
        ("Pick the receipt e-mail's currency", ["i18n"], 1),
        ("Translate the receipt e-mail", ["i18n"], 0),
        ("Drop the legacy coupon table", ["cleanup"], -1),
    ]
    ids = []
    description = (
        "Totals like `0.1 + 0.2` show as **0.30000000000000004** in the cart.\n\n"
        "- sum as `Decimal`\n- round half-up to cents\n- add a test"
    )
    for title, labels, priority in plan:
        body = {"title": title, "labels": labels, "priority": priority, "sprint_id": sprint["id"]}
        if priority == 300:
            body["description"] = description
        ids.append((await api.post(f"/projects/{project}/tasks", body)).ok(201)["id"])
    org_id = (await api.get(f"/projects/{project}")).ok()["org_id"]
    people = []
    for email, name in (("ada@example.com", "Ada Lovelace"), ("grace@example.com", "Grace Hopper")):
        body = {"email": email, "name": name, "password": PASSWORD}
        people.append((await api.post("/users", body)).ok(201)["id"])
        (await api.post(f"/orgs/{org_id}/members", {"email": email, "role": "member"})).ok(201)
    ada, grace = people
    for index, assignee, reviewer in (
        (0, ada, grace),
        (1, grace, ada),
        (2, ada, None),
        (7, grace, None),
    ):
        body = {"assignee_id": assignee, "reviewer_id": reviewer}
        (await api.patch(f"/tasks/{ids[index]}", body)).ok()
    for task_id in ids[:7]:
        (await api.post(f"/tasks/{task_id}/queue", {})).ok()
    laptop = await Worker.create(api, project, "ada-laptop")
    desk = await Worker.create(api, project, "build-box")
    reviewed = (await laptop.claim()).ok()
    (await laptop.status(reviewed, "running")).ok()
    task_id = reviewed["task"]["id"]
    for seq, text in enumerate(["reading shop/cart.py\n", "$ pytest -q\n", "3 passed\n"], 1):
        body = {**fence(reviewed), "seq": seq, "text": text}
        (await laptop.api.post(f"/worker/tasks/{task_id}/logs", body)).ok()
    artifacts = f"/worker/tasks/{task_id}/artifacts"
    body = {**fence(reviewed), "kind": "patch", "content": DOCS_PATCH}
    (await laptop.api.post(artifacts, body)).ok(201)
    (
        await laptop.api.post(
            artifacts, {**fence(reviewed), "kind": "evidence", "content": EVIDENCE}
        )
    ).ok(201)
    summary = (
        "Totals are summed as `Decimal` and rounded half-up to cents; a test covers 0.1 + 0.2."
    )
    (await laptop.status(reviewed, "awaiting_review", summary=summary, usage=USAGE)).ok()
    (await laptop.status(reviewed, "verification")).ok()
    running = (await desk.claim()).ok()
    (await desk.status(running, "running")).ok()
    (await laptop.claim()).ok()  # claimed, not yet running
    failed = (await desk.claim()).ok()
    (await desk.status(failed, "running")).ok()
    (await desk.status(failed, "failed", reason="verify command failed 3 times")).ok()
    asking = (await desk.claim()).ok()
    (await desk.status(asking, "running")).ok()
    question = "Receipts go to customers in several countries: EUR everywhere, or their own?"
    (await desk.status(asking, "needs_input", question=question)).ok()

    # The width the board is made for: every column on screen.
    await page.set_viewport_size({"width": 1400, "height": 900})
    await admin_page(page, cloud)
    await page.goto(f"{cloud.url}/projects/{project}")
    await expect(column(page, "verification").locator(".card")).to_have_count(2)
    await expect(page.locator("body")).to_have_attribute("data-live", "on")
    await page.screenshot(path=str(artifacts_dir / "board.png"))
    # Two backlog cards selected, the bulk bar and the move menu (m) open.
    for backlog_id in ids[7:]:
        await page.get_by_label(f"Select #{backlog_id}").check()
    await page.keyboard.press("m")
    await expect(page.get_by_role("menu", name="Move to")).to_be_visible()
    await page.screenshot(path=str(artifacts_dir / "board-select.png"))
    await page.keyboard.press("Escape")
    await page.goto(f"{cloud.url}/needs-you")
    await expect(page.locator("#waiting-needs_input li")).to_have_count(1)
    await page.screenshot(path=str(artifacts_dir / "needs-you.png"))
    await page.goto(f"{cloud.url}/tasks/{task_id}")
    await expect(page.locator("#diff .file")).to_have_count(2)
    await page.screenshot(path=str(artifacts_dir / "task.png"), full_page=True)


@sqlite_only
async def test_edit_a_task_and_a_sprint_and_answer_the_agent(cloud: Cloud, page: Page) -> None:
    sprint = (
        await cloud.api.post(f"/projects/{cloud.project_id}/sprints", {"name": "Old name"})
    ).ok(201)
    task = await make_task(cloud, "Vague title", status="queued")
    worker = await Worker.create(cloud.api, cloud.project_id, "box")
    claim = (await worker.claim()).ok()
    (await worker.status(claim, "running")).ok()
    (await worker.status(claim, "needs_input", question="Which currency?")).ok()

    await admin_page(page, cloud)
    await page.goto(f"{cloud.url}/tasks/{task['id']}")
    await expect(page.locator("#task-status")).to_have_text("needs input")
    await page.get_by_text("Edit task").click()
    await page.get_by_label("Title").fill("Show prices in EUR")
    await page.get_by_label("Labels").fill("money, ui")
    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(page.locator("#task-title")).to_have_text("Show prices in EUR")
    await expect(page.locator(".timeline")).to_contain_text(
        "renamed it to Show prices in EUR and set the labels to money, ui"
    )

    await expect(page.locator("section.actions")).to_contain_text("Which currency?")
    await page.locator("#answer").fill("Euros, two decimals.")
    await page.get_by_role("button", name="Answer and queue").click()
    await expect(page.locator("p.flash")).to_contain_text("Answered")
    again = (await worker.claim()).ok()
    assert again["task"]["feedback"] == "Euros, two decimals."
    assert again["task"]["labels"] == ["money", "ui"]

    await page.goto(f"{cloud.url}/projects/{cloud.project_id}/backlog")
    edit = page.locator(f"#sprint-{sprint['id']} details.edit-sprint")
    await edit.get_by_text("Edit sprint").click()
    await edit.get_by_label("Name").fill("Checkout")
    await edit.get_by_label("Starts").fill("2026-12-01")
    await edit.get_by_label("Ends").fill("2026-11-01")
    await edit.get_by_role("button", name="Save sprint").click()
    await expect(page.locator("p.flash.error")).to_contain_text("ends_on")
    await edit.get_by_text("Edit sprint").click()
    await edit.get_by_label("Name").fill("Checkout")
    await edit.get_by_label("Ends").fill("2026-12-14")
    await edit.get_by_role("button", name="Save sprint").click()
    await expect(page.locator(f"#sprint-{sprint['id']} h2")).to_contain_text("Checkout")
    saved = (await cloud.api.get(f"/sprints/{sprint['id']}")).ok()
    assert (saved["name"], saved["ends_on"]) == ("Checkout", "2026-12-14")
