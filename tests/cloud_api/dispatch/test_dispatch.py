"""Dispatch: racing claims, order, fencing, long-poll wake-ups, leases and the reaper.

Every check reads the real timeline back from the API, so a broken claim shows up as a break
in the chain of status events (a second claim of a task that was already claimed would have
from_status 'queued' where the previous event left it 'claimed').
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Cloud
from tests.support.client import Api, Worker, fence, timeline

RACERS = 32


def assert_chain(events: list[dict[str, Any]], final_status: str) -> list[dict[str, Any]]:
    """Status events form one unbroken chain ending in the task's current status."""
    moves = [e for e in events if e["kind"] in ("created", "status")]
    status = None
    for event in moves:
        assert event["from_status"] == status, f"broken chain at event {event}"
        status = event["to_status"]
    assert status == final_status
    return moves


async def create_tasks(api: Api, project_id: int, n: int, **fields: Any) -> list[int]:
    ids = []
    for i in range(n):
        body = {"title": f"task {i}", "status": "queued", **fields}
        ids.append((await api.post(f"/projects/{project_id}/tasks", body)).ok(201)["id"])
    return ids


async def test_racing_workers_never_claim_a_task_twice(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    ids = await create_tasks(api, pid, 160)
    workers = [await Worker.create(api, pid, f"racer-{i}") for i in range(RACERS)]
    claims: list[tuple[int, dict[str, Any]]] = []

    async def drain(worker: Worker) -> None:
        while True:
            reply = await worker.claim()
            if reply.status == 204:
                return
            claim = reply.ok()
            claims.append((worker.id or 0, claim))
            # Hold the lease while others race: the task must stay ours.
            assert (await worker.heartbeat(claim)).ok()["status"] == "claimed"

    await asyncio.gather(*(drain(w) for w in workers))
    claimed = [c["task"]["id"] for _, c in claims]
    assert sorted(claimed) == sorted(ids), "every task claimed exactly once"
    assert len({w for w, _ in claims}) > 1, "the work was actually shared between racers"
    for task_id in ids[:40]:
        moves = assert_chain(await timeline(api, task_id), "claimed")
        assert [m["to_status"] for m in moves] == ["queued", "claimed"]


async def test_claim_order_is_priority_then_age(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    low = await create_tasks(api, pid, 2, priority=0)
    high = await create_tasks(api, pid, 2, priority=10)
    worker = await Worker.create(api, pid, "w")
    order = [(await worker.claim()).ok()["task"]["id"] for _ in range(4)]
    assert order == high + low


async def test_a_claim_can_name_the_one_task_it_wants(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    (low,) = await create_tasks(api, pid, 1, priority=0)
    (high,) = await create_tasks(api, pid, 1, priority=10)
    worker = await Worker.create(api, pid, "w")
    chosen = await worker.api.post("/worker/claim", {"task_id": low})
    assert chosen.ok()["task"]["id"] == low  # not the higher-priority one
    # Not queued any more (claimed): nothing to take, even though another task is queued.
    again = await worker.api.post("/worker/claim", {"task_id": low})
    assert again.status == 204
    assert (await worker.claim()).ok()["task"]["id"] == high


async def test_a_claim_passes_over_the_tasks_it_excludes(cloud: Cloud) -> None:
    """What ``locus cancel --requeue`` relies on: the worker that gave a task back passes over
    it, claiming now or long-polling; another worker takes it."""
    api, pid = cloud.api, cloud.project_id
    (old,) = await create_tasks(api, pid, 1)
    (new,) = await create_tasks(api, pid, 1)
    worker = await Worker.create(api, pid, "gave-back")
    taken = await worker.api.post("/worker/claim", {"exclude": [old]})
    assert taken.ok()["task"]["id"] == new  # not the older one, first in the queue
    # Only the passed-over task is queued: the long-poll waits, and takes the next one queued.
    body = {"exclude": [old], "wait_seconds": 30}
    waiting = asyncio.create_task(worker.api.post("/worker/claim", body))
    await wait_for_waiters(api, 1)
    (third,) = await create_tasks(api, pid, 1)
    assert (await asyncio.wait_for(waiting, 60)).ok()["task"]["id"] == third
    other = await Worker.create(api, pid, "other")
    assert (await other.claim()).ok()["task"]["id"] == old


async def test_worker_claims_only_tasks_of_repositories_it_serves(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    (
        await api.patch(
            f"/projects/{pid}",
            {"remotes": ["https://example.com/acme/app", "git@example.com:acme/lib.git"]},
        )
    ).ok()
    lib_task = (await create_tasks(api, pid, 1, repository="https://example.com/acme/lib"))[0]
    any_task = (await create_tasks(api, pid, 1))[0]
    app_worker = await Worker.create(api, pid, "app-only", ["git@example.com:acme/app.git"])
    assert (await app_worker.claim()).ok()["task"]["id"] == any_task
    assert (await app_worker.claim()).status == 204, "the lib task is not for this worker"
    lib_worker = await Worker.create(api, pid, "lib", ["https://example.com/acme/lib.git"])
    assert (await lib_worker.claim()).ok()["task"]["id"] == lib_task
    # A worker serving none of the project's repositories is refused at registration.
    token = (await api.post(f"/projects/{pid}/tokens", {"worker_name": "stranger"})).ok(201)
    reply = await api.as_(token["token"]).post(
        "/worker/register", {"repositories": ["https://example.com/other/x"]}
    )
    assert reply.status == 422 and reply.body["errors"][0]["field"] == "repositories"


async def test_idle_worker_is_woken_by_a_new_task(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    worker = await Worker.create(api, pid, "idle")
    waiting = asyncio.create_task(worker.claim(wait=30))
    await wait_for_waiters(api, 1)
    task = (await create_tasks(api, pid, 1))[0]
    # Woken by the task, not by the 30 s timeout (which would answer 204).
    claim = (await asyncio.wait_for(waiting, 60)).ok()
    assert claim["task"]["id"] == task


async def test_long_poll_times_out_with_no_content(cloud: Cloud) -> None:
    worker = await Worker.create(cloud.api, cloud.project_id, "idle")
    assert (await worker.claim(wait=0.2)).status == 204


async def wait_for_waiters(api: Api, n: int, base_url: str | None = None) -> None:
    """Poll /metrics until n workers are long-polling (there is no event to wait on)."""
    url = f"{base_url or api.base_url}/metrics"
    async with asyncio.timeout(30):
        while True:
            text = (await api.get(url)).body
            for line in text.splitlines():
                if line.startswith("locus_claim_waiters ") and float(line.split()[1]) >= n:
                    return
            await asyncio.sleep(0.01)


async def test_cancel_reaches_the_worker_on_heartbeat_and_signals(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    task = (await create_tasks(api, pid, 1))[0]
    worker = await Worker.create(api, pid, "w")
    claim = (await worker.claim()).ok()
    (await worker.status(claim, "running")).ok()
    signal = asyncio.create_task(worker.api.get("/worker/signals", params={"wait": 30}))
    (await api.post(f"/tasks/{task}/cancel")).ok()
    got = (await asyncio.wait_for(signal, 60)).ok()
    assert got["cancellations"] == [{"task_id": task, "attempt": 1, "event_id": got["cursor"]}]
    beat = (await worker.heartbeat(claim)).ok()
    assert beat["cancel"] is True and beat["status"] == "cancelled"
    # Nothing more from this attempt is accepted.
    assert (await worker.status(claim, "awaiting_review")).status == 409
    log = {**fence(claim), "seq": 1, "text": "late"}
    assert (await worker.api.post(f"/worker/tasks/{task}/logs", log)).status == 409
    # The cursor moves on: the same signal is not delivered twice.
    again = (await worker.api.get("/worker/signals", params={"after": got["cursor"]})).ok()
    assert again["cancellations"] == []


async def test_request_changes_gives_next_attempt_a_new_fence(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    task = (await create_tasks(api, pid, 1))[0]
    first, second = await Worker.create(api, pid, "a"), await Worker.create(api, pid, "b")
    claim1 = (await first.claim()).ok()
    for status in ("running", "awaiting_review", "verification"):
        (await first.status(claim1, status)).ok()
    (await api.post(f"/tasks/{task}/request-changes", {"feedback": "use a set"})).ok()
    claim2 = (await second.claim()).ok()
    assert claim2["attempt"] == 2 and claim2["task"]["feedback"] == "use a set"
    stale = await first.status(claim1, "running")
    assert stale.status == 409 and stale.body["current"]["attempt"] == 2


@pytest.mark.parametrize("settings_overrides", [{"lease_seconds": 1.0, "reaper_interval": 0.1}])
async def test_killed_worker_task_returns_to_the_queue(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    task = (await create_tasks(api, pid, 1))[0]
    doomed = await Worker.create(api, pid, "doomed")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.worker_proc",
        cloud.url,
        doomed.api.token or "",
        "0.2",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        claim = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
        assert claim["task"]["id"] == task
    finally:
        proc.kill()  # SIGKILL: no goodbye, no give-back
        await proc.wait()
    rescuer = await Worker.create(api, pid, "rescuer")
    again = (await rescuer.claim(wait=30)).ok()  # woken when the reaper re-queues it
    assert again["task"]["id"] == task and again["attempt"] == 2
    events = await timeline(api, task)
    expiry = [e for e in events if e["actor"] == "system"]
    assert len(expiry) == 1 and expiry[0]["to_status"] == "queued"
    assert "expired" in expiry[0]["data"]["reason"]
    assert (await doomed.heartbeat(claim)).status == 409, "the dead worker's fence is stale"
    assert_chain(events, "claimed")


@pytest.mark.parametrize(
    "settings_overrides", [{"lease_seconds": 0.3, "reaper_interval": 0.05, "max_attempts": 2}]
)
async def test_task_fails_after_max_expired_leases(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    task = (await create_tasks(api, pid, 1))[0]
    worker = await Worker.create(api, pid, "flaky")
    first = (await worker.claim()).ok()
    second = (await worker.claim(wait=30)).ok()  # the first lease expired and was re-queued
    assert second["attempt"] == first["attempt"] + 1
    final = await wait_for_status(api, task, "failed")
    assert "max_attempts=2" in final["status_reason"]
    events = assert_chain(await timeline(api, task), "failed")
    assert events[-1]["actor"] == "system"
    # A person's retry gives the task a fresh set of attempts.
    assert (await api.post(f"/tasks/{task}/retry")).ok()["status"] == "queued"
    assert (await worker.claim()).ok()["attempt"] == 3


async def follow(api: Api, task_id: int, until: Callable[[dict[str, Any]], bool]) -> None:
    """Follow the task's live SSE timeline until an event satisfies ``until``."""
    async with asyncio.timeout(60):
        async with api.session.get(
            f"{api.base_url}/api/v1/tasks/{task_id}/events/stream",
            headers={"Authorization": f"Bearer {api.token}"},
        ) as resp:
            async for line in resp.content:
                if line.startswith(b"data: ") and until(json.loads(line[6:])):
                    return


async def wait_for_status(api: Api, task_id: int, status: str) -> dict[str, Any]:
    await follow(api, task_id, lambda event: event.get("to_status") == status)
    task: dict[str, Any] = (await api.get(f"/tasks/{task_id}")).ok()
    return task


async def wait_for_reaper(api: Api, task_id: int, attempt: int) -> None:
    """Until the reaper ends ``attempt`` (re-queued or failed)."""
    await follow(api, task_id, lambda e: e["actor"] == "system" and e["attempt"] == attempt)


@pytest.mark.parametrize("settings_overrides", [{"lease_seconds": 0.4, "reaper_interval": 0.05}])
async def test_racing_with_expiring_leases_never_overlaps(cloud: Cloud) -> None:
    """32 racers, some of which stall past their lease: tasks are re-claimed, and still no two
    holders ever overlap. Fencing alone could hide a broken claim (docs/benchmarks.md), so the
    check is on the timeline: a claim may only follow a move back to 'queued'."""
    api, pid = cloud.api, cloud.project_id
    ids = await create_tasks(api, pid, 48)
    workers = [await Worker.create(api, pid, f"racer-{i}") for i in range(RACERS)]
    stalled: list[tuple[Worker, dict[str, Any]]] = []
    finished: set[int] = set()

    async def work(index: int, worker: Worker) -> None:
        while True:
            reply = await worker.claim(wait=1.0)
            if reply.status == 204:
                return
            claim = reply.ok()
            if index % 4 == 0 and len(stalled) < 8:
                # Stall: no heartbeat until the reaper has taken the task back; then race on.
                stalled.append((worker, claim))
                await wait_for_reaper(api, claim["task"]["id"], claim["attempt"])
                continue
            for status in ("running", "awaiting_review"):
                if (await worker.status(claim, status)).status != 200:
                    break  # lost the lease to the reaper meanwhile: the fence says stop
            else:
                finished.add(claim["task"]["id"])

    await asyncio.gather(*(work(i, w) for i, w in enumerate(workers)))
    assert stalled, "some leases expired during the race"
    for worker, claim in stalled:
        # The stalled holder woke up too late: its fence no longer holds the task.
        assert (await worker.heartbeat(claim)).status == 409
    for task_id in ids:
        task = (await api.get(f"/tasks/{task_id}")).ok()
        moves = assert_chain(await timeline(api, task_id), task["status"])
        claims = [m for m in moves if m["to_status"] == "claimed"]
        assert [c["attempt"] for c in claims] == list(range(1, len(claims) + 1))
        # Every task got done by someone, unless it ran out of attempts.
        assert (task["status"] == "awaiting_review" and task_id in finished) or (
            task["status"] == "failed" and "max_attempts" in task["status_reason"]
        )


@pytest.mark.parametrize("settings_overrides", [{"lease_seconds": 0.3, "reaper_interval": 0.05}])
async def test_a_task_back_from_an_expired_lease_keeps_its_place(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    first = (await create_tasks(api, pid, 1))[0]
    worker = await Worker.create(api, pid, "w")
    lost = (await worker.claim()).ok()
    assert lost["task"]["id"] == first
    later = (await create_tasks(api, pid, 1))[0]  # queued after the first one
    await wait_for_reaper(api, first, lost["attempt"])
    # Same priority: the older task goes first although it re-entered the queue last.
    assert (await worker.claim()).ok()["task"]["id"] == first
    assert (await worker.claim()).ok()["task"]["id"] == later


@pytest.mark.parametrize("settings_overrides", [{"sse_keepalive_seconds": 300}])
async def test_a_claim_is_seen_live_on_the_task_stream(cloud: Cloud) -> None:
    """The claim's own wake-up reaches event streams (on PostgreSQL it is sent by the claim
    statement itself). Keepalives are 5 minutes apart here, so only a wake-up can deliver the
    event before the follower's deadline."""
    api, pid = cloud.api, cloud.project_id
    task = (await create_tasks(api, pid, 1))[0]
    worker = await Worker.create(api, pid, "w")
    (await api.post(f"/tasks/{task}/comments", {"body": "marker"})).ok(201)
    streaming = asyncio.Event()

    def until(event: dict[str, Any]) -> bool:
        if event["kind"] == "comment":
            streaming.set()  # the stream is up and has replayed everything so far
        return event.get("to_status") == "claimed"

    seen = asyncio.create_task(follow(api, task, until))
    await asyncio.wait_for(streaming.wait(), 60)
    (await worker.claim()).ok()
    await asyncio.wait_for(seen, 60)
