"""Hostile and sloppy input: every rejection is a precise 4xx problem (never a 500), names what
is wrong and how to fix it, and leaves the data exactly as it was."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Cloud
from tests.support.client import Api, Reply, Worker, fence

MAX_BODY = 4096
HUGE = 2**64  # one past the 64-bit range, signed or not
JSON_HEADERS = {"Content-Type": "application/json"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """A small body limit, so a 413 takes a few kilobytes rather than megabytes."""
    return {"max_body_bytes": MAX_BODY}


def problem(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, f"expected {status}, got {reply.status}: {reply.body}"
    content_type = {k.lower(): v for k, v in reply.headers.items()}.get("content-type", "")
    assert content_type.startswith("application/problem+json")
    assert isinstance(reply.body, dict) and reply.body["status"] == status
    return reply.body


def field_errors(reply: Reply) -> dict[str, dict[str, Any]]:
    """A 422's errors by field."""
    body = problem(reply, 422)
    return {e["field"]: e for e in body["errors"]}


async def snapshot(api: Api, pid: int) -> list[dict[str, Any]]:
    """The project's tasks (with their versions): what a rejected write must not change."""
    items: list[dict[str, Any]] = (
        await api.get(f"/projects/{pid}/tasks", params={"limit": 200})
    ).ok()["items"]
    return items


async def raw_post(api: Api, path: str, data: bytes) -> Reply:
    return await api.call("POST", path, data=data, headers=JSON_HEADERS)


async def test_malformed_json_is_400(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    await api.post(f"/projects/{pid}/tasks", {"title": "existing"})
    before = await snapshot(api, pid)
    path = f"/projects/{pid}/tasks"
    for data in (b'{"title": ', b"{'title': 'x'}", b"\xff\xfe", b'{"title": "x"} trailing'):
        body = problem(await raw_post(api, path, data), 400)
        assert body["title"] == "Malformed JSON", data
    # Valid JSON that is not an object is a 422 about the body as a whole.
    for data in (b"[1, 2]", b'"title"', b"null"):
        assert "(body)" in field_errors(await raw_post(api, path, data)), data
    tid = before[0]["id"]
    problem(await api.call("PATCH", f"/tasks/{tid}", data=b"{", headers=JSON_HEADERS), 400)
    assert await snapshot(api, pid) == before


async def test_wrong_types_are_422_naming_the_field_and_a_fix(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    path = f"/projects/{pid}/tasks"
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"title": 5}, "title", "send a string"),
        ({"title": "x", "priority": "high"}, "priority", "send a whole number"),
        ({"title": "x", "labels": ["ok", 7]}, "labels.1", "send a string"),
        ({"title": "x", "status": "done"}, "status", "use one of the listed values"),
        ({"title": "x", "priority": 5000}, "priority", "use a smaller number"),
        ({"title": "x" * 301}, "title", "shorten it"),
        ({"description": "no title"}, "title", "add this field"),
    ]
    for body, field, fix in cases:
        errors = field_errors(await api.post(path, body))
        assert field in errors, (body, errors)
        assert errors[field]["fix"] == fix and errors[field]["location"] == "body"
        assert errors[field]["message"]
    # Several mistakes at once are all reported.
    errors = field_errors(await api.post(path, {"title": "", "priority": "x", "labels": "bug"}))
    assert {"title", "priority", "labels"} <= set(errors)
    assert await snapshot(api, pid) == []


