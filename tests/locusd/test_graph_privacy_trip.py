"""The knowledge graph's privacy proof, end to end (issue 19, docs/graph.md): a repository with
canaries in file contents, an identifier and commit messages (subjects, bodies, a finished
task's commit) goes through index → upload → hints → plan with real parts — the daemon, its
worker, the agent process against the scripted Anthropic server, and a real cloud behind a
recording proxy. No canary may appear in any byte the daemon sent to the cloud, nor in any row
the cloud keeps; the graph, the hints and the accepted task did get through."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from locusd.daemon import Daemon
from locusd.protocol.messages import (
    LoginParams,
    PlanAcceptParams,
    PlanShowParams,
    PlanStartParams,
    TaskCreateParams,
    WorkerStartParams,
)
from tests.conftest import Cloud
from tests.locusd.agentkit import (
    BUGGY,
    FIXED,
    TASK,
    call,
    git,
    make_config,
    make_planning_repo,
    with_identity,
)
from tests.locusd.peers import Client
from tests.support.anthropic_server import AnthropicServer
from tests.support.client import every
from tests.support.cloudrows import every_row
from tests.support.recorder import Recorder

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.parametrize("template", ["sqlite"], indirect=True),
]
REMOTE = "https://git.example.com/acme/graphed.git"
CONTENT = "CANARY_GRAPH_file_content_0a4e"  # inside a file the agent reads
IDENTIFIER = "canary_graph_identifier_7b21"  # a function's name, inside a file
SUBJECT = "CANARY_GRAPH_commit_subject_3c9d"  # the subject of commits the hints learn from
BODY = "CANARY_GRAPH_commit_body_e58f"  # their bodies
TASK_BODY = "CANARY_GRAPH_task_commit_body_91aa"  # the body of a finished task's commit
GOAL = "CANARY_GRAPH_planning_goal_44d0"  # the goal of a local `locus plan`
CANARIES = (CONTENT, IDENTIFIER, SUBJECT, BODY, TASK_BODY, GOAL)
PROPOSAL = {
    "title": "Cache the engine's results",
    "description": "Repeated calls recompute the same values.",
    "likely_files": ["engine.py"],
}


@pytest.fixture(autouse=True)
def model_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-graph-privacy")


def commit(repo: Path, name: str, line: str, message: str) -> None:
    with (repo / name).open("a") as out:
        out.write(line)
    git(repo, "add", name)
    git(repo, "commit", "-qm", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    checkout = with_identity(make_planning_repo(tmp_path, CONTENT, REMOTE))
    commit(checkout, "engine.py", f"def {IDENTIFIER}(): return 1\n", "engine helper")
    for n in range(3):  # earlier median fixes: the hints learn stats.py from their words
        message = f"Fix the median of lists {SUBJECT}\n\n{BODY} {n}"
        commit(checkout, "stats.py", f"# median note {n}\n", message)
        commit(checkout, "test_stats.py", f"# median test {n}\n", f"Median test {n}\n\n{BODY}")
    # A finished task's accepted commit, as Locus writes it (its trailer names task 1).
    commit(checkout, "stats.py", "# task\n", f"Median rounding\n\n{TASK_BODY}\n\nLocus-Task: 1")
    return checkout


@pytest.mark.timeout(180)
async def test_index_upload_hints_and_plan_send_no_canary_to_the_cloud(
    cloud: Cloud, repo: Path, tmp_path: Path
) -> None:
    (await cloud.api.patch(f"/projects/{cloud.project_id}", json={"remotes": [REMOTE]})).ok()
    script = [
        call("read_file", path="engine.py"),  # the work run reads the canaries' file …
        call("edit_file", path="stats.py", old_string=BUGGY, new_string=FIXED),
        call("finish", summary="Fixed the median."),
        call("read_file", path="engine.py"),  # … and so does the planning run
        call("propose_tasks", proposals=[PROPOSAL]),
    ]
    peer = Client()
    async with Recorder(cloud.url) as proxy, AnthropicServer(script) as model:
        daemon = Daemon(make_config(tmp_path, base_url=model.base_url))
        try:
            await daemon.auth_login(
                LoginParams(cloud_url=proxy.url, token=cloud.first_start.token), peer
            )
            await daemon.tasks_create(
                TaskCreateParams(
                    project_id=cloud.project_id, title="Fix the median", description=TASK
                ),
                peer,
            )
            # Index and upload (the worker's first look) and hints (the run's first message).
            await daemon.worker_start(WorkerStartParams(once=True, repos=[str(repo)]), peer)
            await asyncio.wait_for(daemon.worker_done(), 90)
            (run,) = daemon.store.all()
            assert run.state == "awaiting_review", run.reason
            first = json.dumps(model.requests[0].body)
            assert "<file-hints>" in first and "stats.py" in first  # the hints were given
            assert CONTENT in json.dumps(model.requests[1].body)  # the agent did read it

            # A local plan: the agent reads the code, the person accepts the one proposal.
            started = await daemon.plan_start(PlanStartParams(repo=str(repo), goal=GOAL), peer)
            plan = await asyncio.wait_for(
                daemon.plan_show(PlanShowParams(run_id=started.run_id, wait=True), peer), 90
            )
            assert plan.state == "completed", plan.reason
            await daemon.plan_accept(PlanAcceptParams(run_id=plan.run_id, numbers=[1]), peer)
            await asyncio.wait_for(daemon.outbox.wait_empty(), 60)
        finally:
            await daemon.close()

    # Everything went through: the graph (with the finished task's files), the task text.
    graph = f"/api/v1/worker/projects/{cloud.project_id}/graph"
    (upload, *_) = [r for r in proxy.requests if r.path_qs == graph and r.method == "POST"]
    body = json.loads(upload.body)
    keys = {(n["kind"], n["key"]) for n in body["nodes"]}
    assert {("file", "stats.py"), ("file", "engine.py"), ("task", "1")} <= keys
    titles = {t["title"] for t in await every(cloud.api, f"/projects/{cloud.project_id}/tasks")}
    assert PROPOSAL["title"] in titles

    # … and no canary, whole, in any byte sent to the cloud or any row it keeps.
    assert proxy.requests
    for request in proxy.requests:
        for canary in CANARIES:
            assert canary.encode() not in request.raw, (canary, request.path_qs)
    rows = every_row(cloud.db_url)
    assert "stats.py" in rows  # the graph's rows are there to search
    for canary in CANARIES:
        assert canary not in rows, canary
    # Commit messages stay on this machine: not even the model is told them (hints give
    # paths, counts and shared words only).
    told = json.dumps([r.body for r in model.requests])
    assert SUBJECT not in told and BODY not in told and TASK_BODY not in told
