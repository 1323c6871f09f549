"""Hub.shared: streams of one topic share a read, but never one that began before the change
that woke them (no lost update)."""

from __future__ import annotations

import asyncio

from cloud_api.dispatch.wakeups import Hub


async def test_waiters_at_the_same_point_share_one_read() -> None:
    hub = Hub()
    calls = 0
    release = asyncio.Event()

    async def read() -> list[int]:
        nonlocal calls
        calls += 1
        await release.wait()
        return [calls]

    with hub.subscribe(["project:1"]):
        hub.publish(["project:1"])
        waiters = [asyncio.create_task(hub.shared("project:1", ("p", 0), read)) for _ in range(50)]
        await asyncio.sleep(0)  # let them all reach the read
        release.set()
        results = await asyncio.gather(*waiters)
    assert calls == 1
    assert results == [[1]] * 50


async def test_a_read_that_began_before_a_publish_is_not_joined() -> None:
    hub = Hub()
    started = asyncio.Event()
    release = asyncio.Event()
    calls = 0

    async def read() -> int:
        nonlocal calls
        calls += 1
        mine = calls
        started.set()
        await release.wait()
        return mine

    with hub.subscribe(["task:7"]):
        first = asyncio.create_task(hub.shared("task:7", ("t", 3), read))
        await started.wait()
        # A change commits and is published while the first read is in flight: a waiter woken
        # by it must read again, or it could miss that change.
        hub.publish(["task:7"])
        second = asyncio.create_task(hub.shared("task:7", ("t", 3), read))
        third = asyncio.create_task(hub.shared("task:7", ("t", 3), read))
        await asyncio.sleep(0)
        release.set()
        assert await first == 1
        assert await second == 2 and await third == 2  # the two late ones share the new read
    assert calls == 2


async def test_a_waiter_hanging_up_does_not_cancel_the_shared_read() -> None:
    hub = Hub()
    release = asyncio.Event()

    async def read() -> str:
        await release.wait()
        return "rows"

    leaving = asyncio.create_task(hub.shared("project:2", ("p", 0), read))
    staying = asyncio.create_task(hub.shared("project:2", ("p", 0), read))
    await asyncio.sleep(0)
    leaving.cancel()
    await asyncio.sleep(0)
    release.set()
    assert await staying == "rows"
    assert leaving.cancelled()
