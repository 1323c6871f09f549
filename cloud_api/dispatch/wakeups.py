"""Wake-ups: a waiter subscribes to topics, then checks the database, then waits.

Subscribing *before* checking means a publish that lands between the check and the wait is
never lost. Topics are plain strings: ``work:<project>:<task>:<repository>`` (a task became
claimable: it wakes one waiter that can take it, see :mod:`cloud_api.dispatch.work_waiters`),
``task:<id>`` / ``project:<id>`` (timeline grew), ``worker:<id>`` (a signal for one worker).

On PostgreSQL every replica LISTENs on one channel, and writers ``pg_notify`` it on commit
(:mod:`cloud_api.store.db`), so a task created on replica B wakes a worker waiting on replica A.
On SQLite there is one process, and commits publish straight into the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator
from typing import Any, TypeVar

from cloud_api.dispatch.work_waiters import WorkWaiters, parse_work_topic
from cloud_api.store.db import NOTIFY_CHANNEL, Database, asyncpg_dsn

log = logging.getLogger("cloud_api.wakeups")
T = TypeVar("T")


class Subscription:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> bool:  # noqa: ASYNC109 - the deadline is the point
        """True if woken, False on timeout. Re-arms itself for the next wait."""
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError:
            return False
        finally:
            self._event.clear()
        return True


class Hub:
    """In-process fan-out of topics to subscriptions; work tokens go to the claim waiters."""

    def __init__(self, on_wake: Callable[[str], None] | None = None) -> None:
        #: The claim long-polls; ``on_wake`` counts the waiters a task woke (metrics).
        self.work = WorkWaiters(on_wake)
        self._subs: defaultdict[str, set[Subscription]] = defaultdict(set)
        #: Publishes per topic so far: lets a waiter tell whether a read began after its wake.
        self._published: defaultdict[str, int] = defaultdict(int)
        self._reads: dict[Hashable, tuple[int, asyncio.Future[Any]]] = {}

    async def shared(self, topic: str, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        """Run ``read`` once for every waiter of ``topic`` that wants the same ``key`` now.

        A change wakes every stream watching a project, and they all want the same new rows:
        one query serves them all instead of one each. A read in flight is joined only if it
        began after every publish this waiter has seen, so it cannot miss the change that woke
        the waiter (a publish follows its commit).
        """
        wanted = self._published[topic]
        entry = self._reads.get(key)
        if entry is None or entry[0] < wanted:
            future: asyncio.Future[T] = asyncio.ensure_future(read())
            entry = (wanted, future)
            self._reads[key] = entry

            def forget(done: asyncio.Future[Any], key: Hashable = key) -> None:
                current = self._reads.get(key)
                if current is not None and current[1] is done:
                    del self._reads[key]

            future.add_done_callback(forget)
        # Shielded: one waiter hanging up must not cancel the read the others are waiting for.
        result: T = await asyncio.shield(entry[1])
        return result

    @contextlib.contextmanager
    def subscribe(self, topics: Iterable[str]) -> Iterator[Subscription]:
        sub = Subscription()
        topics = list(topics)
        for topic in topics:
            self._subs[topic].add(sub)
        try:
            yield sub
        finally:
            for topic in topics:
                subs = self._subs.get(topic)
                if subs is not None:
                    subs.discard(sub)
                    if not subs:
                        del self._subs[topic]

    def publish(self, topics: Iterable[str]) -> None:
        for topic in topics:
            token = parse_work_topic(topic)
            if token is not None:
                self.work.dispatch(token)
                continue
            if topic in self._subs:
                self._published[topic] += 1
            for sub in self._subs.get(topic, ()):
                sub.fire()

    def wake_all(self) -> None:
        """Wake every waiter so it re-checks the database (after a lost LISTEN connection)."""
        self.publish(list(self._subs))
        self.work.wake_all()


class PgListener:
    """Keeps one LISTEN connection per replica and feeds the hub; reconnects if it drops."""

    def __init__(self, db: Database, hub: Hub) -> None:
        self._dsn = asyncpg_dsn(db.url)
        self._hub = hub
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pg-listener")
        # Readiness: until LISTEN is in place, a wake-up could be missed.
        async with asyncio.timeout(30):
            await self.connected.wait()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self._hub.publish(payload.split("\n"))

    async def _run(self) -> None:
        import asyncpg

        backoff = 0.1
        while True:
            try:
                conn = await asyncpg.connect(self._dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("LISTEN connection failed (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _c, lost=lost: lost.set())
            try:
                await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
                backoff = 0.1
                self.connected.set()
                # Anything published while we were away may have been missed: wake everyone
                # so they re-check the database.
                self._hub.wake_all()
                await lost.wait()
                log.warning("LISTEN connection lost; reconnecting")
            finally:
                self.connected.clear()
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1)
