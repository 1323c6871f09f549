"""The browser chain works: Playwright drives headless Chromium against an aiohttp server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Page, expect

PAGE = """<!doctype html>
<html>
  <head><meta charset="utf-8"><title>smoke</title></head>
  <body>
    <p id="status">waiting</p>
    <button id="go" onclick="document.getElementById('status').textContent = 'clicked'">
      Go
    </button>
  </body>
</html>
"""


async def _index(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


@pytest.fixture
async def smoke_url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/", _index)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}/"
    finally:
        await runner.cleanup()


async def test_click_changes_text(page: Page, smoke_url: str, artifacts_dir: Path) -> None:
    await page.goto(smoke_url)
    status = page.locator("#status")
    await expect(status).to_have_text("waiting")
    await page.get_by_role("button", name="Go").click()
    await expect(status).to_have_text("clicked")
    await page.screenshot(path=artifacts_dir / "smoke_click.png")
    assert (artifacts_dir / "smoke_click.png").stat().st_size > 0
