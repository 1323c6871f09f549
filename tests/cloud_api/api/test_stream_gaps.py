"""Cursor readers of the timeline lose nothing while many transactions write at once.

On PostgreSQL, event ids come from a sequence in one order and commit in another: a writer
that took id 104 and is still open while 105 commits is the case that lost events (issue 15).
Here writers comment on and cancel tasks through the API, and others write through the store
directly and hold their transaction open after taking an id (or roll it back, leaving a hole
for good); meanwhile a long-lived SSE stream, an SSE stream that keeps reconnecting with
``Last-Event-ID``, ``?after=`` pollers and a worker's signals long-poll read along. At the end
every reader's ids equal the table's: none missing, none twice, in order. On both databases.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from sqlalchemy import select

from cloud_api.domain.states import Actor, TaskStatus
from cloud_api.services import SERVICES
from cloud_api.store import tasks as task_store
from cloud_api.store.db import Database
from cloud_api.store.tables import task_events
from tests.cloud_api.api.test_api_stream import stream
from tests.cloud_api.dashboard.test_dashboard_http import jar_session, sign_in
from tests.conftest import Cloud
from tests.support.client import Api, Worker

#: How long the writers write; the readers then catch up (bounded by CATCH_UP).
WRITE_SECONDS = 4.0
CATCH_UP = 30.0
TASKS = 6


class RolledBack(Exception):
    pass


async def held_write(
    db: Database, task_id: int, write: Callable[[Any, Any], Awaitable[object]], hold: float
) -> None:
    """``write`` in a transaction that stays open ``hold`` seconds after taking its id."""
    async with db.write() as tx:
        row = await task_store.load(tx, task_id)
        assert row is not None
        await write(tx, row)
        await asyncio.sleep(hold)


async def rolled_back_write(db: Database, task_id: int) -> None:
    """An event whose transaction rolls back: its id never commits (a hole readers pass)."""
    with contextlib.suppress(RolledBack):
        async with db.write() as tx:
            row = await task_store.load(tx, task_id)
            assert row is not None
            await task_store.add_event(tx, row, "comment", Actor.USER, data={"body": "undone"})
            await asyncio.sleep(random.uniform(0, 0.1))
            raise RolledBack


def comment(body: str) -> Callable[[Any, Any], Awaitable[object]]:
    async def write(tx: Any, row: Any) -> object:
        return await task_store.add_event(tx, row, "comment", Actor.USER, data={"body": body})

    return write


async def cancel(tx: Any, row: Any) -> object:
    return await task_store.transition(tx, row, TaskStatus.CANCELLED, Actor.USER)


async def table_ids(db: Database, *where: Any) -> list[int]:
    async with db.read() as conn:
        stmt = select(task_events.c.id).where(*where).order_by(task_events.c.id)
        return list((await conn.execute(stmt)).scalars())


def problems(name: str, got: list[int], expected: list[int]) -> list[str]:
    """What is wrong with a reader's ids against the table's: missing, twice, out of order."""
    missing = sorted(set(expected) - set(got))
    if missing:
        return [f"{name} missed {len(missing)} of {len(expected)} events: {missing[:10]}"]
    if len(got) != len(set(got)):
        return [f"{name} got {len(got) - len(set(got))} events twice"]
    if got != expected:
        return [f"{name}: out of order, or ids not in the table"]
    return []


class Readers:
    """Each reader runs until cancelled; :meth:`caught_up` says when all have seen the end."""

    def __init__(self, api: Api, project_id: int, task_ids: list[int], worker: Worker) -> None:
        self.api = api
        self.pid = project_id
        self.task_ids = task_ids
        self.worker = worker
        self.follower: list[int] = []
        self.reconnecting: list[int] = []
        self.polled: dict[int, list[int]] = {t: [] for t in task_ids}
        self.signals: list[int] = []

    def caught_up(
        self, project: list[int], tasks: dict[int, list[int]], signals: list[int]
    ) -> bool:
        """Every reader has reached the last id the table holds for it."""
        pairs = [(self.follower, project), (self.reconnecting, project), (self.signals, signals)]
        pairs += [(self.polled[t], tasks[t]) for t in self.task_ids]
        return all((got[-1] if got else 0) >= (want[-1] if want else 0) for got, want in pairs)

    async def follow(self) -> None:
        """One stream for the whole test, never reconnecting."""
        async with stream(self.api, f"/projects/{self.pid}/events/stream") as events:
            while True:
                self.follower.append((await events.next()).id)

    async def reconnect(self) -> None:
        """Drops its connection every few frames and resumes with Last-Event-ID."""
        while True:
            last = self.reconnecting[-1] if self.reconnecting else None
            path = f"/projects/{self.pid}/events/stream"
            async with stream(self.api, path, last_event_id=last) as events:
                for _ in range(random.randint(1, 15)):
                    self.reconnecting.append((await events.next()).id)

    async def poll(self) -> None:
        """``?after=`` polling of every task's timeline, in small pages."""
        cursors = dict.fromkeys(self.task_ids, 0)
        while True:
            for task_id in self.task_ids:
                params = {"after": cursors[task_id], "limit": 7}
                page = (await self.api.get(f"/tasks/{task_id}/events", params=params)).ok()
                ids = [item["id"] for item in page["items"]]
                self.polled[task_id] += ids
                cursors[task_id] = ids[-1] if ids else cursors[task_id]
            await asyncio.sleep(0.01)

    async def watch_signals(self) -> None:
        cursor = 0
        while True:
            params = {"after": cursor, "wait": 0.5}
            got = (await self.worker.api.get("/worker/signals", params=params)).ok()
            self.signals += [c["event_id"] for c in got["cancellations"]]
            cursor = got["cursor"]


