"""Targeted wake-ups through the real server, on both databases: a queued task wakes one idle
long-poll that can take it, a wake-up a hung-up waiter cannot use moves on, and a burst of
tasks is all picked up.

Wake-ups are counted, not timed: ``locus_claim_wakeups_total`` counts each long-poll a task
woke (cause "queued") or handed a wake-up another one left unused (cause "passed"). It is
counted where the wake-up is handed over, before the woken claim runs, so once a claim has
answered, every wake-up of that task is already in the count.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from tests.cloud_api.dispatch.test_dispatch import wait_for_waiters
from tests.conftest import Cloud
from tests.support.client import Api, Reply, Worker

APP = "https://example.com/acme/app"
LIB = "https://example.com/acme/lib"


async def wakeups(api: Api) -> Counter[str]:
    text = (await api.get(f"{api.base_url}/metrics")).body
    found: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith("locus_claim_wakeups_total{"):
            labels, value = line.rsplit(" ", 1)
            found[labels.split('cause="')[1].split('"')[0]] = int(float(value))
    return found


async def serve(api: Api, pid: int, *remotes: str) -> None:
    (await api.patch(f"/projects/{pid}", {"remotes": list(remotes)})).ok()


async def queue(api: Api, pid: int, **fields: Any) -> int:
    body = {"title": "t", "status": "queued", **fields}
    task_id: int = (await api.post(f"/projects/{pid}/tasks", body)).ok(201)["id"]
    return task_id


async def first_answer(polls: dict[asyncio.Task[Reply], Worker]) -> tuple[Worker, dict[str, Any]]:
    done, _ = await asyncio.wait(polls, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    assert len(done) == 1, f"{len(done)} long-polls answered"
    poll = done.pop()
    worker = polls.pop(poll)
    claim: dict[str, Any] = poll.result().ok()
    return worker, claim


async def test_a_task_wakes_one_idle_waiter_that_serves_its_repository(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    await serve(api, pid, APP, LIB)
    app = [await Worker.create(api, pid, f"app-{i}", [APP]) for i in range(8)]
    lib = [await Worker.create(api, pid, f"lib-{i}", [LIB]) for i in range(4)]
    polls = {asyncio.create_task(w.claim(wait=30)): w for w in app + lib}
    try:
        await wait_for_waiters(api, 12)
        before = await wakeups(api)
        task = await queue(api, pid, repository=APP)
        worker, claim = await first_answer(polls)
        assert claim["task"]["id"] == task and worker in app
        # One task, one wake-up: not the other 7 app waiters, and none of the lib ones.
        assert await wakeups(api) - before == Counter(queued=1)

        await wait_for_waiters(api, 11)
        task = await queue(api, pid)  # no repository: suits anyone, still wakes one
        worker, claim = await first_answer(polls)
        assert claim["task"]["id"] == task
        assert await wakeups(api) - before == Counter(queued=2)
    finally:
        for poll in polls:
            poll.cancel()


async def test_a_woken_waiter_whose_client_hung_up_passes_the_wake_up_on(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    gone = await Worker.create(api, pid, "gone")
    staying = await Worker.create(api, pid, "staying")
    # The first to wait (so the first to be woken) sends its claim on a socket of its own …
    url = urlsplit(cloud.url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    body = json.dumps({"wait_seconds": 30}).encode()
    head = (
        "POST /api/v1/worker/claim HTTP/1.1\r\nHost: cloud\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {gone.api.token}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    await wait_for_waiters(api, 1)
    waiting = asyncio.create_task(staying.claim(wait=30))
    await wait_for_waiters(api, 2)
    # … and hangs up. Its handler sleeps on (handlers are not cancelled on hang-up); a round
    # trip after the close lets the server see the hang-up before the task is queued.
    writer.close()
    await writer.wait_closed()
    assert await reader.read() == b""
    await wakeups(api)
    before = await wakeups(api)
    task = await queue(api, pid)
    # Without the hand-over the task would sit queued until this long-poll ran out (a 204).
    claim = (await asyncio.wait_for(waiting, 60)).ok()
    assert claim["task"]["id"] == task
    assert await wakeups(api) - before == Counter(queued=1, passed=1)


async def test_moving_a_queued_task_to_another_repository_wakes_a_waiter_of_that_one(
    cloud: Cloud,
) -> None:
    api, pid = cloud.api, cloud.project_id
    await serve(api, pid, APP, LIB)
    lib = await Worker.create(api, pid, "lib", [LIB])
    waiting = asyncio.create_task(lib.claim(wait=30))
    await wait_for_waiters(api, 1)
    before = await wakeups(api)
    task = await queue(api, pid, repository=APP)  # nobody here can take it: no wake-up
    assert await wakeups(api) - before == Counter()
    (await api.patch(f"/tasks/{task}", {"repository": LIB})).ok()
    claim = (await asyncio.wait_for(waiting, 60)).ok()
    assert claim["task"]["id"] == task
    assert await wakeups(api) - before == Counter(queued=1)


async def test_a_burst_of_tasks_in_one_transaction_is_all_picked_up(cloud: Cloud) -> None:
    """A sprint queues its 240 tasks in one transaction: 240 wake-ups at once (on PostgreSQL
    more than one NOTIFY payload holds). No long-poll may run out (answer 204) while a task it
    can take is queued: that would be a lost wake-up."""
    api, pid = cloud.api, cloud.project_id
    # Long repository names: the wake-ups of one transaction exceed NOTIFY's 8,000 bytes.
    app, lib = f"{APP}-{'a' * 150}", f"{LIB}-{'l' * 150}"
    await serve(api, pid, app, lib)
    sprint = (await api.post(f"/projects/{pid}/sprints", {"name": "burst"})).ok(201)["id"]
    repositories = [app, lib, None]
    ids = []
    for i in range(240):
        body = {"title": f"b{i}", "sprint_id": sprint, "repository": repositories[i % 3]}
        ids.append((await api.post(f"/projects/{pid}/tasks", body)).ok(201)["id"])
    workers = [
        *[await Worker.create(api, pid, f"app-{i}", [app]) for i in range(3)],
        *[await Worker.create(api, pid, f"lib-{i}", [lib]) for i in range(3)],
        *[await Worker.create(api, pid, f"both-{i}", [app, lib]) for i in range(2)],
    ]
    claimed: list[int] = []
    timed_out: list[str] = []
    all_claimed = asyncio.Event()

    async def work(worker: Worker) -> None:
        while not all_claimed.is_set():
            reply = await worker.claim(wait=30)
            if reply.status == 204:
                timed_out.append(f"worker {worker.id} after {len(claimed)} claims")
                continue
            claimed.append(reply.ok()["task"]["id"])
            if len(claimed) == len(ids):
                all_claimed.set()

    loops = [asyncio.create_task(work(w)) for w in workers]
    try:
        await wait_for_waiters(api, len(workers))
        queued = (await api.post(f"/sprints/{sprint}/queue")).ok()["queued"]
        assert sorted(queued) == sorted(ids)
        await asyncio.wait_for(all_claimed.wait(), 120)
    finally:
        for loop in loops:
            loop.cancel()
    assert sorted(claimed) == sorted(ids), "every task picked up exactly once"
    assert timed_out == [], "a long-poll slept while a task it could take was queued"
