"""CSRF on every dashboard form, sign-in included. The forms are found in the app's own
router (every state-changing route outside the REST API), so a form added later is covered
without touching this file; each is posted by a signed-in browser without a token, with a
token of another visitor's, with a wrong header token and from another site — all refused
before the view runs. Sign-in is checked end to end: a forged sign-in (login CSRF, which would
put the victim in the attacker's account) never sets a session."""

from __future__ import annotations

import re

import aiohttp
import pytest

from cloud_api.dashboard.web import _NOT_DASHBOARD
from tests.cloud_api.dashboard.test_dashboard_http import jar_session, sign_in
from tests.conftest import Cloud

pytestmark = pytest.mark.parametrize("template", ["sqlite"], indirect=True)

REFUSED = "Refused: the form could not be verified"
_PARAM = re.compile(r"\{(\w+)\}")


def form_routes(cloud: Cloud) -> list[str]:
    """Every dashboard route that changes state, its parameters filled in."""
    values = {"project_id": str(cloud.project_id), "action": "cancel"}
    paths = {
        route.resource.canonical
        for route in cloud.app.router.routes()
        if route.method not in ("GET", "HEAD")
        and route.resource is not None
        and not route.resource.canonical.startswith(_NOT_DASHBOARD)
    }
    return sorted(_PARAM.sub(lambda m: values.get(m.group(1), "1"), path) for path in paths)


async def token_of(http: aiohttp.ClientSession, url: str) -> str:
    """The CSRF token a page gives this visitor."""
    async with http.get(f"{url}/login") as page:
        found = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
    assert found
    return found.group(1)


async def test_every_form_refuses_a_post_without_the_right_token(cloud: Cloud) -> None:
    routes = form_routes(cloud)
    # The enumeration found the forms (sign-in, sign-out, tasks, projects, sprints…).
    assert {"/login", "/logout", f"/projects/{cloud.project_id}/tasks"} <= set(routes)
    assert len(routes) >= 12, routes
    async with jar_session() as victim, jar_session() as attacker:
        assert (await sign_in(victim, cloud, "/")).status == 303
        foreign = await token_of(attacker, cloud.url)  # valid, but for the attacker's session
        forged: dict[str, tuple[dict[str, str], dict[str, str]]] = {
            "no token": ({}, {}),
            "another visitor's token": ({"csrf_token": foreign}, {}),
            "a wrong header token": ({}, {"X-CSRF-Token": "0" * 64}),
        }
        for path in routes:
            for how, (data, headers) in forged.items():
                async with victim.post(
                    f"{cloud.url}{path}", data=data, headers=headers, allow_redirects=False
                ) as answer:
                    body = await answer.text()
                    assert answer.status == 403 and REFUSED in body, f"{path}: {how}"
        # Still signed in: none of the forged posts (sign-out included) did anything.
        async with victim.get(f"{cloud.url}/", allow_redirects=False) as home:
            assert home.status == 200


async def test_every_form_refuses_another_site_even_with_a_valid_token(cloud: Cloud) -> None:
    async with jar_session() as victim:
        assert (await sign_in(victim, cloud, "/")).status == 303
        own = await token_of(victim, cloud.url)
        for path in form_routes(cloud):
            async with victim.post(
                f"{cloud.url}{path}",
                data={"csrf_token": own},
                headers={"Origin": "https://evil.example"},
                allow_redirects=False,
            ) as answer:
                assert answer.status == 403 and REFUSED in await answer.text(), path


async def test_a_forged_sign_in_never_sets_a_session(cloud: Cloud) -> None:
    """Login CSRF: another site posts the attacker's credentials from the victim's browser.
    It cannot send the token of the victim's page, so no session cookie is ever set; the
    same form with the page's own token signs in (the refusal is the token's doing)."""
    credentials = {"email": cloud.first_start.email, "password": cloud.first_start.password}
    async with jar_session() as victim, jar_session() as attacker:
        foreign = await token_of(attacker, cloud.url)
        await token_of(victim, cloud.url)  # the victim has a page (and pre-session) of its own
        for data in (credentials, {**credentials, "csrf_token": foreign}):
            async with victim.post(
                f"{cloud.url}/login", data=data, allow_redirects=False
            ) as answer:
                assert answer.status == 403 and REFUSED in await answer.text()
                assert "locus_session" not in answer.cookies
        async with (
            jar_session() as fresh,  # no page, no cookie at all
            fresh.post(
                f"{cloud.url}/login",
                data={**credentials, "csrf_token": foreign},
                allow_redirects=False,
            ) as answer,
        ):
            assert answer.status == 403 and "locus_session" not in answer.cookies
        own = await token_of(victim, cloud.url)
        async with victim.post(
            f"{cloud.url}/login", data={**credentials, "csrf_token": own}, allow_redirects=False
        ) as answer:
            assert answer.status == 303 and "locus_session" in answer.cookies
