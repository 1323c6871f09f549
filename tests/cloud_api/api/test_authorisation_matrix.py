"""Who may call what: every route (logout aside) by eight principals, through the real server.

The expected answers are spelled out here, independently of the code: per route the rule its
handlers enforced before routes declared their policy (a permission on a project, task, sprint
or organisation; or worker tokens only, people only, admins only, any token), and per role what
each permission grants. A request is *refused by the policy* when it gets 401, 403, or a 404
naming the route's own project / task / sprint / organisation (not confirming it exists); any
other answer (200, a 404 of an id inside it, a 409 stale claim, a 422 taken slug…) means the
policy let it through to the handler. This file uses only HTTP, so it runs unchanged against a
cloud from before the policy was declared, and gives the same answers.
"""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp

from tests.conftest import Cloud
from tests.support.client import Api, Worker, new_user

READ, WRITE, MANAGE, GRAPH, WORK = "read", "write_tasks", "manage", "write_graph", "work"
#: What each role's permission grants (docs/architecture.md, Roles).
GRANTS = {
    READ: {"owner", "member", "viewer", "worker"},
    WRITE: {"owner", "member"},
    MANAGE: {"owner"},
    GRAPH: {"owner", "member", "worker"},
    WORK: {"worker"},
}
#: Each principal's role in the project's organisation (admins act as owners everywhere).
ROLES: dict[str, str | None] = {
    "anonymous": None,
    "stranger": None,
    "other_worker": None,  # a worker token of another project
    "viewer": "viewer",
    "worker": "worker",
    "member": "member",
    "owner": "owner",
    "admin": "owner",
}
WORKERS = {"worker", "other_worker"}

FENCE = {"attempt": 1, "claim_token": "not-the-token"}
Rule = str | tuple[str, str]  # "signed" | "people" | "admin" | "worker" | (action, scope)

#: (method, path, rule, body). ``{x}`` are ids of the fixture's org, project, task, sprint…
ROUTES: list[tuple[str, str, Rule, dict[str, Any] | None]] = [
    ("GET", "/me", "signed", None),
    ("POST", "/users", "admin", {"name": "N", "password": "correct horse battery"}),
    ("GET", "/users", "admin", None),
    ("POST", "/orgs", "people", {"name": "N"}),
    ("GET", "/orgs", "signed", None),
    ("GET", "/orgs/{org}", (READ, "organisation"), None),
    ("PATCH", "/orgs/{org}", (MANAGE, "organisation"), {"name": "Acme"}),
    ("GET", "/orgs/{org}/members", (READ, "organisation"), None),
    ("POST", "/orgs/{org}/members", (MANAGE, "organisation"), {"role": "viewer"}),
    ("PATCH", "/orgs/{org}/members/{user}", (MANAGE, "organisation"), {"role": "viewer"}),
    ("DELETE", "/orgs/{org}/members/{user}", (MANAGE, "organisation"), None),
    ("POST", "/projects", (WRITE, "organisation"), {"name": "P"}),
    ("GET", "/projects", "signed", None),
    ("GET", "/projects/{project}", (READ, "project"), None),
    ("PATCH", "/projects/{project}", (MANAGE, "project"), {"name": "App"}),
    ("POST", "/projects/{project}/sprints", (WRITE, "project"), {"name": "s"}),
    ("GET", "/projects/{project}/sprints", (READ, "project"), None),
    ("GET", "/sprints/{sprint}", (READ, "sprint"), None),
    ("PATCH", "/sprints/{sprint}", (WRITE, "sprint"), {"name": "s"}),
    ("POST", "/sprints/{sprint}/queue", (WRITE, "sprint"), {}),
    ("POST", "/projects/{project}/tasks", (WRITE, "project"), {"title": "t"}),
    ("GET", "/projects/{project}/tasks", (READ, "project"), None),
    ("GET", "/tasks/{task}", (READ, "task"), None),
    ("PATCH", "/tasks/{task}", (WRITE, "task"), {"title": "t"}),
    ("POST", "/tasks/{task}/queue", (WRITE, "task"), {}),
    ("POST", "/tasks/{task}/cancel", (WRITE, "task"), {}),
    ("POST", "/tasks/{task}/retry", (WRITE, "task"), {}),
    ("POST", "/tasks/{task}/approve", (WRITE, "task"), {}),
    ("POST", "/tasks/{task}/request-changes", (WRITE, "task"), {"feedback": "f"}),
    ("POST", "/tasks/{task}/answer", (WRITE, "task"), {"answer": "a"}),
    ("POST", "/tasks/{task}/comments", (WRITE, "task"), {"body": "c"}),
    ("GET", "/tasks/{task}/events", (READ, "task"), None),
    ("GET", "/tasks/{task}/events/stream", (READ, "task"), None),
    ("GET", "/projects/{project}/events/stream", (READ, "project"), None),
    ("GET", "/tasks/{task}/artifacts", (READ, "task"), None),
    ("GET", "/tasks/{task}/artifacts/999999", (READ, "task"), None),
    ("POST", "/worker/register", "worker", {"host": "h"}),
    ("POST", "/worker/claim", "worker", {"wait_seconds": 0}),
    ("POST", "/worker/tasks/{task}/heartbeat", "worker", FENCE),
    ("POST", "/worker/tasks/{task}/status", "worker", {**FENCE, "status": "running"}),
    ("POST", "/worker/tasks/{task}/logs", "worker", {**FENCE, "seq": 0, "text": "x"}),
    ("POST", "/worker/tasks/{task}/artifacts", "worker", {**FENCE, "kind": "log", "content": "x"}),
    ("POST", "/worker/tasks/{task}/review", "worker", {**FENCE, "files": [{"path": "a"}]}),
    ("GET", "/worker/signals", "worker", None),
    ("POST", "/worker/tasks", "worker", {"title": "follow-up"}),
    ("GET", "/projects/{project}/workers", (READ, "project"), None),
    ("POST", "/projects/{project}/tokens", (MANAGE, "project"), {"worker_name": "w"}),
    ("GET", "/projects/{project}/tokens", (MANAGE, "project"), None),
    ("POST", "/projects/{project}/tokens/{token}/revoke", (MANAGE, "project"), {}),
    ("POST", "/projects/{project}/graph", (GRAPH, "project"), {"nodes": []}),
    ("GET", "/projects/{project}/graph", (READ, "project"), None),
    ("DELETE", "/projects/{project}/graph/nodes/999999", (GRAPH, "project"), None),
    ("POST", "/worker/projects/{project}/graph", (WORK, "project"), {"nodes": []}),
    ("POST", "/projects/{project}/plans", (WRITE, "project"), {"goal": "g"}),
    ("GET", "/projects/{project}/plans", (READ, "project"), None),
    ("GET", "/projects/{project}/plans/999999", (READ, "project"), None),
    ("POST", "/projects/{project}/plans/999999/accept", (WRITE, "project"), {"numbers": [1]}),
    ("POST", "/worker/plans/claim", "worker", {"wait_seconds": 0}),
    ("POST", "/worker/plans/999999/report", "worker", FENCE),
]


