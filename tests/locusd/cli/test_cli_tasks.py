"""A task's whole life from the terminal, as a person moves it on the dashboard: ``locus tasks
queue|cancel|retry|approve|request-changes|answer|comment|edit`` against a real cloud (a real
worker, over REST, asks the question and offers the change), piped and ``--json``; a move the
state table forbids says from which status to which and what applies; projects named by slug or
inferred from the checkout's remote; and nobody moves a task of a project they cannot see."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from locusd.projects import WITH_PROJECT
from tests.conftest import Cloud
from tests.locusd.cli.test_cli_text import HOSTILE, SHOWN, assert_inert
from tests.locusd.cliuser import REMOTE, User
from tests.support.client import Api, Worker, new_user, timeline

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.parametrize("template", ["sqlite"], indirect=True),
]

MARKUP = "[/b] [red]x[/red] [link=file:///etc/passwd]y[/link]"


async def login(user: User, cloud: Cloud, token: str | None = None) -> None:
    status = await user.json("login", "--cloud", cloud.url, "--token", token or admin_token(cloud))
    assert status["loggedIn"]


def admin_token(cloud: Cloud) -> str:
    return cloud.first_start.token


async def slug(cloud: Cloud) -> str:
    return str((await cloud.api.get(f"/projects/{cloud.project_id}")).ok()["slug"])


async def refused(user: User, *args: str, code: int, stdin: str | None = None) -> str:
    """``locus ARGS`` fails with ``code``; its one-line error (never a traceback)."""
    returned, out, err = await user.locus(*args, check=False, stdin=stdin)
    assert returned == code, (returned, out, err)
    assert "Traceback" not in err and out == "", err
    return err


async def worker_reaches(
    worker: Worker, task_id: int, *moves: tuple[str, dict[str, Any]]
) -> dict[str, Any]:
    """A real worker claims the task and reports ``moves`` (status, extra) in turn."""
    claim = (await worker.api.post("/worker/claim", {"task_id": task_id})).ok()
    assert claim["task"]["id"] == task_id
    for status, extra in (("running", {}), *moves):
        (await worker.status(claim, status, **extra)).ok()
    return dict(claim)


async def test_a_task_moves_through_its_life_from_the_terminal(user: User, cloud: Cloud) -> None:
    await login(user, cloud)
    project = await slug(cloud)
    task = await user.json(
        "tasks", "create", "--project", project, "--title", MARKUP, "--backlog",
        "--priority", "urgent",
    )  # fmt: skip
    n = str(task["id"])
    assert (task["status"], task["priority"], task["title"]) == ("backlog", 300, MARKUP)

    # Piped: a tab-separated row, the named priority, the text as it is.
    _, out, _ = await user.locus("tasks", "list", "--project", project)
    assert out.splitlines() == [f"{n}\t{cloud.project_id}\tbacklog\t{MARKUP}\tP0"]

    # A move the table forbids: from which status to which, and what applies instead.
    err = await refused(user, "tasks", "approve", n, code=1)
    assert err == (
        f"error: cannot approve task {n}: 'approve' moves a task from 'verification' to 'done';"
        " this one is 'backlog' (what applies there: queue, cancel)\n"
    )

    _, out, _ = await user.locus("tasks", "queue", n, "--comment", f"go {MARKUP}")
    assert out == f"#{n} queued  {MARKUP}\n"
    assert (await user.json("tasks", "cancel", n))["status"] == "cancelled"
    assert (await user.json("tasks", "retry", n))["status"] == "queued"
    said = await user.json("tasks", "comment", n, "-", stdin=f"looks {MARKUP}\n")
    assert said["taskId"] == task["id"] and said["body"] == f"looks {MARKUP}\n"
    edited = await user.json(
        "tasks", "edit", n, "--title", "Median of an even list", "--priority", "P2",
        "--description", "-", stdin=f"the {MARKUP} case",
    )  # fmt: skip
    assert (edited["title"], edited["priority"], edited["description"]) == (
        "Median of an even list",
        100,
        f"the {MARKUP} case",
    )
    _, out, _ = await user.locus("tasks", "show", n)
    assert "priority P2 Medium" in out.splitlines() and f"the {MARKUP} case" in out, out
    err = await refused(user, "tasks", "edit", n, "--priority", "5000", code=2)
    assert "Invalid value for --priority: Input should be less than or equal to 1000" in err
    err = await refused(user, "tasks", "edit", n, "--priority", "someday", code=2)
    assert "use urgent (P0), high (P1), medium (P2), low (P3) or a number" in err

    # The agent asks; the person answers from the terminal (the question shown as data).
    worker = await Worker.create(cloud.api, cloud.project_id, "w1", [REMOTE])
    await worker_reaches(worker, task["id"], ("needs_input", {"question": f"which {HOSTILE}?"}))
    _, out, _ = await user.locus("tasks", "show", n)
    assert f"question: which {SHOWN}?" in out.splitlines(), out
    assert_inert(out)
    err = await refused(user, "tasks", "answer", n, code=2)
    assert "give the answer as an argument (or - to read it from stdin)" in err
    answered = await user.json("tasks", "answer", n, "the upper one")
    assert answered["status"] == "queued"
    assert (await cloud.api.get(f"/tasks/{n}")).ok()["feedback"] == "the upper one"

    # A change in verification: changes requested, then approved.
    offered: tuple[tuple[str, dict[str, Any]], ...] = (
        ("awaiting_review", {"summary": "done"}),
        ("verification", {}),
    )
    await worker_reaches(worker, task["id"], *offered)
    err = await refused(user, "tasks", "request-changes", n, "   ", code=2)
    assert "give the feedback" in err
    sent_back = await user.json("tasks", "request-changes", n, "add a test")
    assert sent_back["status"] == "queued"
    await worker_reaches(worker, task["id"], *offered)
    assert (await user.json("tasks", "approve", n, "--comment", "thanks"))["status"] == "done"
    err = await refused(user, "tasks", "retry", n, code=1)
    assert err.endswith("this one is 'done' (what applies there: none)\n"), err

    # Everything the person did is on the task's timeline, as theirs.
    events = await timeline(cloud.api, task["id"])
    mine = [e for e in events if e["actor"] == "user"]
    assert [e["to_status"] for e in mine if e["kind"] == "status"] == [
        "queued", "cancelled", "queued", "queued", "queued", "done",
    ]  # fmt: skip
    assert [e["data"]["body"] for e in mine if e["kind"] == "comment"] == [f"looks {MARKUP}\n"]
    said_with = [e["data"].get("comment") for e in mine if e["kind"] == "status"]
    assert said_with[0] == f"go {MARKUP}" and said_with[-1] == "thanks"


async def test_projects_by_slug_number_or_the_checkouts_remote(
    user: User, cloud: Cloud, tmp_path: Path
) -> None:
    await login(user, cloud)
    project = await slug(cloud)
    # In the checkout (its remote is the project's): no --project needed, to create or list.
    made = await user.json("tasks", "create", "--title", "from the checkout", cwd=user.repo)
    assert made["projectId"] == cloud.project_id
    by_number = await user.json("tasks", "list", "--project", str(cloud.project_id))
    assert [t["id"] for t in by_number["tasks"]] == [made["id"]]
    org = (await cloud.api.get(f"/projects/{cloud.project_id}")).ok()["org_id"]
    other = {"org_id": org, "name": "Other", "slug": "other"}
    other_id = (await cloud.api.post("/projects", other)).ok(201)["id"]
    (await cloud.api.post(f"/projects/{other_id}/tasks", {"title": "elsewhere"})).ok(201)
    listed = await user.json("tasks", "list", cwd=user.repo)  # only this checkout's project
    assert [t["id"] for t in listed["tasks"]] == [made["id"]]
    outside = tmp_path / "not-a-checkout"
    outside.mkdir()
    assert len((await user.json("tasks", "list", cwd=outside))["tasks"]) == 2  # every project

    # Unknown, outside a checkout, or ambiguous: the error names the fix.
    err = await refused(user, "tasks", "list", "--project", "nope", code=2)
    assert err == (
        "error: no project 'nope' among the projects you can see (yours:"
        f" {project} ({cloud.project_id}), other ({other_id})); give one of these slugs or"
        " numbers\n"
    )
    returned, _, err = await user.locus("tasks", "create", "--title", "t", check=False, cwd=outside)
    assert returned == 2 and "name it with locus tasks list --project SLUG" in err, err
    (await cloud.api.patch(f"/projects/{other_id}", json={"remotes": [REMOTE]})).ok()
    returned, _, err = await user.locus(
        "tasks", "create", "--title", "t", check=False, cwd=user.repo
    )
    assert returned == 2 and err == (
        "error: this checkout's remote (git.example.com/acme/sample) is listed by several"
        f" projects: {project} ({cloud.project_id}), other ({other_id}) — choose one with"
        f" {WITH_PROJECT}\n"
    )
    chosen = await user.json("tasks", "create", "--project", "OTHER", "--title", "t", cwd=user.repo)
    assert chosen["projectId"] == other_id  # a slug, in any case
    second_org = (await cloud.api.post("/orgs", {"name": "Two", "slug": "two"})).ok(201)["id"]
    twin = {"org_id": second_org, "name": "Other", "slug": "other"}
    twin_id = (await cloud.api.post("/projects", twin)).ok(201)["id"]
    err = await refused(user, "tasks", "list", "--project", "other", code=2)
    assert err == (
        f"error: project 'other' is ambiguous: other ({other_id}), other ({twin_id}) — give its"
        " number instead\n"
    )


async def test_nobody_moves_a_task_of_a_project_they_cannot_see(user: User, cloud: Cloud) -> None:
    """The cloud authorises each move on the task's project: a stranger's token, a viewer's
    and another project's worker token are refused, each with a message that says so."""
    admin: Api = cloud.api
    task = (await admin.post(f"/projects/{cloud.project_id}/tasks", {"title": "t"})).ok(201)
    n = str(task["id"])
    stranger = await new_user(admin, "stranger@example.com")
    await login(user, cloud, stranger.token)
    for move in (("cancel", n), ("queue", n), ("answer", n, "x"), ("comment", n, "x")):
        err = await refused(user, "tasks", *move, code=1)
        assert err == f"error: 404 Not found: task {n} does not exist or you have no access to it\n"
    err = await refused(user, "tasks", "edit", n, "--title", "mine", code=1)
    assert "you have no access to it" in err
    err = await refused(user, "tasks", "list", "--project", str(cloud.project_id), code=2)
    assert "you can see no project" in err

    org = (await admin.get(f"/projects/{cloud.project_id}")).ok()["org_id"]
    viewer = await new_user(admin, "viewer@example.com")
    member = {"email": "viewer@example.com", "role": "viewer"}
    (await admin.post(f"/orgs/{org}/members", member)).ok(201)
    await login(user, cloud, viewer.token)
    assert (await user.json("tasks", "show", n))["status"] == "backlog"  # may see it …
    err = await refused(user, "tasks", "cancel", n, code=2)  # … not move it
    assert err == (
        "error: 403 Forbidden: your role 'viewer' does not allow 'write_tasks' in this project\n"
    )

    other_org = (await admin.post("/orgs", {"name": "Other", "slug": "other"})).ok(201)["id"]
    other = {"org_id": other_org, "name": "O", "slug": "o"}
    other_id = (await admin.post("/projects", other)).ok(201)["id"]
    token = (await admin.post(f"/projects/{other_id}/tokens", {"worker_name": "w"})).ok(201)
    await login(user, cloud, token["token"])
    err = await refused(user, "tasks", "cancel", n, code=1)
    assert err == f"error: 404 Not found: task {n} does not exist or you have no access to it\n"
    assert (await admin.get(f"/tasks/{n}")).ok()["status"] == "backlog"  # nothing moved it
    assert [e["kind"] for e in await timeline(admin, task["id"])] == ["created"]
