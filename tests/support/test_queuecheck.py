"""The queue checker on hand-made histories: a sound one passes, and each kind of defect,
planted alone, is found (so the fault suite's zeros mean something)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.support.queuecheck import (
    SLACK,
    Call,
    EventRow,
    Failure,
    Outage,
    Report,
    TaskRow,
    busy,
    check,
    latencies,
)

W1, W2, USER = 7, 8, 1
DONE = {"id": 1, "status": "done", "attempt": 2}


def ev(
    id: int,
    kind: str,
    actor: str,
    actor_id: int | None,
    attempt: int,
    frm: str | None,
    to: str | None,
    task_id: int = 1,
) -> EventRow:
    return EventRow(id, task_id, kind, actor, actor_id, attempt, frm, to)


def claim_call(client: str, attempt: int, at: float, task_id: int = 1) -> Call:
    reply = {"task": {"id": task_id}, "attempt": attempt, "claim_token": "t"}
    return Call(client, "claim", f"{client}-c{attempt}", at, at + 0.01, 200, reply, wait=2.0)


def write(
    client: str, op: str, attempt: int, at: float, status: int = 200, to: str | None = None
) -> Call:
    reply = {"id": 1, "status": to, "attempt": attempt} if to else {}
    return Call(
        client, op, f"{client}-{op}-{at}", at, at + 0.01, status, reply, task_id=1, attempt=attempt
    )


def sound() -> tuple[list[TaskRow], list[EventRow], list[Call]]:
    """One task, created, claimed by w1, worked, approved; one lease lost to the reaper and
    taken over by w2 on the way, with w1's late write refused."""
    tasks = [TaskRow(1, "fault-0", "done", 2, None, False)]
    events = [
        ev(1, "created", "user", USER, 0, None, "queued"),
        ev(2, "status", "worker", W1, 1, "queued", "claimed"),
        ev(3, "status", "worker", W1, 1, "claimed", "running"),
        ev(4, "status", "system", None, 1, "running", "queued"),
        ev(5, "status", "worker", W2, 2, "queued", "claimed"),
        ev(6, "log", "worker", W2, 2, None, None),
        ev(7, "status", "worker", W2, 2, "claimed", "running"),
        ev(8, "status", "worker", W2, 2, "running", "awaiting_review"),
        ev(9, "status", "worker", W2, 2, "awaiting_review", "verification"),
        ev(10, "status", "user", USER, 2, "verification", "done"),
    ]
    calls = [
        Call("w1", "register", "w1-r", 0.0, 0.1, 200, {"id": W1}),
        Call("w2", "register", "w2-r", 0.0, 0.1, 200, {"id": W2}),
        Call(
            "user",
            "create",
            "create-0",
            0.2,
            0.3,
            201,
            {"id": 1, "title": "fault-0"},
            ref="fault-0",
        ),
        claim_call("w1", 1, 1.0),
        write("w1", "heartbeat", 1, 1.1),
        write("w1", "status", 1, 1.2, to="running"),
        claim_call("w2", 2, 9.0),
        write("w1", "status", 1, 9.5, status=409, to="running"),  # the late write, refused
        write("w2", "heartbeat", 2, 9.6),
        write("w2", "status", 2, 9.7, to="running"),
        write("w2", "status", 2, 9.8, to="awaiting_review"),
        write("w2", "status", 2, 9.9, to="verification"),
        Call("user", "approve", "approve-1-v8", 10.0, 10.1, 200, DONE, task_id=1),
    ]
    return tasks, events, calls


def test_a_sound_history_has_no_defects() -> None:
    report = check(*sound())
    assert report.counts() == dict.fromkeys(report.counts(), 0), report.details()


def defects(report: Report) -> dict[str, int]:
    return {k: v for k, v in report.counts().items() if v}


def test_an_acknowledged_task_that_is_missing_is_lost() -> None:
    _, events, calls = sound()
    assert defects(check([], events, calls)) == {"lost": 1}


def test_a_create_never_answered_and_never_made_is_lost() -> None:
    tasks, events, calls = sound()
    unanswered = Call("user", "create", "create-1", 0.5, ref="fault-1")
    assert defects(check(tasks, events, [*calls, unanswered])) == {"lost": 1, "unanswered": 1}


def test_a_create_made_but_never_answered_is_unanswered() -> None:
    tasks, events, calls = sound()
    made = TaskRow(2, "fault-1", "done", 0, None, False)
    unanswered = Call("user", "create", "create-1", 0.5, ref="fault-1")
    assert defects(check([*tasks, made], events, [*calls, unanswered])) == {"unanswered": 1}


def test_one_request_making_two_tasks_is_a_duplicate() -> None:
    tasks, events, calls = sound()
    twin = TaskRow(2, "fault-0", "done", 0, None, False)
    assert defects(check([*tasks, twin], events, calls)) == {"duplicated": 1}


def test_a_lease_no_claim_was_answered_with_is_unacknowledged() -> None:
    tasks, events, calls = sound()
    calls = [c for c in calls if c.key != "w2-c2"]
    assert defects(check(tasks, events, calls)) == {"unacknowledged_leases": 1}


@pytest.mark.parametrize(
    ("status", "has_lease"),
    [("awaiting_review", False), ("needs_input", False), ("running", False), ("claimed", False)],
)
def test_a_task_no_one_will_move_is_stranded(status: str, has_lease: bool) -> None:
    tasks, events, calls = sound()
    stuck = [replace(tasks[0], status=status, has_lease=has_lease)]
    report = check(stuck, events, calls)
    assert defects(report) == {"stranded": 1}
    assert "last call: user approve approve-1-v8 → 200" in report.stranded[0]  # what it was told


