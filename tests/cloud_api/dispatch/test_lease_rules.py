"""The lease table is the only thing that writes the lease columns, on every path.

- Every move of a real cloud (claims, heartbeats, worker reports, user actions, the reaper)
  leaves the task's lease columns as its rule in ``LEASE_RULES`` says, read back from the
  database after each step; the scenario covers every (target, actor) of the table.
- No module of the cloud writes a lease column except the store's write path (a source scan),
  and that write path refuses a caller's lease values.
"""

from __future__ import annotations

import ast
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Row, update

from cloud_api.dispatch.reaper import reap_once
from cloud_api.domain.states import (
    HEARTBEAT,
    LEASE_RULES,
    Actor,
    Count,
    Hold,
    Lease,
    LeaseRule,
    Stamp,
    TaskStatus,
    lease_rule,
)
from cloud_api.services import SERVICES
from cloud_api.store import tasks as task_store
from cloud_api.store.tables import tasks
from tests.conftest import Cloud
from tests.support.client import Worker

ROOT = Path(__file__).resolve().parents[3]
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
#: The one module that turns lease rules into column values.
WRITE_PATH = ROOT / "cloud_api" / "store" / "tasks.py"


class Steps:
    """Runs one action, then checks the task's row against the rule it should have followed."""

    def __init__(self, cloud: Cloud, worker: Worker) -> None:
        self.db = cloud.app[SERVICES].db
        self.worker = worker
        self.covered: set[tuple[TaskStatus, Actor]] = set()

    async def row(self, task_id: int) -> Row[Any]:
        async with self.db.read() as conn:
            row = await task_store.load(conn, task_id)
        assert row is not None
        return row

    async def age_lease(self, task_id: int) -> None:
        """Back-date a running lease, so a renewal is visible (and the reaper may take it)."""
        async with self.db.write() as tx:
            await tx.conn.execute(
                update(tasks).where(tasks.c.id == task_id).values(lease_expires_at=LONG_AGO)
            )

    async def __call__(
        self,
        task_id: int,
        target: TaskStatus | None,
        actor: Actor,
        action: Callable[[], Awaitable[Any]],
    ) -> Row[Any]:
        """``target`` None: a heartbeat."""
        before = await self.row(task_id)
        rule = HEARTBEAT if target is None else lease_rule(target, actor)
        if rule.lease is Lease.RENEW and before.lease_expires_at is not None:
            await self.age_lease(task_id)
            before = await self.row(task_id)
        await action()
        after = await self.row(task_id)
        check(before, after, rule)
        assert after.status == (before.status if target is None else target.value)
        if target is not None:
            self.covered.add((target, actor))
        return after


def check(before: Row[Any], after: Row[Any], rule: LeaseRule) -> None:
    if rule.lease is Lease.RENEW:
        assert after.lease_expires_at is not None and after.lease_expires_at > LONG_AGO
    else:
        assert after.lease_expires_at is None
    for column, hold in (("lease_owner_id", rule.owner), ("claim_token", rule.token)):
        old, new = getattr(before, column), getattr(after, column)
        if hold is Hold.KEEP:
            assert new == old, column
        elif hold is Hold.DROP:
            assert new is None, column
        else:
            assert new is not None and new != old, column
    assert after.attempt == before.attempt + (rule.owner is Hold.TAKE)
    expired = {Count.KEEP: before.expired_leases, Count.ADD_ONE: before.expired_leases + 1}
    assert after.expired_leases == expired.get(rule.expiries, 0)
    if rule.queued_at is Stamp.KEEP:
        assert after.queued_at == before.queued_at
    else:
        assert after.queued_at is not None and after.queued_at >= before.updated_at


