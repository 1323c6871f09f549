"""Every resource of the REST API end to end: organisations, projects, sprints, tasks and their
actions, comments, events, artifacts, follow-ups, workers and the knowledge graph."""

from __future__ import annotations

import hashlib
from typing import Any

from tests.conftest import Cloud
from tests.support.client import Api, Reply, Worker, fence, new_user


def problem(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, f"expected {status}, got {reply.status}: {reply.body}"
    assert isinstance(reply.body, dict) and reply.body["status"] == status
    return reply.body


def fields(reply: Reply) -> list[str]:
    """The fields a 422 names."""
    body = problem(reply, 422)
    return [e["field"] for e in body["errors"]]


async def all_pages(api: Api, path: str, **params: Any) -> list[list[dict[str, Any]]]:
    """Follow next_cursor to the end; returns the pages."""
    pages: list[list[dict[str, Any]]] = []
    after = 0
    while True:
        body = (await api.get(path, params={**params, "after": after})).ok()
        pages.append(body["items"])
        if body["next_cursor"] is None:
            return pages
        assert body["next_cursor"] == body["items"][-1]["id"]
        after = body["next_cursor"]
        assert len(pages) < 50, "the cursor chain does not end"


async def new_task(api: Api, pid: int, title: str = "t", **extra: Any) -> dict[str, Any]:
    task: dict[str, Any] = (await api.post(f"/projects/{pid}/tasks", {"title": title, **extra})).ok(
        201
    )
    return task


async def status_moves(api: Api, task_id: int) -> list[tuple[str | None, str | None]]:
    events = (await api.get(f"/tasks/{task_id}/events", params={"kind": "status"})).ok()["items"]
    return [(e["from_status"], e["to_status"]) for e in events]


# --- organisations and projects -----------------------------------------------------------


async def test_orgs_create_list_get_patch(cloud: Cloud) -> None:
    api = cloud.api
    org = (await api.post("/orgs", {"name": "Acme", "slug": "acme"})).ok(201)
    assert (org["name"], org["slug"], org["role"]) == ("Acme", "acme", "owner")
    assert fields(await api.post("/orgs", {"name": "Again", "slug": "acme"})) == ["slug"]
    assert fields(await api.post("/orgs", {"name": "Bad", "slug": "Not A Slug"})) == ["slug"]
    listed = (await api.get("/orgs")).ok()["items"]
    assert [o["slug"] for o in listed] == ["default", "acme"]
    assert (await api.get(f"/orgs/{org['id']}")).ok()["name"] == "Acme"
    renamed = (await api.patch(f"/orgs/{org['id']}", {"name": "Acme Inc"})).ok()
    assert renamed["name"] == "Acme Inc" and renamed["slug"] == "acme"
    assert (await api.get(f"/orgs/{org['id']}")).ok()["name"] == "Acme Inc"
    problem(await api.get("/orgs/999999"), 404)
    # The creator is the only member, as owner.
    members = (await api.get(f"/orgs/{org['id']}/members")).ok()
    assert [(m["email"], m["role"]) for m in members] == [("admin@localhost", "owner")]


async def test_project_remotes_are_stored_as_fingerprints(cloud: Cloud) -> None:
    api = cloud.api
    org = (await api.post("/orgs", {"name": "Acme", "slug": "acme"})).ok(201)
    remotes = [
        "git@github.com:Acme/App.git",
        "https://github.com/Acme/App",  # the same repository written another way
        "ssh://git@GitHub.com:22/Acme/Lib.git",
    ]
    body = {"org_id": org["id"], "name": "App", "slug": "app", "remotes": remotes}
    project = (await api.post("/projects", body)).ok(201)
    assert project["remotes"] == ["github.com/Acme/App", "github.com/Acme/Lib"]
    assert (await api.get(f"/projects/{project['id']}")).ok()["remotes"] == project["remotes"]
    assert fields(await api.post("/projects", body)) == ["slug"]  # slug taken in this org
    bad = {**body, "slug": "other", "remotes": ["github.com/Acme/App", "not a remote"]}
    assert "remotes.1" in fields(await api.post("/projects", bad))
    patched = (
        await api.patch(
            f"/projects/{project['id']}", {"name": "App 2", "remotes": ["git@gitlab.com:x/y.git"]}
        )
    ).ok()
    assert (patched["name"], patched["slug"], patched["remotes"]) == (
        "App 2",
        "app",
        ["gitlab.com/x/y"],
    )
    assert (await api.get(f"/projects/{project['id']}")).ok()["name"] == "App 2"


async def test_project_list_pagination_visits_each_once(cloud: Cloud) -> None:
    api = cloud.api
    org = (await api.post("/orgs", {"name": "Many", "slug": "many"})).ok(201)
    created = [
        (await api.post("/projects", {"org_id": org["id"], "name": f"P{i}", "slug": f"p{i}"})).ok(
            201
        )["id"]
        for i in range(5)
    ]
    pages = await all_pages(api, "/projects", org_id=org["id"], limit=2)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [p["id"] for page in pages for p in page] == created
    # Without the org filter the admin also sees the bootstrap project, still exactly once.
    everything = [p["id"] for page in await all_pages(api, "/projects", limit=2) for p in page]
    assert everything == [cloud.project_id, *created]


# --- sprints ------------------------------------------------------------------------------


async def test_sprints_create_list_get_patch(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    sprint = (
        await api.post(
            f"/projects/{pid}/sprints",
            {"name": "S1", "goal": "ship", "starts_on": "2030-01-01", "ends_on": "2030-01-14"},
        )
    ).ok(201)
    assert (sprint["state"], sprint["starts_on"], sprint["ends_on"]) == (
        "planned",
        "2030-01-01",
        "2030-01-14",
    )
    other = (await api.post(f"/projects/{pid}/sprints", {"name": "S2"})).ok(201)
    listed = (await api.get(f"/projects/{pid}/sprints")).ok()["items"]
    assert [s["id"] for s in listed] == [sprint["id"], other["id"]]
    assert (await api.get(f"/sprints/{sprint['id']}")).ok()["goal"] == "ship"
    patched = (await api.patch(f"/sprints/{sprint['id']}", {"state": "active"})).ok()
    assert (patched["state"], patched["name"]) == ("active", "S1")
    # ends_on before starts_on is refused naming ends_on: in one body, or against the stored
    # starts_on — and the failed patch changes nothing.
    backwards = {"name": "S3", "starts_on": "2030-02-10", "ends_on": "2030-02-01"}
    assert fields(await api.post(f"/projects/{pid}/sprints", backwards)) == ["ends_on"]
    assert fields(await api.patch(f"/sprints/{sprint['id']}", {"ends_on": "2029-12-31"})) == [
        "ends_on"
    ]
    assert fields(
        await api.patch(
            f"/sprints/{sprint['id']}", {"starts_on": "2030-03-02", "ends_on": "2030-03-01"}
        )
    ) == ["ends_on"]
    assert (await api.get(f"/sprints/{sprint['id']}")).ok() == patched
    assert len((await api.get(f"/projects/{pid}/sprints")).ok()["items"]) == 2
    problem(await api.get("/sprints/999999"), 404)


# --- tasks ----------------------------------------------------------------------------------


async def test_task_list_filters_and_pagination(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    sprint = (await api.post(f"/projects/{pid}/sprints", {"name": "S"})).ok(201)
    a = await new_task(api, pid, "a", labels=["ui", "bug"], sprint_id=sprint["id"])
    b = await new_task(api, pid, "b", labels=["bug"], status="queued")
    c = await new_task(api, pid, "c", labels=["ui"], sprint_id=sprint["id"], status="queued")
    d = await new_task(api, pid, "d")
    assert (b["status"], b["queued_at"] is not None) == ("queued", True)
    assert problem(
        await api.post(f"/projects/{pid}/tasks", {"title": "x", "sprint_id": 999999}), 422
    )["errors"][0]["field"] == ("sprint_id")

    async def ids(**params: Any) -> list[int]:
        return [
            t["id"]
            for page in await all_pages(api, f"/projects/{pid}/tasks", **params)
            for t in page
        ]

    assert await ids() == [a["id"], b["id"], c["id"], d["id"]]
    assert await ids(status="queued") == [b["id"], c["id"]]
    assert await ids(status="backlog") == [a["id"], d["id"]]
    assert await ids(sprint_id=sprint["id"]) == [a["id"], c["id"]]
    assert await ids(label="bug") == [a["id"], b["id"]]
    assert await ids(label="ui", status="queued") == [c["id"]]
    assert await ids(label="nope") == []
    pages = await all_pages(api, f"/projects/{pid}/tasks", limit=1, label="ui")
    assert [[t["id"] for t in p] for p in pages] == [[a["id"]], [c["id"]]]
    pages = await all_pages(api, f"/projects/{pid}/tasks", limit=3)
    assert [len(p) for p in pages] == [3, 1]
    got = (await api.get(f"/tasks/{a['id']}")).ok()
    assert got == a and got["labels"] == ["ui", "bug"] and got["sprint_id"] == sprint["id"]


async def test_task_patch_is_version_guarded(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    task = await new_task(api, pid, "first", description="d")
    v2 = (await api.patch(f"/tasks/{task['id']}", {"title": "second", "version": 1})).ok()
    assert (v2["title"], v2["version"], v2["description"]) == ("second", 2, "d")
    stale = problem(await api.patch(f"/tasks/{task['id']}", {"title": "lost", "version": 1}), 409)
    assert stale["current"]["version"] == 2 and stale["current"]["status"] == "backlog"
    assert fields(await api.patch(f"/tasks/{task['id']}", {"title": None})) == ["title"]
    unchanged = (await api.get(f"/tasks/{task['id']}")).ok()
    assert (unchanged["title"], unchanged["version"]) == ("second", 2)
    # Without a version the write just applies; labels and priority are editable too.
    v3 = (await api.patch(f"/tasks/{task['id']}", {"labels": ["x"], "priority": 5})).ok()
    assert (v3["labels"], v3["priority"], v3["version"]) == (["x"], 5, 3)
    updated = (await api.get(f"/tasks/{task['id']}/events", params={"kind": "updated"})).ok()
    assert [e["data"]["fields"] for e in updated["items"]] == [["title"], ["labels", "priority"]]


async def test_queue_cancel_retry(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    task = await new_task(api, pid)
    tid = task["id"]
    queued = (await api.post(f"/tasks/{tid}/queue", {"version": 1, "comment": "go"})).ok()
    assert queued["status"] == "queued" and queued["queued_at"] is not None
    assert (await api.post(f"/tasks/{tid}/cancel")).ok()["status"] == "cancelled"
    retried = (await api.post(f"/tasks/{tid}/retry")).ok()
    assert retried["status"] == "queued"
    assert await status_moves(api, tid) == [
        ("backlog", "queued"),
        ("queued", "cancelled"),
        ("cancelled", "queued"),
    ]
    events = (await api.get(f"/tasks/{tid}/events", params={"kind": "status"})).ok()["items"]
    assert events[0]["data"] == {"comment": "go"} and events[0]["actor"] == "user"
    # An action guarded by a stale version is refused with the current state.
    stale = problem(await api.post(f"/tasks/{tid}/cancel", {"version": 1}), 409)
    assert stale["current"]["status"] == "queued"


async def test_forbidden_transitions_are_409_with_current_status(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    task = await new_task(api, pid)
    tid = task["id"]
    detail = problem(await api.post(f"/tasks/{tid}/approve"), 409)
    assert detail["current"] == {"id": tid, "status": "backlog", "version": 1, "attempt": 0}
    assert "'backlog'" in detail["detail"] and "'done'" in detail["detail"]
    (await api.post(f"/tasks/{tid}/cancel")).ok()
    for action in ("cancel", "approve"):
        current = problem(await api.post(f"/tasks/{tid}/{action}"), 409)["current"]
        assert (current["status"], current["version"]) == ("cancelled", 2)
    done = await new_task(api, pid, status="queued")
    worker = await Worker.create(api, pid, "w")
    claim = (await worker.claim()).ok()
    # A worker cannot jump over running and the review either.
    jumped = problem(await worker.status(claim, "verification"), 409)
    assert jumped["current"]["status"] == "claimed"
    for status in ("running", "awaiting_review", "verification"):
        (await worker.status(claim, status)).ok()
    (await api.post(f"/tasks/{done['id']}/approve")).ok()
    for action in ("cancel", "approve", "queue"):
        assert (
            problem(await api.post(f"/tasks/{done['id']}/{action}"), 409)["current"]["status"]
            == "done"
        )
    assert await status_moves(api, tid) == [("backlog", "cancelled")]
    assert (await api.get(f"/tasks/{tid}")).ok()["version"] == 2
    assert (await api.get(f"/tasks/{done['id']}")).ok()["status"] == "done"


async def test_actions_apply_only_from_their_documented_state(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    task = await new_task(api, pid)
    tid = task["id"]
    refused: list[tuple[str, dict[str, Any]]] = [
        ("retry", {}),  # failed | cancelled → queued
        ("request-changes", {"feedback": "no"}),  # verification → queued
        ("answer", {"answer": "42"}),  # needs_input → queued
    ]
    for action, body in refused:
        detail = problem(await api.post(f"/tasks/{tid}/{action}", body), 409)
        assert detail["current"]["status"] == "backlog", action
    assert (await api.get(f"/tasks/{tid}")).ok()["feedback"] is None


async def test_request_changes_hands_feedback_to_the_next_claim(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    task = await new_task(api, pid, status="queued")
    worker = await Worker.create(api, pid, "w")
    claim = (await worker.claim()).ok()
    assert claim["task"]["feedback"] is None
    for status in ("running", "awaiting_review"):
        (await worker.status(claim, status)).ok()
    (await worker.status(claim, "verification", summary="did it")).ok()
    assert fields(await api.post(f"/tasks/{task['id']}/request-changes", {"feedback": ""})) == [
        "feedback"
    ]
    back = (
        await api.post(f"/tasks/{task['id']}/request-changes", {"feedback": "also fix the docs"})
    ).ok()
    assert (back["status"], back["feedback"]) == ("queued", "also fix the docs")
    again = (await worker.claim()).ok()
    assert again["task"]["id"] == task["id"] and again["attempt"] == 2
    assert again["task"]["feedback"] == "also fix the docs"
    assert again["claim_token"] != claim["claim_token"]
    # The first attempt's fence no longer holds the task.
    assert problem(await worker.status(claim, "running"), 409)["current"]["attempt"] == 2
    for status in ("running", "awaiting_review", "verification"):
        (await worker.status(again, status)).ok()
    done = (await api.post(f"/tasks/{task['id']}/approve")).ok()
    assert done["status"] == "done"


async def test_answer_after_needs_input(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    task = await new_task(api, pid, status="queued")
    worker = await Worker.create(api, pid, "w")
    claim = (await worker.claim()).ok()
    (await worker.status(claim, "running")).ok()
    assert fields(await worker.status(claim, "needs_input")) == ["question"]
    asked = (await worker.status(claim, "needs_input", question="Which database?")).ok()
    assert (asked["status"], asked["status_reason"]) == ("needs_input", "Which database?")
    assert fields(await api.post(f"/tasks/{task['id']}/answer", {})) == ["answer"]
    answered = (await api.post(f"/tasks/{task['id']}/answer", {"answer": "PostgreSQL"})).ok()
    assert answered["status"] == "queued"
    again = (await worker.claim()).ok()
    assert (again["task"]["id"], again["task"]["feedback"]) == (task["id"], "PostgreSQL")
    answers = [
        e["data"].get("answer")
        for e in (await api.get(f"/tasks/{task['id']}/events")).ok()["items"]
    ]
    assert "PostgreSQL" in answers


async def test_retry_a_failed_task(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    task = await new_task(api, pid, status="queued")
    worker = await Worker.create(api, pid, "w")
    claim = (await worker.claim()).ok()
    (await worker.status(claim, "running")).ok()
    failed = (await worker.status(claim, "failed", reason="tests do not pass")).ok()
    assert (failed["status"], failed["status_reason"]) == ("failed", "tests do not pass")
    retried = (await api.post(f"/tasks/{task['id']}/retry")).ok()
    assert (retried["status"], retried["status_reason"]) == ("queued", None)
    assert (await worker.claim()).ok()["attempt"] == 2


async def test_comments_and_events(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    task = await new_task(api, pid)
    tid = task["id"]
    comment = (await api.post(f"/tasks/{tid}/comments", {"body": "looks good"})).ok(201)
    assert (comment["kind"], comment["data"], comment["task_id"]) == (
        "comment",
        {"body": "looks good"},
        tid,
    )
    assert fields(await api.post(f"/tasks/{tid}/comments", {"body": ""})) == ["body"]
    for i in range(3):
        (await api.post(f"/tasks/{tid}/comments", {"body": f"c{i}"})).ok(201)
    events = [e for page in await all_pages(api, f"/tasks/{tid}/events", limit=2) for e in page]
    assert [e["kind"] for e in events] == ["created", "comment", "comment", "comment", "comment"]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    comments = (await api.get(f"/tasks/{tid}/events", params={"kind": "comment"})).ok()["items"]
    assert [c["data"]["body"] for c in comments] == ["looks good", "c0", "c1", "c2"]
    assert comments[0]["id"] == comment["id"]
    # A comment does not move the task.
    assert (await api.get(f"/tasks/{tid}")).ok()["version"] == 1


async def test_artifacts_upload_list_fetch(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    task = await new_task(api, pid, status="queued")
    tid = task["id"]
    worker = await Worker.create(api, pid, "w")
    claim = (await worker.claim()).ok()
    (await worker.status(claim, "running")).ok()
    patch = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-print('hi')\n+print('hello ✓')\n"
    body = {**fence(claim), "kind": "patch", "media_type": "text/x-diff", "content": patch}
    art = (await worker.api.post(f"/worker/tasks/{tid}/artifacts", body)).ok(201)
    expected = hashlib.sha256(patch.encode()).hexdigest()
    assert (art["sha256"], art["size"], art["attempt"]) == (expected, len(patch.encode()), 1)
    again = (await worker.api.post(f"/worker/tasks/{tid}/artifacts", body)).ok(201)
    assert again["id"] == art["id"], "the same content is not stored twice"
    listed = (await api.get(f"/tasks/{tid}/artifacts")).ok()["items"]
    assert [a["id"] for a in listed] == [art["id"]]
    fetched = (await api.get(f"/tasks/{tid}/artifacts/{art['id']}")).ok()
    assert fetched["content"] == patch and fetched["media_type"] == "text/x-diff"
    assert hashlib.sha256(fetched["content"].encode()).hexdigest() == fetched["sha256"]
    events = (await api.get(f"/tasks/{tid}/events", params={"kind": "artifact"})).ok()["items"]
    assert [e["data"]["sha256"] for e in events] == [expected]
    # A forged fence is refused, and the artifact is not under another task.
    forged = {**body, "claim_token": "x" * 20, "content": "other"}
    problem(await worker.api.post(f"/worker/tasks/{tid}/artifacts", forged), 409)
    other = await new_task(api, pid)
    problem(await api.get(f"/tasks/{other['id']}/artifacts/{art['id']}"), 404)
    assert len((await api.get(f"/tasks/{tid}/artifacts")).ok()["items"]) == 1


async def test_worker_follow_up_task_lands_in_backlog(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    parent = await new_task(api, pid, status="queued")
    worker = await Worker.create(api, pid, "w")
    (await worker.claim()).ok()
    follow = (
        await worker.api.post(
            "/worker/tasks",
            {"title": "Add tests", "description": "cover x", "parent_task_id": parent["id"]},
        )
    ).ok(201)
    assert (follow["status"], follow["project_id"], follow["title"]) == (
        "backlog",
        pid,
        "Add tests",
    )
    backlog = (await api.get(f"/projects/{pid}/tasks", params={"status": "backlog"})).ok()
    assert [t["id"] for t in backlog["items"]] == [follow["id"]]
    created = (await api.get(f"/tasks/{follow['id']}/events")).ok()["items"][0]
    assert (created["kind"], created["actor"], created["actor_id"]) == (
        "created",
        "worker",
        worker.id,
    )
    assert created["data"] == {"parent_task_id": parent["id"]}
    assert (await worker.claim()).status == 204, "a follow-up waits for a person to queue it"


async def test_workers_list_shows_current_tasks(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    t1 = await new_task(api, pid, status="queued")
    w1 = await Worker.create(api, pid, "w1")
    w2 = await Worker.create(api, pid, "w2")
    claim = (await w1.claim()).ok()

    async def holding() -> dict[str, list[int]]:
        items = (await api.get(f"/projects/{pid}/workers")).ok()["items"]
        return {w["name"]: w["current_task_ids"] for w in items}

    assert await holding() == {"w1": [t1["id"]], "w2": []}
    (await w1.status(claim, "running")).ok()
    assert await holding() == {"w1": [t1["id"]], "w2": []}
    (await w1.status(claim, "awaiting_review")).ok()
    assert await holding() == {"w1": [], "w2": []}
    assert w2.id is not None


# --- knowledge graph ------------------------------------------------------------------------


async def test_knowledge_graph_upsert_get_delete(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    graph = f"/projects/{pid}/graph"
    nodes = [
        {"kind": "file", "key": "src/app.py", "attrs": {"language": "python", "lines": 120}},
        {"kind": "file", "key": "src/db.py", "attrs": {"language": "python"}},
        {"kind": "dependency", "key": "sqlalchemy", "attrs": {"versions": ["2.0"]}},
    ]
    edges = [
        {
            "src": {"kind": "file", "key": "src/app.py"},
            "dst": {"kind": "file", "key": "src/db.py"},
            "kind": "imports",
        },
        {
            "src": {"kind": "file", "key": "src/db.py"},
            "dst": {"kind": "dependency", "key": "sqlalchemy"},
            "kind": "uses",
        },
    ]
    assert (await api.post(graph, {"nodes": nodes, "edges": edges})).ok() == {
        "nodes": 3,
        "edges": 2,
    }
    got = (await api.get(graph)).ok()
    by_key = {n["key"]: n for n in got["nodes"]}
    assert by_key["src/app.py"]["attrs"] == {"language": "python", "lines": 120}
    pairs = {(e["src_id"], e["dst_id"], e["kind"]) for e in got["edges"]}
    app, db, dep = (by_key[k]["id"] for k in ("src/app.py", "src/db.py", "sqlalchemy"))
    assert pairs == {(app, db, "imports"), (db, dep, "uses")}
    # Upserting again updates attributes in place and does not duplicate nodes or edges.
    nodes[0]["attrs"] = {"language": "python", "lines": 130}
    (await api.post(graph, {"nodes": nodes[:1], "edges": edges[:1]})).ok()
    got = (await api.get(graph)).ok()
    assert len(got["nodes"]) == 3 and len(got["edges"]) == 2
    assert {n["key"]: n for n in got["nodes"]}["src/app.py"]["attrs"]["lines"] == 130
    assert [
        n["key"] for n in (await api.get(graph, params={"kind": "dependency"})).ok()["nodes"]
    ] == ["sqlalchemy"]
    # An edge naming an unknown node is a 422 naming it, and the whole upsert is rolled back.
    dangling = {
        "nodes": [{"kind": "file", "key": "new.py"}],
        "edges": [
            edges[0],
            {
                "src": {"kind": "file", "key": "ghost.py"},
                "dst": {"kind": "file", "key": "new.py"},
                "kind": "imports",
            },
        ],
    }
    assert fields(await api.post(graph, dangling)) == ["edges.1.src"]
    assert "new.py" not in {n["key"] for n in (await api.get(graph)).ok()["nodes"]}
    # Attribute values are short metadata, never file contents.
    huge = {"nodes": [{"kind": "file", "key": "big.py", "attrs": {"content": "x" * 5000}}]}
    assert "nodes.0.attrs.content" in " ".join(fields(await api.post(graph, huge)))
    # Deleting a node removes its edges.
    assert (await api.delete(f"{graph}/nodes/{db}")).status == 204
    got = (await api.get(graph)).ok()
    assert {n["key"] for n in got["nodes"]} == {"src/app.py", "sqlalchemy"}
    assert got["edges"] == []
    problem(await api.delete(f"{graph}/nodes/{db}"), 404)


async def test_graph_writers_and_readers(cloud: Cloud) -> None:
    api, pid = cloud.api, cloud.project_id
    graph = f"/projects/{pid}/graph"
    viewer = await new_user(api, "vera@example.com")
    org_id = (await api.get(f"/projects/{pid}")).ok()["org_id"]
    member = {"email": "vera@example.com", "role": "viewer"}
    (await api.post(f"/orgs/{org_id}/members", member)).ok(201)
    node = {"nodes": [{"kind": "file", "key": "a.py"}]}
    problem(await viewer.post(graph, node), 403)
    assert (await viewer.get(graph)).ok()["nodes"] == []
    worker = await Worker.create(api, pid, "w")
    (await worker.api.post(graph, node)).ok()
    got = (await viewer.get(graph)).ok()["nodes"]
    assert [n["key"] for n in got] == ["a.py"]
    problem(await viewer.delete(f"{graph}/nodes/{got[0]['id']}"), 403)
    assert len((await api.get(graph)).ok()["nodes"]) == 1
