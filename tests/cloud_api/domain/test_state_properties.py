"""Random action sequences against a real cloud (SQLite and PostgreSQL) keep the task invariants.

A hypothesis state machine drives users and three workers over HTTP and keeps a model of every
task. After each action it checks, against the server:

- a task is held by at most one lease: only the newest claim's fence is accepted, every older
  fence (and any other worker presenting it) gets 409 on heartbeat and status;
- terminal states stay terminal unless retried (the model follows the brief's table, so an
  accepted move out of ``done``, or out of ``failed``/``cancelled`` other than a retry, fails);
- every change is in the timeline: the status events chain from the created status to the
  current one, each is a move the table allows for its actor, and there are exactly as many as
  the changes the test saw succeed;
- a rejected action (409) changed nothing: status, version and attempt are as before.

Lease expiry is deterministic here: the server runs with a tiny lease but a reaper interval of an
hour, so only the "expire leases" rule reaps — by running the real reaper pass
(``reap_once``) on the server's own loop until every leased task of the model has moved.

The server runs in a background thread with its own event loop; the rules (which hypothesis runs
synchronously) talk to it with urllib.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
from aiohttp import web
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from cloud_api.app import create_app
from cloud_api.config import CloudSettings
from cloud_api.dispatch.reaper import reap_once
from cloud_api.services import SERVICES
from tests.cloud_api.domain.test_states import EXPECTED, EXPECTED_ACTIONS
from tests.conftest import Template

T = TypeVar("T")
MAX_ATTEMPTS = 2  # two lease expiries fail a task, so the "failed" branch is reached often
LEASE_SECONDS = 0.05  # only the on-demand reaper acts on it; short keeps expiry cheap
WORKERS = 3
MAX_TASKS = 3  # few tasks, so random picks often walk one task through its whole life
LEASED = ("claimed", "running")
TERMINAL = ("done", "failed", "cancelled")
_slugs = itertools.count()
#: Shrinking replays whole runs against the server and takes minutes (past the suite's
#: timeout), so by default a failure is reported unshrunk: the full step list is still printed.
#: Set LOCUS_STATEFUL_SHRINK=1 to shrink it while debugging.
_NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)
PHASES = tuple(Phase) if os.environ.get("LOCUS_STATEFUL_SHRINK") else _NO_SHRINK


class ServerThread:
    """A real cloud (aiohttp app, real database) served from its own loop in a thread."""

    def __init__(self, db_url: str) -> None:
        self.settings = CloudSettings(
            db=db_url,
            port=0,
            lease_seconds=LEASE_SECONDS,
            max_attempts=MAX_ATTEMPTS,
            reaper_interval=3600,  # the background reaper runs once at start, then only on demand
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.app: web.Application | None = None
        self.runner: web.AppRunner | None = None
        self.url = ""

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    async def _start(self) -> None:
        self.app = create_app(self.settings, migrate=True)
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    def reap(self) -> int:
        """One pass of the real reaper over the server's database."""
        assert self.app is not None
        return self.run(reap_once(self.app[SERVICES].db, MAX_ATTEMPTS))

    def __enter__(self) -> ServerThread:
        self.thread.start()
        try:
            self.run(self._start())
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.runner is not None:
                self.run(self.runner.cleanup())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=60)
            self.loop.close()


