"""Assignee and reviewer (issue 16): only members of the task's project, a clear error naming
the field otherwise; the "assigned to" filter; and text search, where what is typed is data —
``%``, ``_`` and ``\\`` match themselves, never as LIKE wildcards — on both engines."""

from __future__ import annotations

from typing import Any

from tests.cloud_api.dashboard.test_dashboard_http import jar_session, sign_in
from tests.conftest import Cloud
from tests.support.client import Api, new_user


async def member(cloud: Cloud, email: str, role: str = "member") -> tuple[Api, int]:
    """A new user, made a member of the test project's organisation: (their API, their id)."""
    api = await new_user(cloud.api, email)
    org_id = (await cloud.api.get(f"/projects/{cloud.project_id}")).ok()["org_id"]
    (await cloud.api.post(f"/orgs/{org_id}/members", {"email": email, "role": role})).ok(201)
    user_id: int = (await api.get("/me")).ok()["user"]["id"]
    return api, user_id


async def create(cloud: Cloud, title: str, **extra: Any) -> dict[str, Any]:
    body = {"title": title, **extra}
    task: dict[str, Any] = (await cloud.api.post(f"/projects/{cloud.project_id}/tasks", body)).ok(
        201
    )
    return task


def refused_field(reply: Any) -> str:
    assert reply.status == 422, reply.body
    errors = reply.body["errors"]
    assert len(errors) == 1, errors
    assert "not a member of this project" in errors[0]["message"]
    assert errors[0]["fix"]
    field: str = errors[0]["field"]
    return field


async def test_assignee_and_reviewer_must_be_members_of_the_project(cloud: Cloud) -> None:
    _, ada = await member(cloud, "ada@example.com")
    _, vic = await member(cloud, "vic@example.com", role="viewer")
    stranger = await new_user(cloud.api, "eve@example.com")
    eve = (await stranger.get("/me")).ok()["user"]["id"]
    # Eve's own organisation and project: a member there, not here.
    org = (await stranger.post("/orgs", {"name": "Eve's", "slug": "eves"})).ok(201)
    assert org["id"]

    task = await create(cloud, "Fix the cart", assignee_id=ada, reviewer_id=vic)
    assert (task["assignee_id"], task["reviewer_id"]) == (ada, vic)
    path = f"/projects/{cloud.project_id}/tasks"
    for field in ("assignee_id", "reviewer_id"):
        for who in (eve, 999_999):  # another organisation's user; no such user at all
            reply = await cloud.api.post(path, {"title": "x", field: who})
            assert refused_field(reply) == field
            reply = await cloud.api.patch(f"/tasks/{task['id']}", {field: who})
            assert refused_field(reply) == field
    # Nothing changed by the refusals; null clears.
    same = (await cloud.api.get(f"/tasks/{task['id']}")).ok()
    assert (same["assignee_id"], same["reviewer_id"], same["version"]) == (ada, vic, 1)
    cleared = (await cloud.api.patch(f"/tasks/{task['id']}", {"reviewer_id": None})).ok()
    assert (cleared["assignee_id"], cleared["reviewer_id"]) == (ada, None)
    # The timeline records the change with the new value (the dashboard names the person).
    events = (await cloud.api.get(f"/tasks/{task['id']}/events", params={"kind": "updated"})).ok()
    assert events["items"][-1]["data"] == {"fields": ["reviewer_id"], "to": {"reviewer_id": None}}


async def test_assigned_to_filter(cloud: Cloud) -> None:
    _, ada = await member(cloud, "ada@example.com")
    mine = await create(cloud, "Ada's", assignee_id=ada)
    await create(cloud, "Nobody's")
    await create(cloud, "Reviewed by Ada", reviewer_id=ada)
    listed = (
        await cloud.api.get(f"/projects/{cloud.project_id}/tasks", params={"assignee_id": ada})
    ).ok()["items"]
    assert [t["id"] for t in listed] == [mine["id"]]


async def search(cloud: Cloud, text: str) -> list[str]:
    found = (await cloud.api.get(f"/projects/{cloud.project_id}/tasks", params={"q": text})).ok()[
        "items"
    ]
    return [t["title"] for t in found]


async def test_search_takes_the_text_literally(cloud: Cloud) -> None:
    titles = [
        "Discount of 100% off",  # 1
        "Discount of 1000 off",  # 2: '100%' as a pattern would match it
        "Rename user_name",  # 3
        "Rename username",  # 4: 'user_name' as a pattern would match it
        "Path C:\\temp",  # 5
        "Round the CART total",  # 6
    ]
    for title in titles:
        await create(cloud, title)
    await create(cloud, "Hidden in the text", description="the 50% rule applies")  # 7

    assert await search(cloud, "100%") == ["Discount of 100% off"]
    assert await search(cloud, "%") == ["Discount of 100% off", "Hidden in the text"]
    assert await search(cloud, "user_name") == ["Rename user_name"]
    assert await search(cloud, "_") == ["Rename user_name"]
    assert await search(cloud, "C:\\temp") == ["Path C:\\temp"]
    assert await search(cloud, "\\") == ["Path C:\\temp"]
    assert await search(cloud, "cart") == ["Round the CART total"]  # any case
    assert await search(cloud, "50% rule") == ["Hidden in the text"]  # the description too
    assert await search(cloud, "#4") == ["Rename username"]  # a number
    assert await search(cloud, "%%") == []
    # Too long, or only blanks: the field is named.
    for bad in ("x" * 201, "   "):
        reply = await cloud.api.get(f"/projects/{cloud.project_id}/tasks", params={"q": bad})
        assert reply.status == 422
        assert reply.body["errors"][0]["field"] == "q"


async def test_the_boards_search_box_names_a_bad_search(cloud: Cloud) -> None:
    """The board reads ``q`` itself (not through the API's router): a NUL, which PostgreSQL
    cannot take, or an over-long search is a 422 page naming it, not a server error."""
    await create(cloud, "Findable")
    async with jar_session() as http:
        (await sign_in(http, cloud, "/")).release()
        board = f"{cloud.url}/projects/{cloud.project_id}"
        for bad in ("a\x00b", "x" * 201):
            async with http.get(board, params={"q": bad}) as page:
                assert page.status == 422
                assert "q" in await page.text()
        async with http.get(board, params={"q": "findABLE"}) as page:
            assert page.status == 200
            assert "#1 Findable" in await page.text()
