"""Planning requests over the REST API, on SQLite and PostgreSQL: who may ask, a worker's
fenced claim and report, and accepting proposals into the backlog exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import update

from cloud_api.services import SERVICES
from cloud_api.store.tables import plan_requests
from cloud_api.store.types import db_now
from tests.conftest import Cloud
from tests.support.client import Api, Reply, Worker, every, fence, new_user

HOSTILE = '<img src=x onerror="window.__xss=1">'
PROPOSALS = [
    {"title": HOSTILE, "description": "first", "likely_files": ["src/a.py"]},
    {"title": "Second", "description": "two", "likely_files": []},
    {"title": "Third", "description": "three", "likely_files": ["b.py", "c.py"]},
]


def problem_fields(reply: Reply, status: int) -> list[str]:
    assert reply.status == status, reply.body
    return [e["field"] for e in reply.body.get("errors") or []]


async def viewer_of(cloud: Cloud) -> Api:
    viewer = await new_user(cloud.api, "vera@example.com")
    org_id = (await cloud.api.get(f"/projects/{cloud.project_id}")).ok()["org_id"]
    body = {"email": "vera@example.com", "role": "viewer"}
    (await cloud.api.post(f"/orgs/{org_id}/members", body)).ok(201)
    return viewer


async def report(worker: Worker, claim: dict[str, Any], **body: Any) -> Reply:
    return await worker.api.post(
        f"/worker/plans/{claim['plan']['id']}/report", {**fence(claim), **body}
    )


async def test_ask_claim_report_accept(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    plans = f"/projects/{pid}/plans"
    assert problem_fields(await api.post(plans, {"goal": "  "}), 422) == ["goal"]
    viewer = await viewer_of(cloud)
    assert (await viewer.post(plans, {"goal": "speed up"})).status == 403
    asked = (await api.post(plans, {"goal": "speed up the importer"})).ok(201)
    assert asked["status"] == "pending" and asked["proposals"] == []
    assert [p["id"] for p in (await viewer.get(plans)).ok()["items"]] == [asked["id"]]

    first = await Worker.create(api, pid, "one")
    second = await Worker.create(api, pid, "two")
    claim = (await first.api.post("/worker/plans/claim", {})).ok()
    assert claim["plan"]["goal"] == "speed up the importer" and claim["attempt"] == 1
    assert (await second.api.post("/worker/plans/claim", {})).status == 204
    # Only the claim's holder reports; people cannot use the worker route at all.
    stale = {**claim, "claim_token": "not-it"}
    assert (await report(first, stale, proposals=PROPOSALS)).status == 409
    assert (await report(second, claim, proposals=PROPOSALS)).status == 409
    assert (await api.post(f"/worker/plans/{asked['id']}/report", fence(claim))).status == 403

    done = (await report(first, claim, proposals=PROPOSALS)).ok()
    assert done["status"] == "proposed"
    assert [(p["number"], p["title"], p["task_id"]) for p in done["proposals"]] == [
        (1, HOSTILE, None),
        (2, "Second", None),
        (3, "Third", None),
    ]
    assert (await report(first, claim, proposals=PROPOSALS)).ok() == done  # a retry: the same

    accept = f"{plans}/{asked['id']}/accept"
    assert (await viewer.post(accept, {"numbers": [1]})).status == 403
    assert problem_fields(await api.post(accept, {"numbers": [4]}), 422) == ["numbers"]
    assert problem_fields(await api.post(accept, {"numbers": []}), 422) == ["numbers"]
    accepted = (await api.post(accept, {"numbers": [1, 3]})).ok()
    assert [t["title"] for t in accepted["created"]] == [HOSTILE, "Third"]
    assert {t["status"] for t in accepted["created"]} == {"backlog"}
    again = (await api.post(accept, {"numbers": [3, 1]})).ok()  # a double submit
    assert again["created"] == [] and again["plan"] == accepted["plan"]
    ids = {p["number"]: p["task_id"] for p in accepted["plan"]["proposals"]}
    assert ids[2] is None and sorted([ids[1], ids[3]]) == sorted(
        t["id"] for t in accepted["created"]
    )
    tasks = await every(api, f"/projects/{pid}/tasks")
    assert sorted(t["title"] for t in tasks) == sorted([HOSTILE, "Third"])


async def test_a_report_without_proposals_fails_the_request(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    asked = (await api.post(f"/projects/{pid}/plans", {"goal": "g"})).ok(201)
    worker = await Worker.create(api, pid, "one")
    claim = (await worker.api.post("/worker/plans/claim", {})).ok()
    failed = (await report(worker, claim, reason="no model key")).ok()
    assert (failed["status"], failed["reason"]) == ("failed", "no model key")
    accept = f"/projects/{pid}/plans/{asked['id']}/accept"
    assert (await api.post(accept, {"numbers": [1]})).status == 409
    assert (await worker.api.post("/worker/plans/claim", {})).status == 204


async def test_a_waiting_claim_is_woken_by_a_request(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    worker = await Worker.create(api, pid, "one")
    waiting = asyncio.ensure_future(worker.api.post("/worker/plans/claim", {"wait_seconds": 30}))
    asked = (await api.post(f"/projects/{pid}/plans", {"goal": "woken"})).ok(201)
    assert (await waiting).ok()["plan"]["id"] == asked["id"]


async def test_an_expired_claim_is_taken_over_and_its_report_refused(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    (await api.post(f"/projects/{pid}/plans", {"goal": "g"})).ok(201)
    gone = await Worker.create(api, pid, "gone")
    old = (await gone.api.post("/worker/plans/claim", {})).ok()
    # The lease runs out (an hour, written here rather than waited for).
    async with cloud.app[SERVICES].db.write() as tx:
        await tx.conn.execute(update(plan_requests).values(lease_expires_at=db_now(-1)))
    other = await Worker.create(api, pid, "other")
    new = (await other.api.post("/worker/plans/claim", {})).ok()
    assert new["plan"]["id"] == old["plan"]["id"] and new["attempt"] == 2
    assert (await report(gone, old, proposals=PROPOSALS)).status == 409
    assert (await report(other, new, proposals=PROPOSALS)).ok()["status"] == "proposed"


async def test_requests_of_another_project_are_not_found(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    asked = (await api.post(f"/projects/{pid}/plans", {"goal": "g"})).ok(201)
    org_id = (await api.get(f"/projects/{pid}")).ok()["org_id"]
    other = (await api.post("/projects", {"org_id": org_id, "name": "Other", "slug": "other"})).ok(
        201
    )
    assert (await api.get(f"/projects/{other['id']}/plans/{asked['id']}")).status == 404
    worker = await Worker.create(api, other["id"], "elsewhere")
    assert (await worker.api.post("/worker/plans/claim", {})).status == 204


async def test_accepting_at_once_from_two_places_creates_each_task_once(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    asked = (await api.post(f"/projects/{pid}/plans", {"goal": "g"})).ok(201)
    worker = await Worker.create(api, pid, "one")
    claim = (await worker.api.post("/worker/plans/claim", {})).ok()
    (await report(worker, claim, proposals=PROPOSALS)).ok()
    accept = f"/projects/{pid}/plans/{asked['id']}/accept"
    replies = await asyncio.gather(*(api.post(accept, {"numbers": [1, 2, 3]}) for _ in range(10)))
    created = [t["id"] for r in replies for t in r.ok()["created"]]
    assert len(created) == 3
    tasks = await every(api, f"/projects/{pid}/tasks")
    assert sorted(t["id"] for t in tasks) == sorted(created)
