"""WorkWaiters: who a queued task's wake-up goes to, and how a wake-up that was not used moves
on. The claim itself is played by the test (``begin_check`` / ``checked``), so every ordering
that matters can be set up exactly; tests/cloud_api/dispatch/test_targeted_wakeups.py runs the
same rules through the real server."""

from __future__ import annotations

import asyncio
from contextlib import ExitStack

from cloud_api.dispatch.work_waiters import (
    Waiter,
    WorkToken,
    WorkWaiters,
    parse_work_topic,
    work_topic,
)
from cloud_api.store.db import NOTIFY_PAYLOAD_BYTES, notify_payloads

APP, LIB = "example.com/acme/app", "example.com/acme/lib"


class Counted(WorkWaiters):
    def __init__(self) -> None:
        self.wakes: list[str] = []
        super().__init__(self.wakes.append)


def token(task_id: int, repository: str | None = None, project_id: int = 1) -> WorkToken:
    return WorkToken(project_id, task_id, repository)


async def woken(waiter: Waiter) -> bool:
    """Whether the waiter holds a wake-up right now (wait() answers at once if it does)."""
    return await waiter.wait(0)


async def test_a_task_wakes_one_eligible_waiter_the_one_waiting_longest() -> None:
    hub = Counted()
    with ExitStack() as stack:
        lib = [stack.enter_context(hub.waiting(1, [LIB])) for _ in range(5)]
        app = [stack.enter_context(hub.waiting(1, [APP, LIB])) for _ in range(5)]
        other_project = stack.enter_context(hub.waiting(2, [APP]))
        assert hub.dispatch(token(10, APP))
        assert [await woken(w) for w in app] == [True, False, False, False, False]
        assert not any([await woken(w) for w in lib]) and not await woken(other_project)
        # A task with no repository suits anyone: the next in line, whatever it serves.
        assert hub.dispatch(token(11))
        assert await woken(lib[0]) and not any([await woken(w) for w in lib[1:]])
        assert hub.wakes == ["queued", "queued"]


async def test_nobody_is_woken_for_a_task_no_waiter_can_take() -> None:
    hub = Counted()
    with hub.waiting(1, [LIB]) as lib, hub.waiting(1, [APP], task_id=7) as only_seven:
        assert not hub.dispatch(token(8, APP))  # lib does not serve app; the other wants 7
        assert not await woken(lib) and not await woken(only_seven)
        assert hub.dispatch(token(7, APP)) and await woken(only_seven)
    assert hub.wakes == ["queued"]


async def test_a_task_a_waiter_passes_over_wakes_the_next_one_instead() -> None:
    """A worker whose user gave a task back (``locus cancel --requeue``) claims excluding it:
    its wake-up goes to a waiter that can take it, and wakes the excluding one for others."""
    hub = Counted()
    with hub.waiting(1, [APP], exclude=[7]) as gave_back, hub.waiting(1, [APP]) as other:
        assert hub.dispatch(token(7, APP))
        assert not await woken(gave_back) and await woken(other)
        assert hub.dispatch(token(8, APP)) and await woken(gave_back)


async def test_a_waiter_that_leaves_without_claiming_passes_the_wake_up_on() -> None:
    hub = Counted()
    got: list[str] = []

    async def long_poll(name: str, entered: asyncio.Event) -> None:
        with hub.waiting(1, [APP]) as waiter:
            waiter.begin_check()
            waiter.checked(None)  # the first look found nothing
            entered.set()
            await waiter.wait(30)
            got.append(name)  # the next claim would find the task

    first_in, second_in = asyncio.Event(), asyncio.Event()
    hung_up = asyncio.create_task(long_poll("hung up", first_in))
    await first_in.wait()
    staying = asyncio.create_task(long_poll("staying", second_in))
    await second_in.wait()
    hub.dispatch(token(10, APP))  # goes to the one waiting longest …
    hung_up.cancel()  # … whose client hung up before it could claim (a cancelled handler)
    await asyncio.wait_for(staying, 5)
    assert got == ["staying"] and hung_up.cancelled()
    assert hub.wakes == ["queued", "passed"]


async def test_a_wake_up_is_used_up_by_taking_its_task_or_by_finding_nothing() -> None:
    hub = Counted()
    with hub.waiting(1, [APP]) as first, hub.waiting(1, [APP]) as second:
        hub.dispatch(token(10, APP))
        first.begin_check()
        first.checked(10)  # took the task that woke it
        hub.dispatch(token(11, APP))
        second.begin_check()
        second.checked(None)  # someone else (another replica, a fresh claim) took task 11
    assert hub.wakes == ["queued", "queued"]  # nothing passed on when they left


