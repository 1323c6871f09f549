"""``status_reason`` says why a task is in its current status, so it never outlives the move
that set it: a re-queued, re-claimed or cancelled task does not show an old reason (issue 16).
On both engines: the claim is its own statement on each."""

from __future__ import annotations

from typing import Any

from tests.conftest import Cloud
from tests.support.client import Api, Worker


async def reason_of(api: Api, task_id: int) -> tuple[str, str | None]:
    task: dict[str, Any] = (await api.get(f"/tasks/{task_id}")).ok()
    return task["status"], task["status_reason"]


async def started(cloud: Cloud, worker: Worker) -> dict[str, Any]:
    body = {"title": "t", "status": "queued"}
    (await cloud.api.post(f"/projects/{cloud.project_id}/tasks", body)).ok(201)
    claim: dict[str, Any] = (await worker.claim()).ok()
    (await worker.status(claim, "running")).ok()
    return claim


async def test_a_given_back_task_loses_its_reason_when_claimed_again(cloud: Cloud) -> None:
    api = cloud.api
    worker = await Worker.create(api, cloud.project_id, "w")
    claim = await started(cloud, worker)
    task_id = claim["task"]["id"]
    reason = "cancelled on the developer's machine"
    (await worker.status(claim, "queued", reason=reason)).ok()
    assert await reason_of(api, task_id) == ("queued", reason)
    again = (await worker.claim()).ok()
    assert again["task"]["id"] == task_id
    assert await reason_of(api, task_id) == ("claimed", None)
    assert again["task"]["status_reason"] is None


async def test_an_answered_question_is_not_the_reason_any_more(cloud: Cloud) -> None:
    api = cloud.api
    worker = await Worker.create(api, cloud.project_id, "w")
    claim = await started(cloud, worker)
    task_id = claim["task"]["id"]
    (await worker.status(claim, "needs_input", question="Which currency?")).ok()
    assert await reason_of(api, task_id) == ("needs_input", "Which currency?")
    (await api.post(f"/tasks/{task_id}/answer", {"answer": "EUR"})).ok()
    assert await reason_of(api, task_id) == ("queued", None)


async def test_cancel_and_retry_show_no_earlier_reason(cloud: Cloud) -> None:
    api = cloud.api
    worker = await Worker.create(api, cloud.project_id, "w")
    claim = await started(cloud, worker)
    task_id = claim["task"]["id"]
    (await worker.status(claim, "needs_input", question="Which currency?")).ok()
    (await api.post(f"/tasks/{task_id}/cancel", {"comment": "not needed"})).ok()
    assert await reason_of(api, task_id) == ("cancelled", None)
    (await api.post(f"/tasks/{task_id}/retry", {})).ok()
    assert await reason_of(api, task_id) == ("queued", None)
    claim = (await worker.claim()).ok()
    (await worker.status(claim, "running")).ok()
    (await worker.status(claim, "failed", reason="tests do not pass")).ok()
    assert await reason_of(api, task_id) == ("failed", "tests do not pass")
