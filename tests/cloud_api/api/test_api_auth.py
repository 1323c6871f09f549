"""Authentication (sessions, worker tokens, expiry, revocation, hashing at rest) and
authorisation (per-project visibility, roles, worker-token scope) through the real API."""

from __future__ import annotations

import hashlib
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import select, update

from cloud_api.store.db import Database
from cloud_api.store.tables import api_tokens, users
from cloud_api.store.types import db_now
from tests.conftest import Cloud
from tests.support.client import Api, Reply, Worker, new_user


def header(reply: Reply, name: str) -> str | None:
    return {k.lower(): v for k, v in reply.headers.items()}.get(name.lower())


def assert_problem(reply: Reply, status: int) -> dict[str, Any]:
    """An error is RFC 9457 problem+json carrying the same status in its body."""
    assert reply.status == status, f"expected {status}, got {reply.status}: {reply.body}"
    assert (header(reply, "Content-Type") or "").startswith("application/problem+json")
    assert isinstance(reply.body, dict) and reply.body["status"] == status
    return reply.body


def assert_unauthorized(reply: Reply) -> None:
    assert_problem(reply, 401)
    assert (header(reply, "WWW-Authenticate") or "").startswith("Bearer")


async def login(anon: Api, email: str, password: str) -> Reply:
    return await anon.as_(None).post("/auth/login", {"email": email, "password": password})


# --- authentication -----------------------------------------------------------------------


async def test_password_login_gives_a_token_that_works(cloud: Cloud) -> None:
    first = cloud.first_start
    # E-mail addresses are case-insensitive.
    reply = await login(cloud.api, first.email.upper(), first.password)
    body = reply.ok()
    assert body["token"].startswith("lcu_") and body["user"]["email"] == first.email
    assert body["expires_at"] is not None, "login sessions expire"
    me = (await cloud.api.as_(body["token"]).get("/me")).ok()
    assert me["user"]["email"] == first.email and me["user"]["is_admin"] is True
    assert me["token_scope"] == "user"
    assert [m["org_slug"] for m in me["memberships"]] == ["default"]


async def test_wrong_password_and_unknown_email_are_the_same_401(cloud: Cloud) -> None:
    first = cloud.first_start
    wrong = await login(cloud.api, first.email, first.password + "x")
    unknown = await login(cloud.api, "nobody@example.com", first.password)
    for reply in (wrong, unknown):
        assert_problem(reply, 401)
        assert "token" not in reply.body
    # The answer does not tell which of the two was wrong.
    assert wrong.body["detail"] == unknown.body["detail"]


async def test_missing_or_garbage_bearer_is_401_with_www_authenticate(cloud: Cloud) -> None:
    anon = cloud.api.as_(None)
    assert_unauthorized(await anon.get("/me"))
    for value in ("Bearer lcu_not-a-real-token", "Bearer ", "Basic YWRtaW46YWRtaW4=", "garbage"):
        assert_unauthorized(await anon.get("/me", headers={"Authorization": value}))
    # Write endpoints too, and nothing is created by a rejected call.
    pid = cloud.project_id
    assert_unauthorized(
        await cloud.api.as_("lcu_forged").post(f"/projects/{pid}/tasks", {"title": "x"})
    )
    assert (await cloud.api.get(f"/projects/{pid}/tasks")).ok()["items"] == []


async def test_logout_revokes_only_that_token(cloud: Cloud) -> None:
    first = cloud.first_start
    session = cloud.api.as_((await login(cloud.api, first.email, first.password)).ok()["token"])
    (await session.get("/me")).ok()
    assert (await session.post("/auth/logout")).status == 204
    assert_unauthorized(await session.get("/me"))
    assert_unauthorized(await session.post("/auth/logout"))
    (await cloud.api.get("/me")).ok()  # the admin's other token is untouched


