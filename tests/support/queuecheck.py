"""The total-queue checker: pure functions over a run's final database rows (tasks, their
timelines) and the clients' own logs, reporting every way the queue can fail its users.

- **lost**: a create acknowledged whose task is missing, or never answered and not there;
- **duplicated**: one client request (one ``ref``, the task's title) made two tasks;
- **unacknowledged leases**: a lease the timeline gives a worker that none of its claims
  was answered with (a claim run twice, or run with its answer never delivered);
- **stranded**: a task no one will move on: leased with no lease to expire, or waiting for
  the attempt's worker (awaiting review, needs input) after every worker stopped;
- **lost writes**: a claim, status report or approval answered with success that the
  timeline does not have (acknowledged, then gone);
- **stale writes accepted**: a worker write recorded after its attempt was taken over or
  ended, or a write sent after a newer claim of the task was answered and still accepted;
- **lease overlaps**: a claim while the task was still held, or a heartbeat sent after a newer
  claim was answered and still accepted (two workers told they hold one task);
- **unanswered**: a call that never got a final answer; **unfinished**: a task not in a final
  state at the end (the run was meant to finish them all);
- **stalls**: for every call that was retried, the time from its first fault's end to its
  answer; allowed: the outages within that time, plus ``SLACK``, plus the slowest answer a call
  without a fault got in the same run (:func:`busy`), plus the call's own long-poll wait.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

SLACK = 1.0
LEASED = frozenset({"claimed", "running"})
#: No lease covers these; only the attempt's worker moves the task on.
WORKER_ONLY = frozenset({"awaiting_review", "needs_input"})
TERMINAL = frozenset({"done", "failed", "cancelled"})
#: Moves that end the attempt's hold on the task.
RELEASING = frozenset({"queued", *TERMINAL})
#: Worker writes that need the attempt's lease (heartbeats are judged from the clients' logs).
FENCED_WRITES = frozenset({"status", "log", "artifact"})


@dataclass(frozen=True)
class Failure:
    """One try of a call that got no final answer: a lost answer or a 5xx."""

    sent: float
    ended: float
    what: str


@dataclass(frozen=True)
class Call:
    """One logical request of a client (all its retries), as the client saw it."""

    client: str
    op: str  # register | create | claim | heartbeat | status | approve
    key: str
    first_sent: float
    answered_at: float | None = None
    status: int | None = None
    reply: Any = None
    failures: tuple[Failure, ...] = ()
    task_id: int | None = None
    attempt: int | None = None
    ref: str | None = None  # create: the title that names the request
    wait: float = 0.0  # claim: the long-poll the server may legitimately take
    #: When an answer asked to come back later (409/429/503 with Retry-After).
    told_to_wait: tuple[float, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class Outage:
    kind: str
    start: float
    end: float


@dataclass(frozen=True)
class TaskRow:
    id: int
    title: str
    status: str
    attempt: int
    lease_owner_id: int | None
    has_lease: bool

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> TaskRow:
        return cls(
            row["id"],
            row["title"],
            row["status"],
            row["attempt"],
            row["lease_owner_id"],
            row["lease_expires_at"] is not None,
        )


@dataclass(frozen=True)
class EventRow:
    id: int
    task_id: int
    kind: str
    actor: str
    actor_id: int | None
    attempt: int
    from_status: str | None = None
    to_status: str | None = None

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> EventRow:
        return cls(
            row["id"],
            row["task_id"],
            row["kind"],
            row["actor"],
            row["actor_id"],
            row["attempt"],
            row["from_status"],
            row["to_status"],
        )


@dataclass(frozen=True)
class Stall:
    key: str
    op: str
    seconds: float
    allowed: float
    why: str  # the first failure, and how often the server said to come back later


@dataclass
class Report:
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unacknowledged_leases: list[str] = field(default_factory=list)
    stranded: list[str] = field(default_factory=list)
    lost_writes: list[str] = field(default_factory=list)
    stale_writes: list[str] = field(default_factory=list)
    lease_overlaps: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    broken_timelines: list[str] = field(default_factory=list)
    stalls: list[Stall] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Every defect kind with its count (all 0 on a sound run)."""
        return {
            "lost": len(self.lost),
            "duplicated": len(self.duplicated),
            "unacknowledged_leases": len(self.unacknowledged_leases),
            "stranded": len(self.stranded),
            "lost_writes": len(self.lost_writes),
            "stale_writes": len(self.stale_writes),
            "lease_overlaps": len(self.lease_overlaps),
            "unanswered": len(self.unanswered),
            "unfinished": len(self.unfinished),
            "broken_timelines": len(self.broken_timelines),
            "stalls_over_bound": len(self.long_stalls()),
        }

    def long_stalls(self) -> list[Stall]:
        return [s for s in self.stalls if s.seconds > s.allowed]

    def longest_stall(self) -> float:
        return max((s.seconds for s in self.stalls), default=0.0)

    def details(self) -> dict[str, list[str]]:
        """The non-empty findings, for an assertion message."""
        found = {k: v for k, v in vars(self).items() if k != "stalls" and v}
        if self.long_stalls():
            found["stalls_over_bound"] = [
                f"{s.op} {s.key}: {s.seconds:.1f} s (allowed {s.allowed:.1f} s; {s.why})"
                for s in self.long_stalls()
            ]
        return {k: v[:10] for k, v in found.items()}


