"""Idempotency-Key on POST: a retried request replays the first answer and never repeats the
effect — including under concurrency, for errors, for secrets and for worker claims."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.cloud_api.dispatch.test_dispatch import wait_for_waiters
from tests.conftest import Cloud
from tests.support.client import Api, Reply, Worker, new_user


def key(name: str) -> dict[str, str]:
    return {"Idempotency-Key": name}


def replayed(reply: Reply) -> bool:
    return {k.lower(): v for k, v in reply.headers.items()}.get("idempotent-replayed") == "true"


async def task_ids(api: Api, pid: int) -> list[int]:
    items = (await api.get(f"/projects/{pid}/tasks", params={"limit": 200})).ok()["items"]
    return [t["id"] for t in items]


async def test_same_key_and_body_replays_the_first_response(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    body = {"title": "once", "labels": ["x"]}
    first = await api.post(f"/projects/{pid}/tasks", body, headers=key("k-1"))
    assert first.ok(201)["title"] == "once" and not replayed(first)
    again = await api.post(f"/projects/{pid}/tasks", body, headers=key("k-1"))
    assert again.status == 201 and again.body == first.body and replayed(again)
    assert await task_ids(api, pid) == [first.body["id"]]
    # A different key is a different request.
    other = (await api.post(f"/projects/{pid}/tasks", body, headers=key("k-2"))).ok(201)
    assert await task_ids(api, pid) == [first.body["id"], other["id"]]
    # A replay is the stored answer, not a re-read: the task moved on, the replay did not.
    (await api.post(f"/tasks/{first.body['id']}/queue")).ok()
    third = await api.post(f"/projects/{pid}/tasks", body, headers=key("k-1"))
    assert third.body["status"] == "backlog" and replayed(third)


async def test_same_key_with_a_different_request_is_422(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    (await api.post(f"/projects/{pid}/tasks", {"title": "a"}, headers=key("k"))).ok(201)
    reply = await api.post(f"/projects/{pid}/tasks", {"title": "b"}, headers=key("k"))
    assert reply.status == 422 and "Idempotency-Key" in reply.body["title"]
    # The same body to another project is a different request too.
    org = (await api.get(f"/projects/{pid}")).ok()["org_id"]
    project = {"org_id": org, "name": "Other", "slug": "other"}
    other_pid = (await api.post("/projects", project)).ok(201)["id"]
    other = await api.post(f"/projects/{other_pid}/tasks", {"title": "a"}, headers=key("k"))
    assert other.status == 422 and "Idempotency-Key" in other.body["title"]
    titles = [t["title"] for t in (await api.get(f"/projects/{pid}/tasks")).ok()["items"]]
    assert titles == ["a"]
    assert await task_ids(api, other_pid) == []


async def test_concurrent_requests_with_one_key_have_one_effect(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    body = {"title": "racing", "status": "queued"}
    replies = await asyncio.gather(
        *(api.post(f"/projects/{pid}/tasks", body, headers=key("race")) for _ in range(10))
    )
    created = [r for r in replies if r.status == 201]
    in_progress = [r for r in replies if r.status == 409]
    assert len(created) + len(in_progress) == 10, [(r.status, r.body) for r in replies]
    assert created, "at least the first request succeeds"
    assert len({r.body["id"] for r in created}) == 1
    assert sum(not replayed(r) for r in created) == 1, "exactly one response is the original"
    for reply in in_progress:
        headers = {k.lower(): v for k, v in reply.headers.items()}
        assert headers.get("retry-after") and reply.body["status"] == 409
    ids = await task_ids(api, pid)
    assert ids == [created[0].body["id"]]
    events = (await api.get(f"/tasks/{ids[0]}/events")).ok()["items"]
    assert [e["kind"] for e in events] == ["created"]
    # Once done, any retry replays.
    late = await api.post(f"/projects/{pid}/tasks", body, headers=key("race"))
    assert late.status == 201 and replayed(late) and late.body["id"] == ids[0]


async def test_client_errors_are_replayed_too(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    body = {"title": "t", "sprint_id": 4242}  # no such sprint: a 422 from the handler
    first = await api.post(f"/projects/{pid}/tasks", body, headers=key("err"))
    assert first.status == 422 and not replayed(first)
    assert [e["field"] for e in first.body["errors"]] == ["sprint_id"]
    again = await api.post(f"/projects/{pid}/tasks", body, headers=key("err"))
    assert again.status == 422 and replayed(again) and again.body == first.body
    # A 404 is stored as well.
    missing = await api.post("/tasks/999999/queue", {}, headers=key("gone"))
    assert missing.status == 404 and not replayed(missing)
    missing_again = await api.post("/tasks/999999/queue", {}, headers=key("gone"))
    assert missing_again.status == 404 and replayed(missing_again)
    assert await task_ids(api, pid) == []


async def test_conflicts_are_not_stored_so_a_retry_can_succeed(cloud: Cloud) -> None:
    """A 409 says "try again later"; replaying it forever would make that impossible."""
    api, pid = cloud.api, cloud.project_id
    task = (await api.post(f"/projects/{pid}/tasks", {"title": "t"})).ok(201)
    approve = f"/tasks/{task['id']}/approve"
    first = await api.post(approve, {}, headers=key("approve"))
    assert first.status == 409 and not replayed(first)
    worker = await Worker.create(api, pid, "w")
    (await api.post(f"/tasks/{task['id']}/queue")).ok()
    claim = (await worker.claim()).ok()
    for status in ("running", "awaiting_review", "verification"):
        (await worker.status(claim, status)).ok()
    done = await api.post(approve, {}, headers=key("approve"))
    assert done.status == 200 and done.body["status"] == "done" and not replayed(done)
    assert replayed(await api.post(approve, {}, headers=key("approve")))


async def test_token_creation_with_a_key_is_not_replayed(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    path = f"/projects/{pid}/tokens"
    first = (await api.post(path, {"worker_name": "w1"}, headers=key("tok"))).ok(201)
    assert first["token"].startswith("lcw_")
    retry = await api.post(path, {"worker_name": "w1"}, headers=key("tok"))
    assert retry.status == 409, retry.body
    assert "token" not in retry.body and first["token"] not in str(retry.body)
    assert "shown only once" in retry.body["detail"]
    tokens = (await api.get(path)).ok()["items"]
    assert [t["id"] for t in tokens] == [first["id"]]
    (await api.as_(first["token"]).post("/worker/register", {})).ok()


async def test_keys_are_scoped_to_the_token(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    org = (await api.get(f"/projects/{pid}")).ok()["org_id"]
    other = await new_user(api, "other@example.com")
    (await api.post(f"/orgs/{org}/members", {"email": "other@example.com", "role": "member"})).ok(
        201
    )
    body = {"title": "same"}
    mine = await api.post(f"/projects/{pid}/tasks", body, headers=key("shared"))
    theirs = await other.post(f"/projects/{pid}/tasks", body, headers=key("shared"))
    assert mine.status == theirs.status == 201
    assert not replayed(mine) and not replayed(theirs)
    assert mine.body["id"] != theirs.body["id"]
    # Even a different body is fine under another token's key.
    third = await other.post(f"/projects/{pid}/tasks", {"title": "x"}, headers=key("k2"))
    (await api.post(f"/projects/{pid}/tasks", {"title": "y"}, headers=key("k2"))).ok(201)
    assert third.status == 201
    assert len(await task_ids(api, pid)) == 4


async def test_a_retried_claim_returns_the_same_claim(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    first_task = (await api.post(f"/projects/{pid}/tasks", {"title": "a", "status": "queued"})).ok(
        201
    )
    second = (await api.post(f"/projects/{pid}/tasks", {"title": "b", "status": "queued"})).ok(201)
    worker = await Worker.create(api, pid, "w")
    claim_body: dict[str, Any] = {"wait_seconds": 0}
    one = await worker.api.post("/worker/claim", claim_body, headers=key("claim-1"))
    two = await worker.api.post("/worker/claim", claim_body, headers=key("claim-1"))
    assert one.status == two.status == 200 and replayed(two) and not replayed(one)
    picked = (one.body["task"]["id"], one.body["attempt"], one.body["claim_token"])
    assert picked == (two.body["task"]["id"], two.body["attempt"], two.body["claim_token"])
    assert picked[0] == first_task["id"]
    assert (await api.get(f"/tasks/{second['id']}")).ok()["status"] == "queued"
    # The replayed claim is the live one: its fence works.
    (await worker.heartbeat(two.body)).ok()
    # A fresh key claims the next task.
    three = (await worker.api.post("/worker/claim", claim_body, headers=key("claim-2"))).ok()
    assert three["task"]["id"] == second["id"]


async def test_a_keyed_long_poll_does_not_hold_the_write_transaction_while_it_waits(
    cloud: Cloud,
) -> None:
    """A keyed claim's writes and answer are one transaction, but an attempt that found nothing
    commits apart before waiting: holding SQLite's one writer through the wait would block the
    very task creation that is to wake it (until the long-poll gave up)."""
    api, pid = cloud.api, cloud.project_id
    worker = await Worker.create(api, pid, "w")
    waiting = asyncio.create_task(
        worker.api.post("/worker/claim", {"wait_seconds": 20}, headers=key("poll-1"))
    )
    await wait_for_waiters(api, 1)
    task = (await api.post(f"/projects/{pid}/tasks", {"title": "wake", "status": "queued"})).ok(201)
    claim = await waiting
    assert claim.status == 200 and claim.body["task"]["id"] == task["id"], claim.body
    again = await worker.api.post("/worker/claim", {"wait_seconds": 20}, headers=key("poll-1"))
    assert replayed(again) and again.body["claim_token"] == claim.body["claim_token"]
