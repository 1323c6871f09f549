"""The board shows predicted overlaps (conflict-aware dispatch), in a real Chromium: a card
whose predicted files overlap another held or queued task's says "may overlap #N: files",
and a file name (a worker's upload: attacker text) shows as text, never as markup. The
policy is set on the settings page; a task handed out despite an overlap says so on its page."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.cloud_api.dashboard.test_dashboard_browser import admin_page
from tests.cloud_api.dispatch.test_conflict_dispatch import overlap_events, setup
from tests.conftest import Cloud

pytestmark = pytest.mark.parametrize("template", ["sqlite"], indirect=True)

HOSTILE = "src/<img src=x onerror=alert(1)>parser.py"


async def test_cards_name_the_overlap_and_file_names_stay_text(cloud: Cloud, page: Page) -> None:
    s = await setup(cloud, "avoid", parser=(HOSTILE, "src/lexer.py"))
    claim = (await s["one"].claim()).ok()
    assert claim["task"]["id"] == s["a"]
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    await admin_page(page, cloud)
    await page.goto(f"{cloud.url}/projects/{cloud.project_id}")
    b_note = page.locator(f"#task-{s['b']} .overlap")
    await expect(b_note).to_have_text(f"may overlap #{s['a']}: {HOSTILE}, src/lexer.py")
    await expect(page.locator(f"#task-{s['a']} .overlap")).to_contain_text(f"may overlap #{s['b']}")
    await expect(page.locator(f"#task-{s['c']} .overlap")).to_have_count(0)
    await expect(page.locator(".overlap img")).to_have_count(0)
    assert dialogs == []


async def test_the_policy_is_set_on_the_settings_page(cloud: Cloud, page: Page) -> None:
    s = await setup(cloud, None)
    await admin_page(page, cloud)
    await page.goto(f"{cloud.url}/projects/{cloud.project_id}/settings")
    select = page.locator('select[name="dispatch_overlap"]')
    await expect(select).to_have_value("avoid")
    await select.select_option("warn")
    await page.locator('form[action$="/settings"] button[type="submit"]').click()
    await expect(page.locator('select[name="dispatch_overlap"]')).to_have_value("warn")
    got = (await cloud.api.get(f"/projects/{cloud.project_id}")).ok()
    assert got["dispatch_overlap"] == "warn"
    # warn: B is handed out, and its page says what it may overlap.
    assert (await s["one"].claim()).ok()["task"]["id"] == s["a"]
    assert (await s["two"].claim()).ok()["task"]["id"] == s["b"]
    assert await overlap_events(cloud.api, s["b"])
    await page.goto(f"{cloud.url}/tasks/{s['b']}")
    await expect(page.locator("body")).to_contain_text(
        f"handed it out although it may overlap #{s['a']}: src/lexer.py, src/parser.py"
    )
