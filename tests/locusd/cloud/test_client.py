"""The REST client against a real cloud: the daemon's whole conversation, and its errors."""

from __future__ import annotations

import socket

import pytest

from cloud_api.domain.states import TaskStatus
from cloud_api.schemas.workers import Fence
from locusd.cloud.client import CloudClient
from locusd.cloud.errors import (
    AuthError,
    CloudUnavailable,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
)
from locusd.cloud.writes import fence_of
from tests.conftest import Cloud
from tests.locusd.cloud.conftest import Clients
from tests.support.client import timeline

sqlite_only = pytest.mark.parametrize("template", ["sqlite"], indirect=True)


async def test_a_worker_takes_a_task_from_claim_to_verification(
    cloud: Cloud, clients: Clients
) -> None:
    user, worker, pid = clients.user, clients.worker, clients.project_id
    me = await user.me()
    assert me.user is not None and me.user.email == cloud.first_start.email
    assert pid in [p.id for p in await user.projects()]
    worker_me = await worker.me()
    assert worker_me.user is None and worker_me.worker_name == "box-1"
    assert worker_me.project_id == pid

    assert await worker.claim() is None  # nothing queued: 204
    task = await user.create_task(
        pid, "Fix the flaky test", "It fails on Tuesdays.", priority=5, queued=True
    )
    assert task.status == "queued" and task.priority == 5
    assert [t.id for t in await user.tasks(pid, status=TaskStatus.QUEUED)] == [task.id]

    claim = await worker.claim(wait_seconds=1)
    assert claim is not None and claim.task.id == task.id and claim.attempt == 1
    fence = fence_of(claim)
    beat = await worker.heartbeat(task.id, fence)
    assert beat.status == "claimed" and beat.cancel is False
    assert (await worker.status(task.id, fence, "running")).status == "running"
    logged = await worker.log(task.id, fence, 0, "reading the test\n")
    assert logged.duplicate is False
    patch = await worker.artifact(task.id, fence, "patch", "--- a\n+++ b\n", "text/x-diff")
    assert patch.kind == "patch" and patch.size == len("--- a\n+++ b\n")
    await worker.status(task.id, fence, "awaiting_review")
    done = await worker.status(task.id, fence, "verification", summary="Pinned the clock.")
    assert done.status == "verification" and done.summary == "Pinned the clock."

    seen = await user.task(task.id)
    assert seen.status == "verification" and seen.summary == "Pinned the clock."
    kinds = [e["kind"] for e in await timeline(cloud.api, task.id)]
    assert kinds.count("log") == 1 and kinds.count("artifact") == 1
    assert (await worker.signals()).cancellations == []


@sqlite_only
async def test_a_cancel_reaches_the_worker_by_heartbeat_and_signal(clients: Clients) -> None:
    claim = await clients.claimed()
    cursor = (await clients.worker.signals()).cursor
    cancelled = await clients.user.cancel_task(claim.task.id, comment="not needed")
    assert cancelled.status == "cancelled"
    assert (await clients.worker.heartbeat(claim.task.id, fence_of(claim))).cancel is True
    signals = await clients.worker.signals(wait=5, after=cursor)
    assert [(s.task_id, s.attempt) for s in signals.cancellations] == [(claim.task.id, 1)]


@sqlite_only
async def test_same_idempotency_key_twice_has_one_effect(clients: Clients) -> None:
    claim = await clients.claimed()
    task_id, fence = claim.task.id, fence_of(claim)
    first = await clients.worker.status(task_id, fence, "running", idempotency_key="st-1")
    again = await clients.worker.status(task_id, fence, "running", idempotency_key="st-1")
    assert again == first  # the stored answer, replayed
    log1 = await clients.worker.log(task_id, fence, 0, "hello", idempotency_key="log-1")
    log2 = await clients.worker.log(task_id, fence, 0, "hello", idempotency_key="log-1")
    assert log1 == log2
    # Without the key the repeat is a second request: the state it asks for is already in
    # effect for this attempt and claim token, so it is success and changes nothing.
    unkeyed = await clients.worker.status(task_id, fence, "running")
    assert unkeyed.version == first.version
    events = await timeline(clients.cloud.api, task_id)
    assert [e["to_status"] for e in events if e["kind"] == "status"] == ["claimed", "running"]
    assert len([e for e in events if e["kind"] == "log"]) == 1


@sqlite_only
async def test_a_stale_fence_is_a_conflict_with_the_current_state(clients: Clients) -> None:
    claim = await clients.claimed()
    wrong = Fence(attempt=claim.attempt, claim_token="not-the-token")
    with pytest.raises(Conflict) as stale:
        await clients.worker.status(claim.task.id, wrong, "running")
    err = stale.value
    assert err.status == 409 and err.retryable is False
    assert err.current is not None and err.current["status"] == "claimed"
    assert err.detail is not None and "stale" in err.detail


@sqlite_only
async def test_auth_errors(cloud: Cloud, clients: Clients) -> None:
    with pytest.raises(AuthError) as wrong_password:
        await CloudClient.login(cloud.url, cloud.first_start.email, "wrong password!")
    assert wrong_password.value.status == 401 and not wrong_password.value.retryable
    async with CloudClient(cloud.url + "/", "bogus-token") as bogus:
        with pytest.raises(AuthError) as bad_token:
            await bogus.me()
    assert bad_token.value.title == "Unauthorized"
    # Logging out revokes the token on the cloud.
    login = await CloudClient.login(cloud.url, cloud.first_start.email, cloud.first_start.password)
    async with CloudClient(cloud.url, login.token) as session:
        await session.logout()
        with pytest.raises(AuthError):
            await session.me()


@sqlite_only
async def test_client_errors_are_typed_and_not_retryable(clients: Clients) -> None:
    with pytest.raises(InvalidRequest) as invalid:
        await clients.user.create_task(clients.project_id, "   ")
    assert [e.field for e in invalid.value.errors] == ["title"]
    assert invalid.value.status == 422 and not invalid.value.retryable
    with pytest.raises(NotFound):
        await clients.user.task(10**9)
    with pytest.raises(Forbidden):
        await clients.user.claim()  # a user token on a worker endpoint


async def test_an_unreachable_cloud_is_retryable() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with CloudClient(f"http://127.0.0.1:{port}", "t") as client:
        with pytest.raises(CloudUnavailable) as down:
            await client.me()
    assert down.value.retryable is True and down.value.status is None
