"""The dashboard over plain HTTP (no browser): cookie flags, redirects that stay on this site,
security headers, and the API keeping its own error format."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest

from tests.conftest import Cloud
from tests.support.client import Worker, fence

pytestmark = pytest.mark.parametrize("template", ["sqlite"], indirect=True)


def jar_session() -> aiohttp.ClientSession:
    # Cookies on 127.0.0.1 need an "unsafe" jar in aiohttp (browsers accept them).
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def sign_in(
    http: aiohttp.ClientSession, cloud: Cloud, next_path: str, *, forward_cookies: bool = False
) -> Any:
    """The sign-in form, as a browser fills it. ``forward_cookies``: send the pre-session
    cookie by hand, as a TLS proxy passes on a Secure cookie that the client's jar keeps for
    https only."""
    async with http.get(f"{cloud.url}/login") as page:
        token = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
        assert token
        presession = page.cookies["locus_presession"]
    form = {
        "csrf_token": token.group(1),
        "email": cloud.first_start.email,
        "password": cloud.first_start.password,
        "next": next_path,
    }
    headers = {"Cookie": f"locus_presession={presession.value}"} if forward_cookies else {}
    return await http.post(f"{cloud.url}/login", data=form, headers=headers, allow_redirects=False)


async def test_pages_carry_security_headers_and_static_files_are_versioned(cloud: Cloud) -> None:
    async with jar_session() as http, http.get(f"{cloud.url}/login") as page:
        assert page.status == 200
        csp = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Cache-Control"] == "no-store"
        html = await page.text()
        assert "<script>" not in html and "style=" not in html  # nothing inline for CSP to allow
        script = re.search(r'src="(/static/dashboard\.js\?v=[0-9a-f]{12})"', html)
        assert script
        async with http.get(cloud.url + script.group(1)) as js:
            assert js.status == 200 and "EventSource" in await js.text()


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
async def test_sign_in_never_redirects_off_site(cloud: Cloud, target: str) -> None:
    async with jar_session() as http:
        answer = await sign_in(http, cloud, target)
        assert answer.status == 303
        assert answer.headers["Location"] == "/"
        async with http.get(f"{cloud.url}/login?next={target}", allow_redirects=False) as again:
            assert again.headers["Location"] == "/"  # signed in: straight on, but home


async def test_sign_in_goes_where_the_visitor_was_going(cloud: Cloud) -> None:
    async with jar_session() as http:
        answer = await sign_in(http, cloud, f"/projects/{cloud.project_id}/backlog")
        assert answer.headers["Location"] == f"/projects/{cloud.project_id}/backlog"
        cookie = answer.cookies["locus_session"]
        assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]


@pytest.mark.parametrize("settings_overrides", [{"secure_cookies": True}])
async def test_cookies_are_secure_behind_a_tls_proxy(cloud: Cloud) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{cloud.url}/login") as page:
            presession = page.cookies["locus_presession"]
            assert presession["secure"] and presession["httponly"]
        answer = await sign_in(http, cloud, "/", forward_cookies=True)
        assert answer.status == 303
        assert answer.cookies["locus_session"]["secure"]


async def test_a_worker_token_is_not_a_browser_session(cloud: Cloud) -> None:
    body = {"worker_name": "box"}
    token = (await cloud.api.post(f"/projects/{cloud.project_id}/tokens", body)).ok(201)["token"]
    async with jar_session() as http:
        http.cookie_jar.update_cookies({"locus_session": token})
        async with http.get(f"{cloud.url}/", allow_redirects=False) as answer:
            assert answer.status == 303 and answer.headers["Location"].startswith("/login")


async def test_bad_filters_are_a_page_naming_the_field(cloud: Cloud) -> None:
    async with jar_session() as http:
        http.cookie_jar.update_cookies({"locus_session": cloud.first_start.token})
        url = f"{cloud.url}/projects/{cloud.project_id}?sprint_id=abc"
        async with http.get(url) as answer:
            assert answer.status == 422
            assert "sprint_id" in await answer.text()
        async with http.get(f"{cloud.url}/api/v1/projects/{cloud.project_id}/tasks?x=1") as api:
            assert api.headers["Content-Type"] == "application/problem+json"


async def test_a_proposed_diff_held_locally_is_said_plainly(cloud: Cloud) -> None:
    """The daemon keeps a proposed diff on the developer's machine and sends its size (a
    ``summary`` artifact); the task page says so, and shows no diff until a patch comes."""
    body = {"title": "Fix median", "status": "queued"}
    task = (await cloud.api.post(f"/projects/{cloud.project_id}/tasks", body)).ok(201)
    worker = await Worker.create(cloud.api, cloud.project_id, "box")
    claim = (await worker.claim()).ok()
    (await worker.status(claim, "running")).ok()
    artifacts = f"/worker/tasks/{task['id']}/artifacts"

    async def post(kind: str, content: str) -> None:
        (await worker.api.post(artifacts, {**fence(claim), "kind": kind, "content": content})).ok(
            201
        )

    async def page() -> str:
        async with http.get(f"{cloud.url}/tasks/{task['id']}") as shown:
            assert shown.status == 200
            return await shown.text()

    async with jar_session() as http:
        await sign_in(http, cloud, "/")
        await post("summary", '{"heldLocally": true, "files": "many"}')  # a bad one: ignored
        assert "held locally" not in await page()
        await post("summary", '{"heldLocally": true, "files": 2, "added": 7, "removed": 3}')
        held = await page()
        assert "Proposed diff held locally" in held and "2 file(s)" in held
        assert "+7" in held and "\u22123" in held and "share_proposed_diffs" in held
        assert 'id="diff"' not in held
        patch = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"
        await post("patch", patch)  # shared before review (share_proposed_diffs)
        shared = await page()
        assert "held locally" not in shared and 'id="diff"' in shared
        assert "Proposed diff, shared before review" in shared and "Accepted diff" not in shared
        (await worker.status(claim, "awaiting_review")).ok()
        await post("patch", patch)  # the committed patch, then the report
        (await worker.status(claim, "verification")).ok()
        accepted = await page()
        assert "Accepted diff" in accepted and "shared before review" not in accepted


async def test_huge_or_odd_numbers_in_forms_and_queries_are_a_clear_answer(cloud: Cloud) -> None:
    """Digits beyond what int() takes (or '²', which isdigit() calls a digit) are a page that
    names the field, never a 500."""
    huge = "9" * 5000
    async with jar_session() as http:
        http.cookie_jar.update_cookies({"locus_session": cloud.first_start.token})
        for target in (huge, "²", "0"):
            async with http.get(f"{cloud.url}/board", params={"project_id": target}) as shown:
                assert shown.status == 422 and "project_id" in await shown.text()
        async with http.get(f"{cloud.url}/projects/{cloud.project_id}") as board:
            found = re.search(r'name="csrf_token" value="([^"]+)"', await board.text())
        assert found
        csrf = found.group(1)
        for days in (huge, "²"):
            form = {"csrf_token": csrf, "worker_name": "w", "label": "x", "expires_in_days": days}
            url = f"{cloud.url}/projects/{cloud.project_id}/tokens"
            # (as a script posts it: the API's problem+json; a browser gets the form back
            # with the same reason)
            json = {"Accept": "application/json"}
            async with http.post(url, data=form, headers=json) as made:
                assert made.status == 422 and "expires_in_days" in await made.text()