def expected(rule: Rule, principal: str) -> str:
    if principal == "anonymous":
        return "401"
    if rule == "signed":
        return "in"
    if rule == "people":
        return "403" if principal in WORKERS else "in"
    if rule == "admin":
        return "in" if principal == "admin" else "403"
    if rule == "worker":
        return "in" if principal in WORKERS else "403"
    assert isinstance(rule, tuple)
    action, scope = rule
    role = None if scope == "organisation" and principal in WORKERS else ROLES[principal]
    if role is None:
        return "404"
    return "in" if role in GRANTS[action] else "403"


async def probe(
    session: aiohttp.ClientSession, url: str, token: str | None, method: str, body: Any
) -> tuple[int, str]:
    """The status and the problem's detail; an event stream is closed once it has begun."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.request(method, url, json=body, headers=headers) as resp:
        if resp.content_type == "text/event-stream":
            return resp.status, ""
        payload = await resp.json(content_type=None) if await resp.read() else None
    detail = payload.get("detail", "") if isinstance(payload, dict) else ""
    return resp.status, str(detail)


def outcome(status: int, detail: str, rule: Rule, target: str) -> str:
    if status == 401:
        return "401"
    if status == 403:
        return "403"
    if status == 404 and isinstance(rule, tuple) and detail.startswith(f"{target} does not"):
        return "404"
    return "in"


async def test_every_route_refuses_and_admits_exactly_as_before(cloud: Cloud) -> None:
    admin, pid = cloud.api, cloud.project_id
    org = (await admin.get(f"/projects/{pid}")).ok()["org_id"]
    apis: dict[str, Api] = {"admin": admin, "anonymous": admin.as_(None)}
    for name in ("owner", "member", "viewer", "stranger", "dora"):
        apis[name] = await new_user(admin, f"{name}@example.com")
        if name in ("owner", "member", "viewer", "dora"):
            role = "viewer" if name == "dora" else name
            member = {"email": f"{name}@example.com", "role": role}
            (await admin.post(f"/orgs/{org}/members", member)).ok(201)
    apis["worker"] = (await Worker.create(admin, pid, "matrix-worker")).api
    other_org = (await admin.post("/orgs", {"name": "Other", "slug": "other"})).ok(201)["id"]
    other = {"org_id": other_org, "name": "O", "slug": "o"}
    other_pid = (await admin.post("/projects", other)).ok(201)["id"]
    apis["other_worker"] = (await Worker.create(admin, other_pid, "elsewhere")).api
    dora = (await apis["dora"].get("/me")).ok()["user"]["id"]
    spare = (await admin.post(f"/projects/{pid}/tokens", {"worker_name": "spare"})).ok(201)["id"]
    task = (await admin.post(f"/projects/{pid}/tasks", {"title": "target"})).ok(201)["id"]
    sprint = (await admin.post(f"/projects/{pid}/sprints", {"name": "S1"})).ok(201)["id"]
    ids = {"org": org, "project": pid, "task": task, "sprint": sprint, "user": dora, "token": spare}
    targets = {
        "organisation": f"organisation {org}",
        "project": f"project {pid}",
        "task": f"task {task}",
        "sprint": f"sprint {sprint}",
    }

    mismatches = []
    seen = 0
    for method, template, rule, body in ROUTES:
        path = template.format(**ids)
        for principal in ROLES:  # refused principals first: nothing they try changes anything
            payload = None if body is None else dict(body)
            if payload is not None and "password" in payload:
                payload["email"] = f"u-{uuid.uuid4().hex[:8]}@example.com"
            if payload is not None and template == "/orgs":
                payload["slug"] = f"o-{uuid.uuid4().hex[:8]}"
            if payload is not None and template == "/projects":
                payload |= {"org_id": org, "slug": f"p-{uuid.uuid4().hex[:8]}"}
            if payload is not None and template.endswith("/members"):
                payload["email"] = "dora@example.com"
            api = apis[principal]
            status, detail = await probe(
                api.session, f"{api.base_url}/api/v1{path}", api.token, method, payload
            )
            target = targets[rule[1]] if isinstance(rule, tuple) else ""
            got, want = outcome(status, detail, rule, target), expected(rule, principal)
            seen += 1
            if got != want:
                mismatches.append(f"{method} {template} as {principal}: {status} {detail!r}")
    assert mismatches == [], "\n".join(mismatches)
    assert seen == len(ROUTES) * len(ROLES)