async def test_a_waiter_that_took_another_task_passes_its_wake_up_on() -> None:
    hub = Counted()
    with hub.waiting(1, [LIB]) as lib_only, hub.waiting(1, [APP]) as app_only:
        with hub.waiting(1, [APP, LIB]) as both:
            # Both tasks are queued; the lib task's wake-up reaches `both` (lib_only holds
            # one already from an earlier task it has not claimed for yet).
            hub.dispatch(token(9, LIB))
            hub.dispatch(token(10, LIB))
            hub.dispatch(token(11, APP))
            assert await woken(lib_only) and await woken(both) and await woken(app_only)
            lib_only.begin_check()
            lib_only.checked(9)  # took its own, and is waiting again
            both.begin_check()
            both.checked(11)  # the app task had the higher priority
            app_only.begin_check()
            app_only.checked(None)  # its task is gone: used up
            assert not await woken(lib_only)
        # `both` left with the app task: the lib task it was woken for is still queued.
        assert await woken(lib_only)
    assert hub.wakes == ["queued", "queued", "queued", "passed"]


async def test_a_waiter_checking_now_is_handed_a_task_committed_during_its_claim() -> None:
    """Register before looking: a claim may have read the queue just before a commit; the
    wake-up then goes to it (nobody else is waiting), and it claims once more."""
    hub = Counted()
    with hub.waiting(1, [APP]) as waiter:
        waiter.begin_check()
        hub.dispatch(token(10, APP))  # published while the claim was running
        waiter.checked(None)  # the claim's snapshot predates the task
        assert await woken(waiter)  # so it must look again …
        waiter.begin_check()
        waiter.checked(10)  # … and finds it
    assert hub.wakes == ["queued"]


async def test_a_claim_that_took_the_task_its_wake_up_arrived_for_meanwhile_uses_it_up() -> None:
    """PostgreSQL: the NOTIFY can arrive while a claim that already saw the commit runs."""
    hub = Counted()
    with hub.waiting(1, [APP]) as other:
        with hub.waiting(1, [APP]) as waiter:
            waiter.begin_check()
            hub.dispatch(token(10, APP))  # to the other waiter …
            hub.dispatch(token(11, APP))  # … and to this one, whose claim runs
            other.begin_check()  # (the other one claims too)
            waiter.checked(11)  # it took task 11 already
        other.checked(10)
        assert not await woken(other)  # nobody is woken again for task 11
    assert hub.wakes == ["queued", "queued"]


async def test_when_every_eligible_waiter_holds_a_wake_up_more_tasks_wake_nobody() -> None:
    hub = Counted()
    with hub.waiting(1, [APP]) as a, hub.waiting(1, [APP]) as b:
        assert hub.dispatch(token(1, APP)) and hub.dispatch(token(2, APP))
        assert not hub.dispatch(token(3, APP))  # both will claim after this commit anyway
        a.begin_check()  # a claims: it may be handed the next one
        assert hub.dispatch(token(4, APP))
        assert await woken(a) and await woken(b)


async def test_wake_all_reaches_every_waiter_and_is_never_passed_on() -> None:
    hub = Counted()
    with hub.waiting(1, [APP]) as a, hub.waiting(2, [LIB]) as b:
        hub.dispatch(token(1, APP))
        hub.wake_all()
        assert await woken(a) and await woken(b)
        a.begin_check()
        a.checked(None)
    with hub.waiting(1, [APP]) as later:  # b left holding only "check again"
        assert not await woken(later)
    assert hub.wakes == ["queued", "all", "all"]


def test_work_topics_round_trip_and_a_bare_one_means_check_again() -> None:
    assert parse_work_topic(work_topic(3, 41, APP)) == WorkToken(3, 41, APP)
    assert parse_work_topic(work_topic(3, 41, None)) == WorkToken(3, 41, None)
    assert parse_work_topic(work_topic(3, 41, "h/a:b")) == WorkToken(3, 41, "h/a:b")
    assert parse_work_topic("work:3") == WorkToken(3, None, None)  # a previous-version replica
    assert parse_work_topic("task:3") is None
    assert parse_work_topic("work:x:1:") is None and parse_work_topic("work:1:y:") is None


def test_notify_payloads_stay_under_postgresqls_limit_and_keep_every_topic() -> None:
    topics = {work_topic(1, i, f"example.com/acme/{'r' * 200}{i}") for i in range(300)}
    topics |= {f"task:{i}" for i in range(300)}
    payloads = notify_payloads(topics)
    assert len(payloads) > 1
    assert all(len(p.encode()) <= NOTIFY_PAYLOAD_BYTES for p in payloads)
    assert sorted(t for p in payloads for t in p.split("\n")) == sorted(topics)
    assert notify_payloads(set()) == []