@pytest.mark.parametrize("settings_overrides", [{"reaper_interval": 3600.0}])
async def test_every_path_follows_the_lease_table(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    worker = await Worker.create(api, pid, "lease-rules")
    step = Steps(cloud, worker)
    claim: dict[str, Any] = {}

    async def take() -> None:
        claim.update((await worker.claim()).ok())

    def report(status: str, **extra: Any) -> Callable[[], Awaitable[Any]]:
        return lambda: worker.status(claim, status, **extra)

    def user(task_id: int, action: str, **body: Any) -> Callable[[], Awaitable[Any]]:
        return lambda: api.post(f"/tasks/{task_id}/{action}", body)

    async def reap(max_attempts: int) -> None:
        await step.age_lease(claim["task"]["id"])
        assert await reap_once(step.db, max_attempts) == 1

    one = (await api.post(f"/projects/{pid}/tasks", {"title": "a", "status": "queued"})).ok(201)
    a, S, W, U, SYS = one["id"], TaskStatus, Actor.WORKER, Actor.USER, Actor.SYSTEM
    await step(a, S.CLAIMED, W, take)
    await step(a, None, W, lambda: worker.heartbeat(claim))
    await step(a, S.RUNNING, W, report("running"))
    await step(a, S.AWAITING_REVIEW, W, report("awaiting_review"))
    await step(a, S.RUNNING, W, report("running"))
    await step(a, S.NEEDS_INPUT, W, report("needs_input", question="which one?"))
    await step(a, S.QUEUED, U, user(a, "answer", answer="the left one"))
    await step(a, S.CLAIMED, W, take)
    await step(a, S.RUNNING, W, report("running"))
    await step(a, S.AWAITING_REVIEW, W, report("awaiting_review"))
    await step(a, S.VERIFICATION, W, report("verification"))
    await step(a, S.DONE, U, user(a, "approve"))

    two = (await api.post(f"/projects/{pid}/tasks", {"title": "b", "status": "queued"})).ok(201)
    b = two["id"]
    await step(b, S.CLAIMED, W, take)
    await step(b, S.QUEUED, W, report("queued"))  # given back
    await step(b, S.CLAIMED, W, take)
    await step(b, S.QUEUED, SYS, lambda: reap(max_attempts=5))
    await step(b, S.CLAIMED, W, take)
    await step(b, S.FAILED, SYS, lambda: reap(max_attempts=2))
    await step(b, S.QUEUED, U, user(b, "retry"))
    await step(b, S.CLAIMED, W, take)
    await step(b, S.FAILED, W, report("failed", reason="interrupted"))
    await step(b, S.QUEUED, U, user(b, "retry"))
    await step(b, S.CLAIMED, W, take)
    await step(b, S.CANCELLED, U, user(b, "cancel"))
    await step(b, S.QUEUED, U, user(b, "retry"))
    await step(b, S.CLAIMED, W, take)
    await step(b, S.RUNNING, W, report("running"))
    await step(b, S.CANCELLED, W, report("cancelled", reason="cancelled by its user"))
    assert step.covered == set(LEASE_RULES), "a rule the scenario never exercised"


LEASE_COLUMNS = sorted(task_store.LEASE_COLUMNS)
#: Other tables with a column of the same name (task_events.attempt, artifacts.attempt;
#: plan_requests has a lease of its own, whose moves cloud_api/domain/plans.py rules).
OTHER_TABLES = {"task_events", "artifacts", "workers", "blobs", "api_tokens", "plan_requests"}


def _keys(node: ast.expr | None) -> set[str]:
    if isinstance(node, ast.Dict):
        return {str(k.value) for k in node.keys if isinstance(k, ast.Constant)}
    return set()


def _table(node: ast.expr) -> str | None:
    """The table a ``….values(…)`` chain writes, when the chain names it (update(t), t.insert(),
    insert_for(backend, t)); None when it cannot be told (then it is checked as if tasks)."""
    while True:
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("update", "insert", "insert_for") and node.args:
                last = node.args[-1]
                return last.id if isinstance(last, ast.Name) else None
            if name in ("insert", "update") and isinstance(func, ast.Attribute):
                return func.value.id if isinstance(func.value, ast.Name) else None
            node = func
        elif isinstance(node, ast.Attribute):
            node = node.value
        else:
            return None


def _written_names(node: ast.Call) -> set[str]:
    """The task columns this call writes, if it is a write."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    keywords = {k.arg: k.value for k in node.keywords if k.arg}
    if name == "transition":
        return _keys(keywords.get("values"))
    if name == "create":
        return set(keywords) - {"actor_id", "data"}
    if name in ("values", "on_conflict_do_update") and isinstance(func, ast.Attribute):
        if _table(func.value) in OTHER_TABLES:
            return set()
        names = set(keywords) | _keys(keywords.get("set_"))
        for arg in node.args:
            names |= _keys(arg)
        return names
    return set()


def lease_writes(path: Path) -> list[str]:
    """Every place in ``path`` that writes a lease column (a keyword or dict key of a write, an
    item assignment, or raw SQL)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            for column in sorted(_written_names(node) & set(LEASE_COLUMNS)):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} writes {column}")
        if isinstance(node, ast.Assign):  # values["claim_token"] = …, passed on later
            for target in node.targets:
                if isinstance(target, ast.Subscript) and _keys(
                    ast.Dict(keys=[target.slice], values=[])
                ) & set(LEASE_COLUMNS):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} assigns a lease column")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = " ".join(node.value.lower().split())
            for column in LEASE_COLUMNS:
                if f"set {column}" in text or f", {column} =" in text:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} raw SQL sets {column}")
    return found


def test_no_module_writes_a_lease_column_but_the_store_write_path() -> None:
    modules = [
        p
        for p in sorted((ROOT / "cloud_api").rglob("*.py"))
        if p != WRITE_PATH and "migrations" not in p.parts
    ]
    assert len(modules) > 50
    bypasses = [hit for path in modules for hit in lease_writes(path)]
    assert bypasses == [], "write these through the lease table (LEASE_RULES):\n" + "\n".join(
        bypasses
    )
    # The scan does see writes: the write path itself has them.
    assert lease_writes(WRITE_PATH)


async def test_the_write_path_refuses_lease_values_from_a_caller(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    task = (await api.post(f"/projects/{pid}/tasks", {"title": "c", "status": "queued"})).ok(201)
    db = cloud.app[SERVICES].db
    for column in LEASE_COLUMNS:
        async with db.write() as tx:
            row = await task_store.load(tx, task["id"])
            assert row is not None
            with pytest.raises(ValueError, match=f"{column} follow the lease table"):
                await task_store.transition(
                    tx, row, TaskStatus.CANCELLED, Actor.USER, values={column: None}
                )
            with pytest.raises(ValueError, match=f"{column} follow the lease table"):
                await task_store.create(tx, pid, Actor.USER, None, title="d", **{column: None})
    assert (await api.get(f"/tasks/{task['id']}")).ok()["status"] == "queued"