async def test_unknown_field_is_422_naming_it(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    task = (await api.post(f"/projects/{pid}/tasks", {"title": "t"})).ok(201)
    errors = field_errors(await api.post(f"/projects/{pid}/tasks", {"title": "x", "tittle": "y"}))
    assert list(errors) == ["tittle"]
    assert "remove this field" in errors["tittle"]["fix"]
    errors = field_errors(await api.patch(f"/tasks/{task['id']}", {"status": "done"}))
    assert list(errors) == ["status"], "status moves only through the actions"
    errors = field_errors(await api.post(f"/tasks/{task['id']}/queue", {"force": True}))
    assert list(errors) == ["force"]
    assert await snapshot(api, pid) == [task]


async def test_oversized_body_is_413_problem(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    big = json.dumps({"title": "t", "description": "x" * (MAX_BODY + 1)}).encode()
    body = problem(await raw_post(api, f"/projects/{pid}/tasks", big), 413)
    assert str(MAX_BODY) in body["detail"]
    # Just under the limit is fine: the limit is the body size, not something smaller.
    fits = {"title": "t", "description": "x" * (MAX_BODY - 100)}
    task = (await api.post(f"/projects/{pid}/tasks", fits)).ok(201)
    problem(
        await api.call("PATCH", f"/tasks/{task['id']}", data=big.replace(b'"title"', b'"labels"')),
        413,
    )
    assert await snapshot(api, pid) == [task]


async def test_integers_beyond_64_bits_are_422_not_500(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    task = (await api.post(f"/projects/{pid}/tasks", {"title": "t", "status": "queued"})).ok(201)
    tid = task["id"]
    for body, field in [
        ({"title": "x", "sprint_id": HUGE}, "sprint_id"),
        ({"title": "x", "priority": -HUGE}, "priority"),
    ]:
        assert field in field_errors(await api.post(f"/projects/{pid}/tasks", body))
    assert "version" in field_errors(await api.patch(f"/tasks/{tid}", {"version": HUGE}))
    assert "version" in field_errors(await api.post(f"/tasks/{tid}/cancel", {"version": HUGE}))
    for params in ({"after": str(HUGE)}, {"limit": str(HUGE)}, {"sprint_id": str(HUGE)}):
        assert set(params) <= set(
            field_errors(await api.get(f"/projects/{pid}/tasks", params=params))
        )
    assert "after" in field_errors(
        await api.get(f"/tasks/{tid}/events/stream", params={"after": str(HUGE)})
    )
    worker = await Worker.create(api, pid, "w")
    claim = (await worker.claim()).ok()
    log = {**fence(claim), "seq": HUGE, "text": "hi"}
    assert "seq" in field_errors(await worker.api.post(f"/worker/tasks/{tid}/logs", log))
    hb = {**fence(claim), "attempt": HUGE}
    assert "attempt" in field_errors(await worker.api.post(f"/worker/tasks/{tid}/heartbeat", hb))
    token = {"worker_name": "x", "expires_in_days": HUGE}
    assert "expires_in_days" in field_errors(await api.post(f"/projects/{pid}/tokens", token))
    after = (await api.get(f"/tasks/{tid}")).ok()
    assert (after["status"], after["version"]) == ("claimed", claim["task"]["version"])
    assert len(await snapshot(api, pid)) == 1
    events = (await api.get(f"/tasks/{tid}/events", params={"kind": "log"})).ok()["items"]
    assert events == []
    assert len((await api.get(f"/projects/{pid}/tokens")).ok()["items"]) == 1


async def test_graph_attribute_big_integers_round_trip_exactly(cloud: Cloud) -> None:
    """Graph attributes are free-form metadata: their integers are not bounded (unlike every
    id and counter), so a huge one must be stored and returned exactly — never a 500 or a
    silently rounded value."""
    api, pid = cloud.api, cloud.project_id
    attrs = {"lines": HUGE * 1024, "negative": -HUGE, "small": 7}
    node = {"kind": "file", "key": "a.py", "attrs": attrs}
    assert (await api.post(f"/projects/{pid}/graph", {"nodes": [node]})).ok()["nodes"] == 1
    nodes = (await api.get(f"/projects/{pid}/graph")).ok()["nodes"]
    assert [n["attrs"] for n in nodes] == [attrs]


async def test_unknown_query_parameter_is_422(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    errors = field_errors(await api.get(f"/projects/{pid}/tasks", params={"stauts": "queued"}))
    assert list(errors) == ["stauts"] and errors["stauts"]["location"] == "query"
    # Endpoints without any query parameters refuse them too.
    body = problem(await api.get("/me", params={"verbose": "1"}), 422)
    assert "verbose" in body["detail"]
    body = problem(await api.post(f"/projects/{pid}/tasks?dry_run=1", {"title": "x"}), 422)
    assert "dry_run" in body["detail"]
    errors = field_errors(await api.get(f"/projects/{pid}/tasks", params={"limit": "0"}))
    assert errors["limit"]["fix"] == "use a larger number"
    assert await snapshot(api, pid) == []


async def test_bad_path_ids_are_404(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    task = (await api.post(f"/projects/{pid}/tasks", {"title": "t"})).ok(201)
    # Unicode digits pass str.isdigit(): '²' made int() crash (500), and the Arabic-Indic
    # spelling of the task's id used to find the task itself.
    arabic = "".join(chr(0x660 + int(d)) for d in str(task["id"]))
    bad_ids = ["abc", "0", "-1", "1e3", "01x", str(HUGE), "9" * 40, "²", arabic, "%20"]
    for raw in bad_ids:
        problem(await api.get(f"/tasks/{raw}"), 404)
        problem(await api.get(f"/projects/{raw}/tasks"), 404)
        problem(await api.post(f"/tasks/{raw}/cancel"), 404)
        problem(await api.patch(f"/tasks/{raw}", {"title": "x"}), 404)
        problem(await api.get(f"/tasks/{task['id']}/artifacts/{raw}"), 404)
    # An id that is well-formed but does not exist is a 404 too.
    problem(await api.get(f"/tasks/{task['id'] + 1000}"), 404)
    assert await snapshot(api, pid) == [task]


async def test_rejected_writes_change_nothing(cloud: Cloud) -> None:
    """A mix of refusals against one task: its version and timeline stay as they were."""
    api, pid = cloud.api, cloud.project_id
    task = (await api.post(f"/projects/{pid}/tasks", {"title": "t", "labels": ["a"]})).ok(201)
    tid = task["id"]
    timeline = (await api.get(f"/tasks/{tid}/events")).ok()["items"]
    attempts = [
        await api.patch(f"/tasks/{tid}", {"labels": ["ok"] * 21}),  # too many labels
        await api.patch(f"/tasks/{tid}", {"labels": ["ok"], "version": 99}),  # stale version
        await api.patch(f"/tasks/{tid}", {"title": "new", "sprint_id": 12345}),  # no sprint
        await api.post(f"/tasks/{tid}/approve"),  # wrong state
        await api.post(f"/tasks/{tid}/comments", {"body": ""}),
        await api.post(f"/tasks/{tid}/request-changes", {}),
        await raw_post(api, f"/tasks/{tid}/queue", b"{nope"),
    ]
    assert [r.status for r in attempts] == [422, 409, 422, 409, 422, 422, 400]
    assert await snapshot(api, pid) == [task]
    assert (await api.get(f"/tasks/{tid}/events")).ok()["items"] == timeline


async def test_explicit_null_for_a_field_that_cannot_be_null_is_422(cloud: Cloud) -> None:
    """Leaving a field out keeps it; sending null for one that cannot be null is refused,
    naming it (found by the fuzzer as a 500 on labels)."""
    api, pid = cloud.api, cloud.project_id
    task = (await api.post(f"/projects/{pid}/tasks", {"title": "t", "labels": ["a"]})).ok(201)
    sprint = (await api.post(f"/projects/{pid}/sprints", {"name": "s"})).ok(201)
    for field in ("title", "description", "priority", "labels"):
        body = problem(await api.patch(f"/tasks/{task['id']}", {field: None}), 422)
        assert body["errors"][0]["field"] == field
    for field in ("name", "goal", "state"):
        body = problem(await api.patch(f"/sprints/{sprint['id']}", {field: None}), 422)
        assert body["errors"][0]["field"] == field
    assert await snapshot(api, pid) == [task]
    # null is how sprint_id is cleared, so that one is accepted.
    assert (await api.patch(f"/tasks/{task['id']}", {"sprint_id": None})).ok()["sprint_id"] is None
