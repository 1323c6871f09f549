"""The basic worker loop against both databases: create → claim → run → review → verify → done."""

from __future__ import annotations

from tests.conftest import Cloud
from tests.support.client import Worker


async def test_task_goes_from_backlog_to_done(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    task = (await api.post(f"/projects/{pid}/tasks", {"title": "Fix the bug"})).ok(201)
    assert task["status"] == "backlog"
    worker = await Worker.create(api, pid, "laptop")
    assert (await worker.claim()).status == 204  # nothing queued yet
    (await api.post(f"/tasks/{task['id']}/queue")).ok()
    claim = (await worker.claim()).ok()
    assert claim["task"]["id"] == task["id"] and claim["attempt"] == 1
    for status in ("running", "awaiting_review"):
        (await worker.status(claim, status)).ok()
    (await worker.status(claim, "verification", summary="fixed")).ok()
    done = (await api.post(f"/tasks/{task['id']}/approve")).ok()
    assert done["status"] == "done" and done["summary"] == "fixed"
    events = (await api.get(f"/tasks/{task['id']}/events")).ok()["items"]
    moves = [(e["from_status"], e["to_status"]) for e in events if e["kind"] == "status"]
    assert moves == [
        ("backlog", "queued"),
        ("queued", "claimed"),
        ("claimed", "running"),
        ("running", "awaiting_review"),
        ("awaiting_review", "verification"),
        ("verification", "done"),
    ]
