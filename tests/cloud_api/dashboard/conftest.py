"""Fixtures for browser tests of the dashboard: a real headless Chromium driven by Playwright.

The browser is the Debian ``chromium`` package (``scripts/test.sh`` installs it), never a
Playwright download: ``playwright install`` is not needed and not used. Set ``LOCUS_CHROMIUM``
to use another Chromium/Chrome binary.

Tests are ``async def`` and the server under test runs in the test's own event loop, so these
fixtures use ``playwright.async_api`` — the sync API would block that loop (and refuses to run
inside one anyway). Everything is function-scoped, like the event loop: starting Playwright and
Chromium takes well under a second here, so a fresh browser per test costs little and keeps
tests independent.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.support.shortpath import short_tmp

REPO = Path(__file__).resolve().parents[3]
TIMEOUT_MS = 15_000

# Assertions (expect(...).to_have_text etc.) wait as long as page actions do, not the 5 s default:
# the server under test shares the event loop with the test and a busy CI machine is slow.
expect.set_options(timeout=TIMEOUT_MS)


def chromium_path() -> str:
    """The Chromium binary: ``$LOCUS_CHROMIUM``, else ``chromium`` on PATH, else the Debian path."""
    configured = os.environ.get("LOCUS_CHROMIUM")
    if configured:
        if not os.access(configured, os.X_OK):
            pytest.fail(f"LOCUS_CHROMIUM={configured!r} is not an executable file")
        return configured
    for candidate in (shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        "no Chromium found for the dashboard browser tests: run ./scripts/test.sh (it installs "
        "the Debian 'chromium' package) or set LOCUS_CHROMIUM to a Chromium binary"
    )


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A headless Chromium, closed after the test."""
    executable = chromium_path()
    # Chromium's singleton socket goes under its $TMPDIR: a short one, whatever the caller's is
    # (AF_UNIX paths are limited to ~107 bytes).
    with short_tmp() as tmp:
        async with launched(executable, tmp) as browser:
            yield browser


@contextlib.asynccontextmanager
async def launched(executable: str, tmp: Path) -> AsyncIterator[Browser]:
    """Chromium at ``executable``, headless, its temp files in ``tmp`` (also used by the
    VS Code workbench test, tests/editors/test_vscode_workbench.py)."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable,
            env={**os.environ, "TMPDIR": str(tmp)},
            headless=True,
            # No Chromium sandbox: it cannot run as root at all, and as an unprivileged user it
            # needs user namespaces, which containers and Ubuntu's AppArmor often forbid.
            # Playwright then adds --no-sandbox itself (and --disable-dev-shm-usage always, so
            # a small /dev/shm in a container does not crash the renderer). The pages are our
            # own, served from 127.0.0.1.
            chromium_sandbox=False,
            timeout=TIMEOUT_MS,
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A page in a fresh browser context (no cookies or storage shared between tests)."""
    context = await browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    try:
        yield await context.new_page()
    finally:
        await context.close()


@pytest.fixture
def artifacts_dir() -> Path:
    """Where tests put screenshots and the like for CI to collect.

    ``$LOCUS_TEST_ARTIFACTS`` if set, else ``build/test-artifacts/dashboard`` in the repository
    (``build/`` is git-ignored). Created if missing; shared by all tests, so name files after
    the test.
    """
    configured = os.environ.get("LOCUS_TEST_ARTIFACTS")
    path = Path(configured) if configured else REPO / "build" / "test-artifacts" / "dashboard"
    path.mkdir(parents=True, exist_ok=True)
    return path


async def sign_in(page: Page, base_url: str, email: str, password: str) -> None:
    """Sign in through the form, as a person would, and wait for the projects page."""
    await page.goto(f"{base_url}/login")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Your projects")).to_be_visible()