async def until(deadline: float, step: Callable[[], Coroutine[Any, Any, object]]) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() < deadline:
        await step()


async def test_every_reader_gets_every_event_once_in_order(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    db = cloud.app[SERVICES].db
    task_ids = [
        (await api.post(f"/projects/{pid}/tasks", {"title": f"t{i}"})).ok(201)["id"]
        for i in range(TASKS)
    ]
    worker = await Worker.create(api, pid, "signalled")
    readers = Readers(api, pid, task_ids, worker)
    reading = [
        asyncio.create_task(c)
        for c in (readers.follow(), readers.reconnect(), readers.poll(), readers.watch_signals())
    ]
    deadline = asyncio.get_running_loop().time() + WRITE_SECONDS
    numbers = itertools.count()

    async def api_comment() -> None:
        task_id = random.choice(task_ids)
        body = {"body": f"c{next(numbers)}"}
        (await api.post(f"/tasks/{task_id}/comments", body)).ok(201)

    async def held_comment() -> None:
        hold = random.uniform(0.05, 0.4)
        await held_write(db, random.choice(task_ids), comment(f"held{next(numbers)}"), hold)

    async def claimed_task() -> int:
        """A task this worker holds (created queued, then claimed)."""
        (await api.post(f"/projects/{pid}/tasks", {"title": "s", "status": "queued"})).ok(201)
        claim = (await worker.claim()).ok()
        task_id: int = claim["task"]["id"]
        return task_id

    async def api_cancel() -> None:
        (await api.post(f"/tasks/{await claimed_task()}/cancel")).ok()

    async def held_cancel() -> None:
        await held_write(db, await claimed_task(), cancel, random.uniform(0.05, 0.4))

    async def rollback() -> None:
        await rolled_back_write(db, random.choice(task_ids))
        await asyncio.sleep(0.1)

    steps = [api_comment] * 6 + [held_comment] * 2 + [api_cancel] * 3 + [held_cancel, rollback]
    await asyncio.gather(*(until(deadline, step) for step in steps))

    from_project = await table_ids(db, task_events.c.project_id == pid)
    signals = await table_ids(
        db,
        task_events.c.worker_id == worker.id,
        task_events.c.kind == "status",
        task_events.c.to_status == TaskStatus.CANCELLED.value,
    )
    per_task = {t: await table_ids(db, task_events.c.task_id == t) for t in task_ids}
    # Bounded: a reader that lost the last event would wait for ever; the checks then say so.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(CATCH_UP):
            while not readers.caught_up(from_project, per_task, signals):
                await asyncio.sleep(0.05)
    for task in reading:
        task.cancel()
    for outcome in await asyncio.gather(*reading, return_exceptions=True):
        if not isinstance(outcome, asyncio.CancelledError):
            raise AssertionError(f"a reader failed: {outcome!r}")

    assert len(signals) > 5 and len(from_project) > 50, "the writers wrote enough to race"
    wrong = problems("the long-lived stream", readers.follower, from_project)
    wrong += problems("the reconnecting stream", readers.reconnecting, from_project)
    for task_id in task_ids:
        poller = f"the ?after= poller of task {task_id}"
        wrong += problems(poller, readers.polled[task_id], per_task[task_id])
    wrong += problems("the signals long-poll", readers.signals, signals)
    assert not wrong, "\n".join(wrong)


async def test_the_board_starts_its_stream_below_an_event_still_committing(cloud: Cloud) -> None:
    """The board renders its cards and names where its live stream starts: never past an
    event that commits after the page was rendered (its card would stay stale)."""
    api, pid = cloud.api, cloud.project_id
    db = cloud.app[SERVICES].db
    task_id = (await api.post(f"/projects/{pid}/tasks", {"title": "t"})).ok(201)["id"]
    taken, release = asyncio.Event(), asyncio.Event()
    held_id = 0

    async def held(tx: Any, row: Any) -> object:
        nonlocal held_id
        held_id = await task_store.add_event(tx, row, "comment", Actor.USER, data={"body": "h"})
        taken.set()
        return await release.wait()

    async with jar_session() as http:
        # Signed in first: signing in writes, and SQLite's one writer is about to be held.
        (await sign_in(http, cloud, f"/projects/{pid}")).close()
        writer = asyncio.create_task(held_write(db, task_id, held, 0))
        try:
            await taken.wait()
            if db.backend == "postgresql":
                comment = {"body": "later"}
                later = (await api.post(f"/tasks/{task_id}/comments", comment)).ok(201)["id"]
                assert later > held_id
            async with http.get(f"{cloud.url}/projects/{pid}") as board:
                found = re.search(r"/live\?after=(\d+)", await board.text())
        finally:
            release.set()
            await writer
    assert found is not None
    after = int(found.group(1))
    assert after < held_id, "the stream starts below the event still committing"
    async with stream(api, f"/projects/{pid}/events/stream?after={after}") as events:
        while (frame := await events.next()).id < held_id:
            pass
    assert frame.id == held_id
