"""The clients of a fault run: workers racing for tasks and a user creating and approving them,
each through a :class:`RetryingApi` that logs every call for the queue checker.

A worker claims (long-poll), heartbeats and reports running → awaiting_review → verification;
some give the task back, some go silent past their lease (a crashed daemon) and then write
once more, which the fence must refuse once the task was taken over. Any final refusal means
"stop working on this task", as in locusd. The user creates tasks (several requests in
flight), approves what reaches verification, and ends the run once every task is final.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

from tests.support.queuecheck import TERMINAL, Call
from tests.support.retrying import RetryingApi

CLAIM_WAIT = 2.0
ABANDON = 0.08  # share of claims a worker drops silently (a crash)
GIVE_BACK = 0.05  # share it hands back to the queue
CREATORS = 4  # create requests in flight at once


@dataclass
class Run:
    """What the clients share: when to stop, and the lease they are held to."""

    project_id: int
    lease_seconds: float
    deadline: float  # time.monotonic() after which the user stops waiting for the queue
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def worker(api: RetryingApi, run: Run, seed: int) -> None:
    """Register, then claim and work tasks until the run stops."""
    rng = random.Random(seed)
    body = {"host": api.name, "repositories": []}
    if not (await api.post("register", "/worker/register", body, f"{api.name}-register")).ok:
        return
    n = 0
    while not run.stop.is_set():
        n += 1
        claim = await api.post(
            "claim",
            "/worker/claim",
            {"wait_seconds": CLAIM_WAIT},
            f"{api.name}-c{n}",
            wait=CLAIM_WAIT,
        )
        if claim.status == 200:
            await _hold(api, run, rng, claim.reply, f"{api.name}-c{n}")


async def _hold(
    api: RetryingApi, run: Run, rng: random.Random, claim: dict[str, Any], key: str
) -> None:
    task_id, fence = claim["task"]["id"], {k: claim[k] for k in ("attempt", "claim_token")}
    fate = rng.random()
    steps = ["heartbeat", "running", "heartbeat", "awaiting_review", "verification"]
    if fate < ABANDON:
        await asyncio.sleep(run.lease_seconds + 2)  # silent past the lease: the reaper takes it
        steps = ["running"]
    elif fate < ABANDON + GIVE_BACK:
        steps = ["running", "queued"]
    for i, step in enumerate(steps):
        path, body = f"/worker/tasks/{task_id}/status", {**fence, "status": step}
        if step == "heartbeat":
            path, body = f"/worker/tasks/{task_id}/heartbeat", fence
        op = "heartbeat" if step == "heartbeat" else "status"
        call = await api.post(
            op, path, body, f"{key}-{i}", task_id=task_id, attempt=fence["attempt"]
        )
        if not call.ok:
            return  # stale or refused: stop working on it
        await asyncio.sleep(rng.uniform(0, 0.2))  # the agent at work


async def user(api: RetryingApi, run: Run, tasks: int, spread: float) -> None:
    """Create ``tasks`` tasks over about ``spread`` seconds (so the faults meet a busy queue),
    approve each one that reaches verification, and stop the run once all are final (or at
    the deadline)."""
    pause = spread * CREATORS / tasks
    creating = asyncio.gather(*(_create(api, run, i, tasks, pause) for i in range(CREATORS)))
    approving: dict[str, asyncio.Task[Call]] = {}
    try:
        while time.monotonic() < run.deadline:
            listed = await _all_tasks(api, run.project_id)
            if creating.done() and all(t["status"] in TERMINAL for t in listed):
                break
            for t in listed:
                key = f"approve-{t['id']}-v{t['version']}"
                if t["status"] == "verification" and key not in approving:
                    approving[key] = asyncio.create_task(
                        api.post(
                            "approve",
                            f"/tasks/{t['id']}/approve",
                            {"version": t["version"]},
                            key,
                            task_id=t["id"],
                        )
                    )
            await asyncio.sleep(0.5)
    finally:
        run.stop.set()
        await creating
        await asyncio.gather(*approving.values())


async def _create(api: RetryingApi, run: Run, first: int, tasks: int, pause: float) -> None:
    for i in range(first, tasks, CREATORS):
        ref = f"fault-{i}"
        body = {"title": ref, "status": "queued"}
        await api.post("create", f"/projects/{run.project_id}/tasks", body, f"create-{i}", ref=ref)
        await asyncio.sleep(pause)


async def _all_tasks(api: RetryingApi, project_id: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = 0
    while True:
        page = await api.get(f"/projects/{project_id}/tasks", {"after": after, "limit": 200})
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        after = page["next_cursor"]