async def test_revoked_worker_token_is_401(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    created = (await api.post(f"/projects/{pid}/tokens", {"worker_name": "w1"})).ok(201)
    worker = api.as_(created["token"])
    (await worker.post("/worker/register", {"host": "w1"})).ok()
    revoked = (await api.post(f"/projects/{pid}/tokens/{created['id']}/revoke")).ok()
    assert revoked["revoked_at"] is not None and "token" not in revoked
    assert_unauthorized(await worker.post("/worker/claim", {}))
    assert_unauthorized(await worker.get("/me"))
    listed = (await api.get(f"/projects/{pid}/tokens")).ok()["items"]
    assert [t["revoked_at"] is not None for t in listed if t["id"] == created["id"]] == [True]
    # Revoking a token of another project (or none) is a 404, not a silent success.
    assert_problem(await api.post(f"/projects/{pid}/tokens/999999/revoke"), 404)


async def test_expired_token_is_401(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    created = (await api.post(f"/projects/{pid}/tokens", {"worker_name": "old"})).ok(201)
    worker = api.as_(created["token"])
    assert (await worker.get("/me")).ok()["worker_name"] == "old"
    db = Database(cloud.db_url)
    try:  # set up state: this token's expiry is one minute in the past
        async with db.write() as tx:
            await tx.conn.execute(
                update(api_tokens)
                .where(api_tokens.c.id == created["id"])
                .values(expires_at=db_now(-60))
            )
    finally:
        await db.close()
    assert_unauthorized(await worker.get("/me"))
    assert_unauthorized(await worker.post("/worker/register", {}))


async def test_tokens_are_stored_as_sha256_and_passwords_as_argon2id(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    password = "a long enough password"
    user = await new_user(api, "hashme@example.com", password)
    assert user.token is not None
    worker_token = (await api.post(f"/projects/{pid}/tokens", {"worker_name": "w"})).ok(201)[
        "token"
    ]
    db = Database(cloud.db_url)
    try:
        async with db.read() as conn:
            hashes = set((await conn.execute(select(api_tokens.c.token_hash))).scalars())
            stored = (
                await conn.execute(
                    select(users.c.password_hash).where(users.c.email == "hashme@example.com")
                )
            ).scalar_one()
    finally:
        await db.close()
    for plain in (user.token, worker_token, cloud.first_start.token):
        assert plain not in hashes
        assert hashlib.sha256(plain.encode()).hexdigest() in hashes
    assert stored.startswith("$argon2id$") and password not in stored
    assert PasswordHasher().verify(stored, password)


# --- authorisation ------------------------------------------------------------------------


async def org_with_project(user: Api, slug: str) -> tuple[int, int]:
    org = (await user.post("/orgs", {"name": slug.title(), "slug": slug})).ok(201)
    project = (
        await user.post("/projects", {"org_id": org["id"], "name": "App", "slug": "app"})
    ).ok(201)
    return org["id"], project["id"]


async def test_another_users_project_is_404_everywhere(cloud: Cloud) -> None:
    admin = cloud.api
    alice = await new_user(admin, "alice@example.com")
    bob = await new_user(admin, "bob@example.com")
    a_org, a_pid = await org_with_project(alice, "alice-org")
    b_org, b_pid = await org_with_project(bob, "bob-org")
    # Alice's project has a task with a claim, an artifact, a graph node, a worker, a token.
    task = (await alice.post(f"/projects/{a_pid}/tasks", {"title": "t", "status": "queued"})).ok(
        201
    )
    worker = await Worker.create(alice, a_pid, "alice-laptop")
    claim = (await worker.claim()).ok()
    art = (
        await worker.api.post(
            f"/worker/tasks/{task['id']}/artifacts",
            {
                "attempt": claim["attempt"],
                "claim_token": claim["claim_token"],
                "kind": "patch",
                "content": "diff",
            },
        )
    ).ok(201)
    (
        await alice.post(f"/projects/{a_pid}/graph", {"nodes": [{"kind": "file", "key": "a.py"}]})
    ).ok()
    tid = task["id"]
    reads = [
        f"/orgs/{a_org}",
        f"/orgs/{a_org}/members",
        f"/projects/{a_pid}",
        f"/projects/{a_pid}/tasks",
        f"/projects/{a_pid}/sprints",
        f"/projects/{a_pid}/workers",
        f"/projects/{a_pid}/tokens",
        f"/projects/{a_pid}/graph",
        f"/tasks/{tid}",
        f"/tasks/{tid}/events",
        f"/tasks/{tid}/artifacts",
        f"/tasks/{tid}/artifacts/{art['id']}",
    ]
    for path in reads:
        body = assert_problem(await bob.get(path), 404)
        assert "does not exist or you have no access" in body["detail"], path
        (await alice.get(path)).ok()  # the owner sees it: the 404 is about Bob
    writes: list[tuple[str, dict[str, Any]]] = [
        (f"/projects/{a_pid}/tasks", {"title": "intrusion"}),
        (f"/tasks/{tid}/cancel", {}),
        (f"/tasks/{tid}/comments", {"body": "hi"}),
        (f"/projects/{a_pid}/tokens", {"worker_name": "evil"}),
        (f"/projects/{a_pid}/graph", {"nodes": []}),
        (f"/orgs/{a_org}/members", {"email": "bob@example.com", "role": "owner"}),
    ]
    for path, body in writes:
        assert_problem(await bob.post(path, body), 404)
    assert_problem(await bob.patch(f"/projects/{a_pid}", {"name": "mine"}), 404)
    # Nothing leaked into Bob's lists, and nothing Bob tried changed Alice's task.
    assert [p["id"] for p in (await bob.get("/projects")).ok()["items"]] == [b_pid]
    assert [o["id"] for o in (await bob.get("/orgs")).ok()["items"]] == [b_org]
    after = (await alice.get(f"/tasks/{tid}")).ok()
    assert after["status"] == "claimed" and after["version"] == claim["task"]["version"]
    assert (await alice.get(f"/projects/{a_pid}")).ok()["name"] == "App"
    assert len((await alice.get(f"/projects/{a_pid}/tokens")).ok()["items"]) == 1


async def test_viewer_reads_but_cannot_write(cloud: Cloud) -> None:
    admin = cloud.api
    alice = await new_user(admin, "alice@example.com")
    vera = await new_user(admin, "vera@example.com")
    org, pid = await org_with_project(alice, "acme")
    task = (await alice.post(f"/projects/{pid}/tasks", {"title": "t"})).ok(201)
    added = (
        await alice.post(f"/orgs/{org}/members", {"email": "vera@example.com", "role": "viewer"})
    ).ok(201)
    assert added["role"] == "viewer"
    assert (await vera.get(f"/projects/{pid}")).ok()["role"] == "viewer"
    assert [t["id"] for t in (await vera.get(f"/projects/{pid}/tasks")).ok()["items"]] == [
        task["id"]
    ]
    (await vera.get(f"/tasks/{task['id']}/events")).ok()
    assert_problem(await vera.post(f"/projects/{pid}/tasks", {"title": "no"}), 403)
    for action in ("queue", "cancel"):
        assert_problem(await vera.post(f"/tasks/{task['id']}/{action}"), 403)
    assert_problem(await vera.patch(f"/tasks/{task['id']}", {"title": "renamed"}), 403)
    assert_problem(await vera.post(f"/tasks/{task['id']}/comments", {"body": "x"}), 403)
    assert_problem(await vera.post(f"/projects/{pid}/sprints", {"name": "s"}), 403)
    after = (await alice.get(f"/tasks/{task['id']}")).ok()
    assert (after["status"], after["version"], after["title"]) == ("backlog", 1, "t")
    assert len((await alice.get(f"/projects/{pid}/tasks")).ok()["items"]) == 1


async def test_member_writes_tasks_but_cannot_manage(cloud: Cloud) -> None:
    admin = cloud.api
    alice = await new_user(admin, "alice@example.com")
    mia = await new_user(admin, "mia@example.com")
    org, pid = await org_with_project(alice, "acme")
    (await alice.post(f"/orgs/{org}/members", {"email": "mia@example.com", "role": "viewer"})).ok(
        201
    )
    me = (await mia.get("/me")).ok()
    assert me["memberships"] == [{"org_id": org, "org_slug": "acme", "role": "viewer"}]
    mid = me["user"]["id"]
    promoted = (await alice.patch(f"/orgs/{org}/members/{mid}", {"role": "member"})).ok()
    assert promoted["role"] == "member"
    task = (await mia.post(f"/projects/{pid}/tasks", {"title": "by mia"})).ok(201)
    assert (await mia.post(f"/tasks/{task['id']}/queue")).ok()["status"] == "queued"
    assert_problem(await mia.post(f"/projects/{pid}/tokens", {"worker_name": "w"}), 403)
    assert_problem(await mia.get(f"/projects/{pid}/tokens"), 403)
    assert_problem(await mia.patch(f"/projects/{pid}", {"name": "renamed"}), 403)
    assert (await alice.get(f"/projects/{pid}/tokens")).ok()["items"] == []
    assert (await alice.get(f"/projects/{pid}")).ok()["name"] == "App"


async def test_only_owners_manage_members_and_one_owner_must_remain(cloud: Cloud) -> None:
    admin = cloud.api
    alice = await new_user(admin, "alice@example.com")
    mia = await new_user(admin, "mia@example.com")
    await new_user(admin, "zed@example.com")
    org, _pid = await org_with_project(alice, "acme")
    alice_id = (await alice.get("/me")).ok()["user"]["id"]
    mia_id = (
        await alice.post(f"/orgs/{org}/members", {"email": "mia@example.com", "role": "member"})
    ).ok(201)["user_id"]

    async def roles() -> dict[str, str]:
        members = (await alice.get(f"/orgs/{org}/members")).ok()
        return {m["email"]: m["role"] for m in members}

    before = await roles()
    assert before == {"alice@example.com": "owner", "mia@example.com": "member"}
    # A member cannot add, promote or remove anyone (herself included).
    assert_problem(
        await mia.post(f"/orgs/{org}/members", {"email": "zed@example.com", "role": "viewer"}), 403
    )
    assert_problem(await mia.patch(f"/orgs/{org}/members/{mia_id}", {"role": "owner"}), 403)
    assert_problem(await mia.delete(f"/orgs/{org}/members/{alice_id}"), 403)
    assert_problem(await mia.patch(f"/orgs/{org}", {"name": "Taken"}), 403)
    # The sole owner cannot demote or remove herself.
    body = assert_problem(
        await alice.patch(f"/orgs/{org}/members/{alice_id}", {"role": "member"}), 409
    )
    assert "owner" in body["detail"]
    assert_problem(await alice.delete(f"/orgs/{org}/members/{alice_id}"), 409)
    assert await roles() == before
    # With a second owner she can step down.
    (await alice.patch(f"/orgs/{org}/members/{mia_id}", {"role": "owner"})).ok()
    (await alice.patch(f"/orgs/{org}/members/{alice_id}", {"role": "viewer"})).ok()
    assert await roles() == {"alice@example.com": "viewer", "mia@example.com": "owner"}
    assert_problem(await mia.delete(f"/orgs/{org}/members/{mia_id}"), 409)
    assert (await mia.delete(f"/orgs/{org}/members/{alice_id}")).status == 204
    assert [m["email"] for m in (await mia.get(f"/orgs/{org}/members")).ok()] == ["mia@example.com"]
    assert_problem(await alice.get(f"/orgs/{org}"), 404)


async def test_worker_token_is_bound_to_its_project_and_the_worker_endpoints(
    cloud: Cloud,
) -> None:
    admin, pid = cloud.api, cloud.project_id
    org = (await admin.post("/orgs", {"name": "Other", "slug": "other"})).ok(201)
    other = (await admin.post("/projects", {"org_id": org["id"], "name": "O", "slug": "o"})).ok(201)
    other_task = (
        await admin.post(f"/projects/{other['id']}/tasks", {"title": "x", "status": "queued"})
    ).ok(201)
    task = (await admin.post(f"/projects/{pid}/tasks", {"title": "t", "status": "queued"})).ok(201)
    worker = await Worker.create(admin, pid, "w1")
    claim = (await worker.claim()).ok()
    assert claim["task"]["id"] == task["id"], "only its own project's task is claimable"
    (await worker.status(claim, "running")).ok()
    (await worker.api.get(f"/projects/{pid}")).ok()
    (await worker.api.get(f"/tasks/{task['id']}")).ok()
    # People's actions are not for workers.
    for action in ("approve", "queue", "cancel"):
        assert_problem(await worker.api.post(f"/tasks/{task['id']}/{action}"), 403)
    assert_problem(await worker.api.post(f"/projects/{pid}/tasks", {"title": "x"}), 403)
    assert_problem(await worker.api.post(f"/projects/{pid}/tokens", {"worker_name": "w2"}), 403)
    # Another project does not exist for it.
    for path in (f"/projects/{other['id']}", f"/tasks/{other_task['id']}", f"/orgs/{org['id']}"):
        assert_problem(await worker.api.get(path), 404)
    assert_problem(
        await worker.api.post(
            f"/worker/tasks/{other_task['id']}/heartbeat",
            {"attempt": 1, "claim_token": claim["claim_token"]},
        ),
        404,
    )
    # User tokens cannot use the worker endpoints.
    assert_problem(await admin.post("/worker/register", {}), 403)
    assert_problem(await admin.post("/worker/claim", {}), 403)
    assert_problem(
        await admin.post(
            f"/worker/tasks/{task['id']}/heartbeat",
            {"attempt": 1, "claim_token": claim["claim_token"]},
        ),
        403,
    )
    assert (await admin.get(f"/tasks/{task['id']}")).ok()["status"] == "running"
    assert (await admin.get(f"/tasks/{other_task['id']}")).ok()["status"] == "queued"
