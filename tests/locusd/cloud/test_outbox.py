"""The outbox on its own (senders are plain coroutines here; against the real cloud see
test_delivery.py): durability across a crash, order per task, backoff, dead entries."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from locusd.cloud.errors import CloudError, Conflict, ServerError
from locusd.cloud.outbox import Backoff, Outbox, OutboxEntry
from tests.locusd.cloud.conftest import draining, settled

FAST = Backoff(base=0.001, cap=0.005)
Hook = Callable[[OutboxEntry], Awaitable[None]]


class Recorder:
    """A sender that records (task, n) of each successful send; hooks make some tries fail
    or wait."""

    def __init__(self) -> None:
        self.sent: list[tuple[int | None, int]] = []
        self.tries: list[tuple[int, str]] = []  # (entry id, idempotency key) of every try
        self.hooks: dict[int, Hook] = {}
        self._waiters: list[tuple[int, asyncio.Event]] = []

    async def __call__(self, entry: OutboxEntry) -> None:
        self.tries.append((entry.id, entry.idempotency_key))
        hook = self.hooks.get(entry.payload["n"])
        if hook is not None:
            await hook(entry)
        self.sent.append((entry.task_id, entry.payload["n"]))
        for count, event in self._waiters:
            if len(self.sent) >= count:
                event.set()

    async def until_sent(self, count: int) -> None:
        event = asyncio.Event()
        self._waiters.append((count, event))
        if len(self.sent) >= count:
            event.set()
        await asyncio.wait_for(event.wait(), 10)


def failing(times: int, error: Callable[[], Exception], tried: asyncio.Event | None = None) -> Hook:
    """A hook that raises ``error()`` on the first ``times`` tries (then lets the send pass),
    and sets ``tried`` on the last failing one."""
    count = 0

    async def hook(entry: OutboxEntry) -> None:
        nonlocal count
        count += 1
        if count <= times:
            if count == times and tried is not None:
                tried.set()
            raise error()

    return hook


def unavailable() -> CloudError:
    return ServerError("503 Service Unavailable", status=503, retryable=True)


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "outbox.sqlite", backoff=FAST)


def test_enqueued_entries_survive_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "state" / "outbox.sqlite"
    first = Outbox(path)
    ids = [first.enqueue("status", 7, {"n": 1}), first.enqueue("log", 7, {"n": 2, "text": "é"})]
    # No close, no drain: the process "dies" here; a new one opens the same file.
    second = Outbox(path)
    entries = second.pending()
    assert [e.id for e in entries] == ids
    assert [(e.kind, e.task_id, e.payload) for e in entries] == [
        ("status", 7, {"n": 1}),
        ("log", 7, {"n": 2, "text": "é"}),
    ]
    assert [e.idempotency_key for e in entries] == [e.idempotency_key for e in first.pending()]
    assert len({e.idempotency_key for e in entries}) == 2
    assert all(e.state == "pending" and e.attempts == 0 for e in entries)
    assert path.stat().st_mode & 0o777 == 0o600


async def test_a_reopened_outbox_sends_what_the_dead_one_left(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    dead = Outbox(path)
    ids = [dead.enqueue("log", 1, {"n": n}) for n in range(3)]
    revived = Outbox(path, backoff=FAST)
    sender = Recorder()
    async with draining(revived, sender):
        await settled(revived)
    assert sender.sent == [(1, 0), (1, 1), (1, 2)]
    assert dead.pending() == [] and revived.pending_count() == 0
    assert [getattr(revived.get(i), "state", None) for i in ids] == ["sent"] * 3


async def test_order_holds_per_task_while_other_tasks_go_on(outbox: Outbox) -> None:
    sender = Recorder()
    release, blocked = asyncio.Event(), asyncio.Event()

    async def hold(entry: OutboxEntry) -> None:
        blocked.set()
        await release.wait()

    sender.hooks[10] = hold  # task 1's first entry hangs until released
    async with draining(outbox, sender):
        outbox.enqueue("status", 1, {"n": 10})
        outbox.enqueue("log", 1, {"n": 11})
        for n in range(20, 25):
            outbox.enqueue("log", 2, {"n": n})
        outbox.enqueue("log", None, {"n": 30})  # not about a task: a lane of its own
        await asyncio.wait_for(blocked.wait(), 10)
        await sender.until_sent(6)  # task 2 and the task-less entry went through meanwhile
        assert {(1, 10), (1, 11)}.isdisjoint(sender.sent)
        assert [e.payload["n"] for e in outbox.pending()] == [10, 11]
        release.set()
        await settled(outbox)
    assert [n for task, n in sender.sent if task == 2] == [20, 21, 22, 23, 24]
    assert sender.sent[-2:] == [(1, 10), (1, 11)]


async def test_retryable_errors_back_off_and_retry_with_the_same_key(outbox: Outbox) -> None:
    sender = Recorder()
    third_failure = asyncio.Event()
    sender.hooks[1] = failing(3, unavailable, third_failure)
    async with draining(outbox, sender):
        first = outbox.enqueue("status", 1, {"n": 1})
        outbox.enqueue("log", 1, {"n": 2})
        await asyncio.wait_for(third_failure.wait(), 10)
        # While the cloud fails, the entry and the one queued behind it stay pending.
        assert [e.payload["n"] for e in outbox.pending()] == [1, 2]
        await settled(outbox)
    assert sender.sent == [(1, 1), (1, 2)]
    keys = {key for entry_id, key in sender.tries if entry_id == first}
    assert len([t for t in sender.tries if t[0] == first]) == 4 and len(keys) == 1
    entry = outbox.get(first)
    assert entry is not None and entry.state == "sent" and entry.attempts == 3
    assert entry.last_error is not None and "503" in entry.last_error


async def test_a_refused_entry_dies_without_blocking_the_rest(outbox: Outbox) -> None:
    sender = Recorder()

    def stale() -> CloudError:
        return Conflict("409 Conflict: your claim is stale", status=409)

    sender.hooks[1] = failing(1, stale)
    async with draining(outbox, sender):
        doomed = outbox.enqueue("status", 1, {"n": 1})
        outbox.enqueue("log", 1, {"n": 2})
        outbox.enqueue("log", 2, {"n": 3})
        await settled(outbox)
    assert sorted(sender.sent) == [(1, 2), (2, 3)]
    [dead] = outbox.dead()
    assert dead.id == doomed and dead.attempts == 1
    assert dead.last_error == "409 Conflict: your claim is stale"
    assert len([t for t in sender.tries if t[0] == doomed]) == 1  # never retried


async def test_an_unexpected_sender_error_is_retried_not_lost(outbox: Outbox) -> None:
    sender = Recorder()
    sender.hooks[1] = failing(2, lambda: RuntimeError("bug"))
    async with draining(outbox, sender):
        outbox.enqueue("status", 1, {"n": 1})
        await settled(outbox)
    assert sender.sent == [(1, 1)] and outbox.dead() == []


async def test_enqueue_wakes_an_idle_drainer(tmp_path: Path) -> None:
    # A backoff of an hour: anything but an immediate wake-up would time the test out.
    outbox = Outbox(tmp_path / "o.sqlite", backoff=Backoff(base=3600, cap=3600))
    sender = Recorder()
    async with draining(outbox, sender):
        await settled(outbox)  # idle, nothing to do
        for n in range(3):
            outbox.enqueue("log", n, {"n": n})
            await sender.until_sent(n + 1)
    assert sender.sent == [(0, 0), (1, 1), (2, 2)]


async def test_stopping_mid_send_leaves_the_entry_pending(outbox: Outbox) -> None:
    sender = Recorder()
    started = asyncio.Event()

    async def hang(entry: OutboxEntry) -> None:
        started.set()
        await asyncio.Event().wait()

    sender.hooks[1] = hang
    async with draining(outbox, sender):
        entry_id = outbox.enqueue("status", 1, {"n": 1})
        await asyncio.wait_for(started.wait(), 10)
    entry = outbox.get(entry_id)
    assert entry is not None and entry.state == "pending"
    # The next drain sends it, under the same key (a replay if the cloud had applied it).
    sender.hooks.clear()
    async with draining(outbox, sender):
        await settled(outbox)
    assert [key for i, key in sender.tries] == [entry.idempotency_key] * 2


async def test_one_outbox_has_one_drainer(outbox: Outbox) -> None:
    sender = Recorder()
    async with draining(outbox, sender):
        outbox.enqueue("log", 1, {"n": 1})
        await sender.until_sent(1)  # the first drainer is running
        with pytest.raises(RuntimeError, match="already being drained"):
            await outbox.drain_forever(Recorder(), asyncio.Event())


def test_backoff_grows_with_jitter_up_to_the_cap_and_honours_retry_after() -> None:
    backoff = Backoff(base=1, cap=30)
    assert [backoff.delay(n, rand=lambda: 1.0) for n in (1, 2, 3, 4, 5, 6, 100)] == [
        1,
        2,
        4,
        8,
        16,
        30,
        30,
    ]
    assert [backoff.delay(n, rand=lambda: 0.0) for n in (1, 2, 6)] == [0.5, 1, 15]
    assert backoff.delay(1, retry_after=7, rand=lambda: 0.0) == 7
    assert backoff.delay(1, retry_after=600, rand=lambda: 0.0) == 30