def check(
    tasks: Iterable[TaskRow],
    events: Iterable[EventRow],
    calls: Iterable[Call],
    outages: Iterable[Outage] = (),
) -> Report:
    """Everything the run's rows and logs show went wrong."""
    tasks, events, calls, outages = list(tasks), list(events), list(calls), list(outages)
    report = Report()
    _creates(report, tasks, calls)
    _states(report, tasks, calls)
    _timelines(report, events)
    _leases(report, events, calls)
    _late_writes(report, calls)
    _acknowledged(report, events, calls)
    report.unanswered = [f"{c.client} {c.op} {c.key}" for c in calls if c.answered_at is None]
    report.stalls = stalls(calls, outages, busy(calls))
    return report


def _creates(report: Report, tasks: list[TaskRow], calls: list[Call]) -> None:
    by_title: dict[str, list[TaskRow]] = defaultdict(list)
    for task in tasks:
        by_title[task.title].append(task)
    ids = {t.id for t in tasks}
    for call in calls:
        if call.op != "create" or call.ref is None:
            continue
        rows = by_title.get(call.ref, [])
        if len(rows) > 1:
            report.duplicated.append(f"{call.ref}: tasks {sorted(r.id for r in rows)}")
        if call.ok and (call.reply["id"] not in ids or call.reply["title"] != call.ref):
            report.lost.append(f"{call.ref}: acknowledged as task {call.reply['id']}, missing")
        elif call.answered_at is None and not rows:
            report.lost.append(f"{call.ref}: never answered, never created")


def _states(report: Report, tasks: list[TaskRow], calls: list[Call]) -> None:
    last: dict[int, Call] = {}
    for c in sorted(calls, key=lambda c: c.first_sent):
        if c.task_id is not None:
            last[c.task_id] = c
    for task in tasks:
        why = ""
        if (end := last.get(task.id)) is not None:
            reply = str(end.reply)[:300]
            why = f"; last call: {end.client} {end.op} {end.key} → {end.status} {reply}"
        if (task.status in LEASED and not task.has_lease) or task.status in WORKER_ONLY:
            report.stranded.append(f"task {task.id}: {task.status}, lease: {task.has_lease}{why}")
        elif task.status not in TERMINAL:
            report.unfinished.append(f"task {task.id}: {task.status}{why}")


def _timelines(report: Report, events: list[EventRow]) -> None:
    """Walk each task's timeline: who holds which attempt, and whether each write fits."""
    by_task: dict[int, list[EventRow]] = defaultdict(list)
    for event in events:
        by_task[event.task_id].append(event)
    for task_id, timeline in by_task.items():
        status: str | None = None
        holder: int | None = None
        attempt = 0
        for ev in sorted(timeline, key=lambda e: e.id):
            where = f"task {task_id} event {ev.id}"
            if ev.kind == "status" and ev.from_status != status:
                report.broken_timelines.append(f"{where}: from {ev.from_status}, was {status}")
            if ev.kind == "status" and ev.to_status == "claimed":
                if status != "queued":
                    report.lease_overlaps.append(f"{where}: claimed while {status}")
                holder, attempt = ev.actor_id, ev.attempt
            elif (
                ev.actor == "worker"
                and ev.kind in FENCED_WRITES
                and (ev.actor_id != holder or ev.attempt != attempt)
            ):
                report.stale_writes.append(
                    f"{where}: worker {ev.actor_id} wrote {ev.kind} {ev.to_status or ''} "
                    f"at attempt {ev.attempt}; holder {holder} at attempt {attempt}"
                )
            if ev.kind == "created":
                status = ev.to_status
            elif ev.kind == "status":
                status = ev.to_status
                if status in RELEASING:
                    holder = None