@dataclass
class Http:
    """Synchronous JSON requests under /api/v1 (hypothesis rules are synchronous)."""

    base: str
    token: str

    def __call__(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base}/api/v1{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        return status, (json.loads(raw) if raw else None)

    def ok(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        status, reply = self(method, path, body)
        assert status == expect, f"{method} {path}: expected {expect}, got {status}: {reply}"
        return reply


@dataclass(frozen=True)
class Fence:
    task_id: int
    worker: int  # index into the machine's workers
    attempt: int
    token: str

    def body(self) -> dict[str, Any]:
        return {"attempt": self.attempt, "claim_token": self.token}


@dataclass
class TaskModel:
    id: int
    created_status: str
    status: str
    version: int
    priority: int
    attempt: int = 0
    expired_leases: int = 0
    changes: int = 0  # successful status changes seen by the test (claims and reaps included)
    fence: Fence | None = None  # the newest claim's fence, while it still holds the task
    old_fences: list[Fence] = field(default_factory=list)

    def move(self, target: str) -> None:
        self.status, self.version, self.changes = target, self.version + 1, self.changes + 1
        if target == "queued":  # re-queueing clears the claim token
            self.drop_fence()

    def drop_fence(self) -> None:
        if self.fence is not None:
            self.old_fences.append(self.fence)
            self.fence = None


#: The user's endpoints (states they apply to, target: EXPECTED_ACTIONS) and their bodies.
USER_ACTIONS = sorted(EXPECTED_ACTIONS)
ACTION_BODIES: dict[str, dict[str, Any]] = {
    "request-changes": {"feedback": "please add a test"},
    "answer": {"answer": "use the second option"},
}
WORKER_TARGETS = ("running", "awaiting_review", "verification", "needs_input", "queued", "failed")
#: The happy path (and the way back onto it), so ``advance`` walks a task all the way to done.
FORWARD_USER = {
    "backlog": "queue",
    "verification": "approve",
    "needs_input": "answer",
    "failed": "retry",
    "cancelled": "retry",
}
FORWARD_WORKER = {
    "claimed": "running",
    "running": "awaiting_review",
    "awaiting_review": "verification",
}
#: Detours from the happy path: a question, rejected hunks, requested changes.
DETOUR_USER = {**FORWARD_USER, "verification": "request-changes"}
DETOUR_WORKER = {**FORWARD_WORKER, "running": "needs_input", "awaiting_review": "running"}
picks = st.integers(min_value=0, max_value=1_000)


class TaskLifecycle(RuleBasedStateMachine):
    """Users and workers acting at random on a few tasks of a fresh project."""

    #: Bound per test (a subclass per backend): hypothesis builds the machine with no arguments.
    server: ClassVar[ServerThread]
    admin_token: ClassVar[str]

    def __init__(self) -> None:
        super().__init__()
        self.admin = Http(self.server.url, self.admin_token)
        self.tasks: list[TaskModel] = []
        self.workers: list[tuple[int, Http]] = []
        self.project_id = 0

    # ---- set-up --------------------------------------------------------------------------

    @initialize(queued=st.booleans())
    def fresh_project(self, queued: bool) -> None:
        """A new project, three worker tokens and a first task per example: cheap isolation
        without resetting the database (and with a task, every rule but a few is enabled)."""
        n = next(_slugs)
        slug = f"prop-{n}-{uuid.uuid4().hex[:8]}"
        project = self.admin.ok(
            "POST", "/projects", {"org_id": 1, "name": f"Props {n}", "slug": slug}, expect=201
        )
        self.project_id = project["id"]
        for i in range(WORKERS):
            token = self.admin.ok(
                "POST", f"/projects/{self.project_id}/tokens", {"worker_name": f"w{i}"}, expect=201
            )["token"]
            http = Http(self.server.url, token)
            reg = http.ok("POST", "/worker/register", {"host": f"host-{i}", "repositories": []})
            self.workers.append((reg["id"], http))
        self.create_task(queued, 0)

    # ---- helpers -------------------------------------------------------------------------

    def pick(self, items: list[T], n: int) -> T:
        return items[n % len(items)]

    def held(self) -> list[TaskModel]:
        return [t for t in self.tasks if t.fence is not None]

    def queued(self) -> list[TaskModel]:
        return [t for t in self.tasks if t.status == "queued"]

    def by_id(self, task_id: int) -> TaskModel:
        return next(t for t in self.tasks if t.id == task_id)

    def expect_conflict(self, task: TaskModel, status: int, reply: Any, what: str) -> None:
        """A 409 shows the task's current state, which must be what it was before."""
        assert status == 409, f"{what}: expected 409, got {status}: {reply}"
        current = reply["current"]
        assert current is not None, f"{what}: 409 without the current state: {reply}"
        assert (current["status"], current["version"], current["attempt"]) == (
            task.status,
            task.version,
            task.attempt,
        ), f"{what}: 409 names a state the model does not have: {reply}"

    def events(self, task_id: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        after = 0
        while True:
            page = self.admin.ok("GET", f"/tasks/{task_id}/events?limit=200&after={after}")
            found += page["items"]
            if page["next_cursor"] is None:
                return found
            after = page["next_cursor"]

    def verify(self, task: TaskModel, timeline: bool = False) -> None:
        """The server's task (and with ``timeline``, its events) agree with the model.

        The timeline is read after every accepted change and at the end of each example; a
        rejected action only needs the task read back (a stray event would still break the
        count at the end)."""
        row = self.admin.ok("GET", f"/tasks/{task.id}")
        assert (row["status"], row["version"], row["attempt"]) == (
            task.status,
            task.version,
            task.attempt,
        ), f"task {task.id}: server {row}, model {task}"
        # Only a leased task has a lease, and the reaper can only return a task that has one.
        assert (row["lease_expires_at"] is not None) == (task.status in LEASED), row
        if task.status in LEASED:
            assert task.fence is not None
            assert row["lease_owner_id"] == self.workers[task.fence.worker][0], row
        if task.status == "queued":
            assert row["lease_owner_id"] is None, row
        if timeline:
            self.verify_timeline(task)

    def verify_timeline(self, task: TaskModel) -> None:
        """Status events chain from the created status to the current one, one per change."""
        events = self.events(task.id)
        created = [e for e in events if e["kind"] == "created"]
        assert [e["to_status"] for e in created] == [task.created_status]
        moves = [e for e in events if e["kind"] == "status"]
        assert len(moves) == task.changes, (
            f"task {task.id}: {len(moves)} status events for {task.changes} changes: {moves}"
        )
        state = task.created_status
        for event in moves:
            assert event["from_status"] == state, f"broken chain at {event} (was {state})"
            move = (event["from_status"], event["to_status"], event["actor"])
            assert move in EXPECTED, f"the timeline records a forbidden move {move}"
            state = event["to_status"]
        assert state == task.status

    # ---- actions (each checks the answer against the model, then reads the task back) -----

    def act_as_user(self, task: TaskModel, action: str, guard: str = "none") -> None:
        sources, target = EXPECTED_ACTIONS[action]
        body = dict(ACTION_BODIES.get(action, {}))
        if guard == "current":
            body["version"] = task.version
        elif guard == "stale":
            body["version"] = task.version + 1  # a version the task does not have
        status, reply = self.admin("POST", f"/tasks/{task.id}/{action}", body)
        if task.status in sources and guard != "stale":
            assert (task.status, target, "user") in EXPECTED  # the test's own tables agree
            assert status == 200, f"{action} from {task.status}: {status} {reply}"
            if target == "queued":
                task.expired_leases = 0  # a person re-queued it: a fresh set of attempts
            task.move(target)
            assert reply["status"] == target and reply["version"] == task.version
        else:
            self.expect_conflict(task, status, reply, f"{action} from {task.status} ({guard})")
        self.verify(task, timeline=status == 200)

    def act_as_worker(self, task: TaskModel, target: str) -> None:
        assert task.fence is not None
        body: dict[str, Any] = {**task.fence.body(), "status": target}
        if target == "needs_input":
            body["question"] = "which option?"
        if target == "verification":
            body["summary"] = "done, with a test"
        _, http = self.workers[task.fence.worker]
        status, reply = http("POST", f"/worker/tasks/{task.id}/status", body)
        if target == task.status:
            # A repeated report by the attempt that holds the task (a retry whose first answer
            # was lost) is success and changes nothing: no new version, no timeline entry.
            assert status == 200, f"worker {task.status} again: {status} {reply}"
            assert (reply["status"], reply["version"]) == (task.status, task.version)
            self.verify(task, timeline=False)
            return
        if (task.status, target, "worker") in EXPECTED:
            assert status == 200, f"worker {task.status} -> {target}: {status} {reply}"
            task.move(target)
            assert reply["status"] == target and reply["version"] == task.version
        else:
            self.expect_conflict(task, status, reply, f"worker {task.status} -> {target}")
        self.verify(task, timeline=status == 200)

    def act_claim(self, w: int) -> None:
        """A claim takes a queued task of the highest priority, or answers 204 if none is."""
        worker_id, http = self.workers[w]
        status, reply = http("POST", "/worker/claim", {"wait_seconds": 0})
        queued = self.queued()
        if not queued:
            assert status == 204, f"claimed with nothing queued: {status} {reply}"
            for task in self.tasks:
                self.verify(task)
            return
        assert status == 200, f"claim with {len(queued)} queued: {status} {reply}"
        task = self.by_id(reply["task"]["id"])
        assert task.status == "queued", f"claimed a task that was {task.status}"
        assert task.priority == max(t.priority for t in queued), "claimed a lower priority"
        assert task.fence is None  # re-queueing dropped the previous fence
        task.attempt += 1
        task.move("claimed")
        assert reply["attempt"] == task.attempt
        assert reply["task"]["lease_owner_id"] == worker_id
        task.fence = Fence(task.id, w, reply["attempt"], reply["claim_token"])
        assert all(task.fence.token != old.token for old in task.old_fences)
        self.verify(task, timeline=True)

    def check_single_holder(self, task: TaskModel) -> None:
        """Of every fence ever issued for the task, exactly the model's current one is accepted
        (a heartbeat is the cheapest fenced write; it changes neither status nor version)."""
        fences = [*task.old_fences, *([task.fence] if task.fence else [])]
        accepted = []
        for fence in fences:
            _, http = self.workers[fence.worker]
            status, reply = http("POST", f"/worker/tasks/{task.id}/heartbeat", fence.body())
            if status == 200:
                accepted.append(fence)
                assert reply["status"] == task.status
                assert reply["cancel"] is (task.status == "cancelled")
            else:
                self.expect_conflict(task, status, reply, "heartbeat with an old fence")
        assert accepted == ([task.fence] if task.fence else []), f"accepted fences {accepted}"
        self.verify(task, timeline=True)

    # ---- rules ---------------------------------------------------------------------------

    @precondition(lambda self: len(self.tasks) < MAX_TASKS)
    @rule(queued=st.booleans(), priority=st.integers(min_value=0, max_value=2))
    def create_task(self, queued: bool, priority: int) -> None:
        status = "queued" if queued else "backlog"
        row = self.admin.ok(
            "POST",
            f"/projects/{self.project_id}/tasks",
            {"title": "Property task", "status": status, "priority": priority},
            expect=201,
        )
        assert row["status"] == status and row["attempt"] == 0
        task = TaskModel(row["id"], status, status, row["version"], priority)
        self.tasks.append(task)
        self.verify(task, timeline=True)

    @rule(
        n=picks,
        choice=picks,
        valid=st.booleans(),
        guard=st.sampled_from(["none", "current", "stale"]),
    )
    def user_action(self, n: int, choice: int, valid: bool, guard: str) -> None:
        """Any user action (mostly refused), or with ``valid`` one the table allows now."""
        task = self.pick(self.tasks, n)
        allowed = [a for a in USER_ACTIONS if task.status in EXPECTED_ACTIONS[a][0]]
        actions = allowed if valid and allowed else USER_ACTIONS
        self.act_as_user(task, self.pick(actions, choice), guard)

    @rule(w=st.integers(min_value=0, max_value=WORKERS - 1))
    def claim(self, w: int) -> None:
        self.act_claim(w)

    @precondition(lambda self: self.held())
    @rule(n=picks, choice=picks, valid=st.booleans())
    def worker_status(self, n: int, choice: int, valid: bool) -> None:
        """The holder reports any status (mostly refused), or with ``valid`` an allowed one."""
        task = self.pick(self.held(), n)
        allowed = [t for t in WORKER_TARGETS if (task.status, t, "worker") in EXPECTED]
        targets = allowed if valid and allowed else list(WORKER_TARGETS)
        self.act_as_worker(task, self.pick(targets, choice))

    @rule(
        n=picks,
        steps=st.integers(min_value=1, max_value=4),
        w=st.integers(0, WORKERS - 1),
        detour=st.booleans(),
    )
    def advance(self, n: int, steps: int, w: int, detour: bool) -> None:
        """Walk a task along the happy path (or a detour); random walks alone rarely get past
        "running"."""
        task = self.pick(self.tasks, n)
        by_user, by_worker = (
            (DETOUR_USER, DETOUR_WORKER) if detour else (FORWARD_USER, FORWARD_WORKER)
        )
        for _ in range(steps):
            if task.status in by_user:
                self.act_as_user(task, by_user[task.status])
            elif task.status in by_worker and task.fence is not None:
                self.act_as_worker(task, by_worker[task.status])
            elif task.status == "queued":
                self.act_claim(w)  # may take another queued task of higher priority: fine
            else:
                return

    @rule(n=picks, write=st.sampled_from(["heartbeat", *WORKER_TARGETS]), other=picks)
    def stale_or_foreign_fence(self, n: int, write: str, other: int) -> None:
        """A superseded fence (re-queued, reaped, re-claimed), or the holder's fence presented
        by another worker, gets 409 on heartbeat and status, and changes nothing."""
        task = self.pick(self.tasks, n)
        fences = [(f, f.worker) for f in task.old_fences]
        if task.fence is not None:
            fences.append((task.fence, (task.fence.worker + 1 + other % 2) % WORKERS))
        if not fences:
            self.check_single_holder(task)
            return
        fence, worker = self.pick(fences, other)
        _, http = self.workers[worker]
        if write == "heartbeat":
            status, reply = http("POST", f"/worker/tasks/{task.id}/heartbeat", fence.body())
        else:
            body = {**fence.body(), "status": write, "question": "?", "summary": "s"}
            status, reply = http("POST", f"/worker/tasks/{task.id}/status", body)
        self.expect_conflict(task, status, reply, f"stale or foreign fence: {write}")
        self.verify(task)

    @rule(n=picks)
    def probe_fences(self, n: int) -> None:
        self.check_single_holder(self.pick(self.tasks, n))

    @precondition(lambda self: any(t.status in TERMINAL for t in self.tasks))
    @rule(n=picks, choice=picks)
    def leave_terminal(self, n: int, choice: int) -> None:
        """Anything but a retry of failed/cancelled bounces off a terminal task (done: all)."""
        task = self.pick([t for t in self.tasks if t.status in TERMINAL], n)
        moves = [("user", a) for a in USER_ACTIONS]
        if task.fence is not None:  # the last holder's fence still names the attempt
            moves += [("worker", t) for t in WORKER_TARGETS]
        actor, move = self.pick(moves, choice)
        if actor == "user":
            self.act_as_user(task, move)
        else:
            self.act_as_worker(task, move)

    @precondition(lambda self: any(t.status in LEASED for t in self.tasks))
    @rule()
    def expire_leases(self) -> None:
        """Let every lease run out (no heartbeats meanwhile), and reap with the real reaper.

        A lease runs out on the database clock, with no event to wait on, so this polls: each
        round is one reaper pass and a read of the tasks still leased (a few ms; the lease is
        50 ms), under a generous deadline."""
        leased = [t for t in self.tasks if t.status in LEASED]
        deadline = time.monotonic() + 30
        pending = list(leased)
        while pending:
            assert time.monotonic() < deadline, f"leases never reaped: {pending}"
            self.server.reap()
            pending = [
                t for t in pending if self.admin.ok("GET", f"/tasks/{t.id}")["status"] in LEASED
            ]
        for task in leased:
            task.expired_leases += 1
            task.move("failed" if task.expired_leases >= MAX_ATTEMPTS else "queued")
            task.drop_fence()  # the reaper clears the claim token either way
        for task in self.tasks:
            self.verify(task, timeline=True)

    def teardown(self) -> None:
        """At the end of each example: the fences and timelines of every task."""
        if sys.exc_info()[0] is not None:
            return  # a step failed: report that, not a second failure on top of it
        for task in self.tasks:
            self.check_single_holder(task)


@pytest.fixture
def server(template: Template, tmp_path: Path) -> Iterator[ServerThread]:
    with ServerThread(str(template.new_url(tmp_path))) as running:
        yield running


def test_task_invariants_hold_under_random_actions(
    server: ServerThread, template: Template
) -> None:
    """Parametrised over SQLite and PostgreSQL by the ``template`` fixture."""

    class OnThisServer(TaskLifecycle):
        pass

    OnThisServer.server = server
    OnThisServer.admin_token = template.first_start.token
    run_state_machine_as_test(
        OnThisServer,
        settings=settings(max_examples=25, stateful_step_count=30, deadline=None, phases=PHASES),
    )