@pytest.mark.parametrize("status", ["queued", "verification", "running"])
def test_a_task_waiting_for_the_queue_or_a_person_is_unfinished(status: str) -> None:
    tasks, events, calls = sound()
    waiting = [replace(tasks[0], status=status, has_lease=status == "running")]
    assert defects(check(waiting, events, calls)) == {"unfinished": 1}


def renumber(events: list[EventRow]) -> list[EventRow]:
    """Ids in list order, as the table would have assigned them."""
    return [replace(e, id=i) for i, e in enumerate(events, 1)]


def test_an_answered_move_missing_from_the_timeline_is_a_lost_write() -> None:
    tasks, events, calls = sound()
    lost = [replace(tasks[0], status="awaiting_review")], events[:8]  # crashed after answering
    assert defects(check(*lost, calls)) == {"lost_writes": 2, "stranded": 1}
    claim_lost = [e for e in events if e.id != 2]  # w1's claim answered, never recorded
    found = defects(check(tasks, claim_lost, calls))
    assert found["lost_writes"] == 1


def test_a_write_after_the_reaper_took_the_lease_is_stale() -> None:
    tasks, events, calls = sound()
    late = ev(0, "log", "worker", W1, 1, None, None)  # w1's log chunk after the reaper's move
    assert defects(check(tasks, renumber([*events[:4], late, *events[4:]]), calls)) == {
        "stale_writes": 1
    }


def test_a_write_by_a_worker_not_holding_the_attempt_is_stale() -> None:
    tasks, events, calls = sound()
    events = [*events]
    events[6] = replace(events[6], actor_id=W1)  # w1 writes "running" during w2's attempt
    assert defects(check(tasks, events, calls)) == {"stale_writes": 1}


def test_a_write_accepted_after_a_newer_claim_was_answered_is_stale() -> None:
    tasks, events, calls = sound()
    calls = [replace(c, status=200) if c.status == 409 else c for c in calls]
    assert defects(check(tasks, events, calls)) == {"stale_writes": 1}


def test_a_claim_of_a_task_still_held_is_an_overlap() -> None:
    tasks, events, calls = sound()
    events = [e for e in events if e.id != 4]  # the reaper never released w1's attempt
    found = defects(check(tasks, events, calls))
    assert found == {"lease_overlaps": 1, "broken_timelines": 1}


def test_a_heartbeat_accepted_after_a_newer_claim_was_answered_is_an_overlap() -> None:
    tasks, events, calls = sound()
    assert defects(check(tasks, events, [*calls, write("w1", "heartbeat", 1, 9.4)])) == {
        "lease_overlaps": 1
    }


def test_a_retry_stalled_past_the_outage_and_a_second_is_reported() -> None:
    tasks, events, calls = sound()
    limit = 0.8 + SLACK + busy(calls)  # the outage, the slack, the slowest unfaulted answer
    assert busy(calls) == pytest.approx(0.1)
    outage = Outage("database", 5.0, 5.8)
    failed = (Failure(4.9, 5.0, "http 500"),)
    within = Call("w2", "status", "k1", 4.9, 5.0 + limit - 0.05, 200, {}, failed, 1, 2)
    beyond = Call("w2", "status", "k2", 4.9, 5.0 + limit + 0.05, 200, {}, failed, 1, 2)
    assert defects(check(tasks, events, [*calls, within], [outage])) == {}
    report = check(tasks, events, [*calls, beyond], [outage])
    assert defects(report) == {"stalls_over_bound": 1}
    assert report.longest_stall() == pytest.approx(limit + 0.05)


def test_a_slow_server_widens_the_bound_by_its_slowest_unfaulted_answer() -> None:
    tasks, events, calls = sound()
    failed = (Failure(4.9, 5.0, "ClientOSError"),)
    retried = Call("w2", "status", "k1", 4.9, 5.0 + SLACK + 0.5, 200, {}, failed, 1, 2)
    assert defects(check(tasks, events, [*calls, retried])) == {"stalls_over_bound": 1}
    slow = Call("user", "approve", "approve-x", 20.0, 20.6, 200, {}, task_id=1)
    assert defects(check(tasks, events, [*calls, retried, slow])) == {}


def test_a_long_poll_may_stall_for_its_own_wait() -> None:
    tasks, events, calls = sound()
    failed = (Failure(2.9, 3.0, "ServerDisconnectedError"),)
    poll = replace(claim_call("w2", 9, 2.9), status=204, reply=None)  # nothing came
    poll = replace(poll, answered_at=3.0 + 2.0 + SLACK - 0.1)
    report = check(tasks, events, [*calls, replace(poll, failures=failed)])
    assert defects(report) == {}


def test_latencies_leave_out_retried_calls_and_long_poll_waits() -> None:
    _, _, calls = sound()
    retried = replace(claim_call("w1", 5, 20.0), answered_at=29.0, failures=(Failure(20, 21, "x"),))
    empty_poll = Call("w1", "claim", "w1-c9", 30.0, 32.05, 204, None, wait=2.0)
    found = latencies([*calls, retried, empty_poll])
    assert found["claim"] == pytest.approx((0.01, 0.05))
    assert set(found) == {"register", "create", "claim", "heartbeat", "status", "approve"}