def _leases(report: Report, events: list[EventRow], calls: list[Call]) -> None:
    """Every lease in the timeline was the answer to one of its worker's claims."""
    worker_of = {c.reply["id"]: c.client for c in calls if c.op == "register" and c.ok}
    answered = {
        (c.client, c.reply["task"]["id"], c.reply["attempt"])
        for c in calls
        if c.op == "claim" and c.status == 200
    }
    for ev in events:
        if ev.kind == "status" and ev.to_status == "claimed":
            client = worker_of.get(ev.actor_id, f"worker {ev.actor_id}")
            if (client, ev.task_id, ev.attempt) not in answered:
                report.unacknowledged_leases.append(
                    f"task {ev.task_id} attempt {ev.attempt} leased to {client}, never answered"
                )


def _acknowledged(report: Report, events: list[EventRow], calls: list[Call]) -> None:
    """Every move a client was told succeeded is in the timeline: a claim, a worker's status
    report, a user's approval (an answer for a write that did not last is a lost write)."""
    moves = {(e.task_id, e.to_status, e.attempt) for e in events if e.kind == "status"}
    for c in calls:
        if not c.ok or c.op not in ("claim", "status", "approve") or not c.reply:
            continue  # refused, or nothing given (204)
        if c.op == "claim":
            move = (c.reply["task"]["id"], "claimed", c.reply["attempt"])
        else:
            move = (c.reply["id"], c.reply["status"], c.reply["attempt"])
        if move not in moves:
            report.lost_writes.append(f"{c.client} {c.op} {c.key} answered {move}, not recorded")


def _late_writes(report: Report, calls: list[Call]) -> None:
    """From the clients' clock: a write first sent after a newer claim of its task was
    answered must be refused, since the newer claim had already taken the lease over."""
    takeovers: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for c in calls:
        if c.op == "claim" and c.status == 200 and c.answered_at is not None:
            takeovers[c.reply["task"]["id"]].append((c.reply["attempt"], c.answered_at))
    for c in calls:
        if c.op not in ("heartbeat", "status") or not c.ok or c.task_id is None:
            continue
        assert c.attempt is not None
        later = [a for a, at in takeovers.get(c.task_id, []) if a > c.attempt and at < c.first_sent]
        if later:
            what = f"task {c.task_id}: {c.client} {c.op} at attempt {c.attempt} accepted after "
            found = report.lease_overlaps if c.op == "heartbeat" else report.stale_writes
            found.append(what + f"attempt {min(later)} was claimed")


def stalls(calls: Iterable[Call], outages: Iterable[Outage], busy: float = 0.0) -> list[Stall]:
    """Each retried call's stall: from the end of its first fault (the moment its first try
    failed) to its answer. Allowed: the outages within that time, plus ``SLACK``, plus
    ``busy`` (how long the server took to answer a call that met no fault, in the same run),
    plus the call's own long-poll wait."""
    outages = list(outages)
    found = []
    for c in calls:
        if not c.failures or c.answered_at is None:
            continue
        start, end = c.failures[0].ended, c.answered_at
        overlap = sum(max(0.0, min(end, o.end) - max(start, o.start)) for o in outages)
        tail = ", ".join(f"+{f.ended - start:.2f} s {f.what}" for f in c.failures[-4:])
        why = (
            f"{len(c.failures)} failed tries (… {tail}), "
            f"{len(c.told_to_wait)} answers with Retry-After"
        )
        found.append(Stall(c.key, c.op, end - start, overlap + c.wait + SLACK + busy, why))
    return found


def latencies(calls: Iterable[Call]) -> dict[str, tuple[float, float]]:
    """Median and slowest answer of the calls that met no fault, per operation (long-polls
    leave out their wait only when it ran out): how fast the server answered anyway."""
    by_op: dict[str, list[float]] = defaultdict(list)
    for c in calls:
        if not c.failures and not c.told_to_wait and c.answered_at is not None:
            by_op[c.op].append(c.answered_at - c.first_sent - c.wait * (c.status == 204))
    return {op: (sorted(t)[len(t) // 2], max(t)) for op, t in sorted(by_op.items())}


def busy(calls: Iterable[Call]) -> float:
    """The slowest answer to a call that met no fault and does not long-poll: what a retry may
    take on top of the outage on this machine at this load, measured in the same run (a fixed
    second alone fails on a loaded machine; a pending window of a minute fails either way)."""
    return max((top for op, (_, top) in latencies(calls).items() if op != "claim"), default=0.0)
