"""``locus plan`` end to end with real parts: the daemon's planning run (the agent process, the
built-in loop against the scripted Anthropic server) reads a file and proposes three tasks; the
person accepts two, which land in a real cloud's backlog, through a recording proxy that shows
every byte the daemon sent. A hostile model's writes and commands are refused; the code it read
(a canary) never reaches the cloud, only the accepted task texts; accepting again (or after a
lost answer) makes no duplicate; a kill -9 of the daemon keeps the proposals."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from locusd.daemon import Daemon
from locusd.protocol.errors import Code, LocusError
from locusd.protocol.messages import (
    LoginParams,
    PlanAcceptParams,
    PlanShowParams,
    PlanStartParams,
    Run,
)
from tests.conftest import Cloud
from tests.locusd.agentkit import call, git, make_config, make_planning_repo, tool_results
from tests.locusd.peers import Client
from tests.support.anthropic_server import AnthropicServer, Reply
from tests.support.client import every
from tests.support.recorder import Recorder

pytestmark = pytest.mark.timeout(120)
SQLITE = pytest.mark.parametrize("template", ["sqlite"], indirect=True)
REMOTE = "https://git.example.com/acme/planned.git"
CANARY = "CANARY_PLAN_private_algorithm_81f3"
PATH_CANARY = "CANARY_PLAN_likely_file_path_2c7d"  # a likely file: stays on this machine
PROPOSALS = [
    {
        "title": "Fix the median of even-length lists",
        "description": "median() returns the upper middle; average the two middle values.",
        "likely_files": ["stats.py", f"{PATH_CANARY}.py"],
    },
    {"title": "Document stats.py", "description": "Add docstrings.", "likely_files": []},
    {
        "title": "Test the empty list",
        "description": "median([]) should raise ValueError; add a test.",
        "likely_files": ["test_stats.py"],
    },
]


@pytest.fixture(autouse=True)
def model_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-plan-test")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_planning_repo(tmp_path, CANARY, REMOTE)


def hostile_planner() -> list[Reply]:
    """Reads the canary file, tries to write, edit and run, then proposes three tasks."""
    return [
        call("read_file", path="engine.py"),
        call("write_file", path="pwned.txt", content="written by a planning run\n"),
        call("edit_file", path="stats.py", old_string="def", new_string="oops"),
        call("run_command", command="touch ran.txt"),
        call("search", pattern="SECRET_SAUCE"),
        call("propose_tasks", proposals=PROPOSALS),
    ]


async def planned(daemon: Daemon, repo: Path, peer: Client) -> Run:
    started = await daemon.plan_start(PlanStartParams(repo=str(repo), goal="Tidy stats"), peer)
    assert started.kind == "plan"
    return await asyncio.wait_for(
        daemon.plan_show(PlanShowParams(run_id=started.run_id, wait=True), peer), 90
    )


async def backlog(cloud: Cloud) -> list[dict[str, object]]:
    return await every(cloud.api, f"/projects/{cloud.project_id}/tasks")


@SQLITE
async def test_accepted_proposals_land_in_the_backlog_and_nothing_else_leaves(
    cloud: Cloud, repo: Path, tmp_path: Path
) -> None:
    peer = Client()
    before = {t["id"] for t in await backlog(cloud)}
    async with Recorder(cloud.url) as proxy, AnthropicServer(hostile_planner()) as model:
        daemon = Daemon(make_config(tmp_path, base_url=model.base_url))
        try:
            run = await planned(daemon, repo, peer)
            assert run.state == "completed", run.reason
            assert [p.title for p in run.proposals] == [p["title"] for p in PROPOSALS]
            assert [p.number for p in run.proposals] == [1, 2, 3]
            assert run.proposals[0].likely_files == ["stats.py", f"{PATH_CANARY}.py"]

            # The model was told each forbidden tool does not exist here; nothing was written.
            refused = [tool_results(model.requests[turn])[0] for turn in (2, 3, 4)]
            for result, name in zip(
                refused, ("write_file", "edit_file", "run_command"), strict=True
            ):
                assert result["is_error"] and f"no tool '{name}' in this run" in str(result)
            offered = {t["name"] for t in model.requests[0].body["tools"]}
            assert offered == {"read_file", "list_files", "search", "propose_tasks"}
            assert CANARY in json.dumps(model.requests[1].body)  # it really read the file
            for where in (repo, Path(run.worktree or repo)):
                assert not (where / "pwned.txt").exists() and not (where / "ran.txt").exists()
                assert "oops" not in (where / "stats.py").read_text()
            assert git(repo, "status", "--porcelain") == ""

            # Not logged in: the fix is named, the proposals stay.
            with pytest.raises(LocusError) as no_login:
                await daemon.plan_accept(PlanAcceptParams(run_id=run.run_id, numbers=[1]), peer)
            assert no_login.value.code == Code.AUTH_REQUIRED
            assert "locus login" in no_login.value.message
            login = LoginParams(cloud_url=proxy.url, token=cloud.first_start.token)
            await daemon.auth_login(login, peer)

            # Logged in, but no project lists this checkout's remote: --project is named.
            with pytest.raises(LocusError) as no_project:
                await daemon.plan_accept(PlanAcceptParams(run_id=run.run_id, numbers=[1]), peer)
            assert (
                "--project" in no_project.value.message and run.run_id in no_project.value.message
            )
            assert daemon.runs.get(run.run_id).proposals == run.proposals
            await cloud.api.patch(f"/projects/{cloud.project_id}", json={"remotes": [REMOTE]})

            with pytest.raises(LocusError) as unknown:
                await daemon.plan_accept(PlanAcceptParams(run_id=run.run_id, numbers=[4]), peer)
            assert "numbers: no proposal 4" in unknown.value.message

            accept = PlanAcceptParams(run_id=run.run_id, numbers=[1, 3])
            first = await daemon.plan_accept(accept, peer)
            assert [t.title for t in first.created] == [
                PROPOSALS[0]["title"],
                PROPOSALS[2]["title"],
            ]
            assert {t.status for t in first.created} == {"backlog"}
            again = await daemon.plan_accept(accept, peer)  # accept twice: no duplicate
            assert [t.id for t in again.created] == [t.id for t in first.created]

            # A lost answer (the daemon died before recording the tasks): the retry replays.
            lost = run.proposals  # none recorded as created
            daemon.runs.update(run.run_id, proposals=lost)
            replayed = await daemon.plan_accept(accept, peer)
            assert [t.id for t in replayed.created] == [t.id for t in first.created]
            recorded = daemon.runs.get(run.run_id).proposals
            assert [p.task_id for p in recorded] == [first.created[0].id, None, first.created[1].id]
        finally:
            await daemon.close()

    new = [t for t in await backlog(cloud) if t["id"] not in before]
    assert sorted((t["title"], t["description"], t["status"]) for t in new) == sorted(
        (p["title"], p["description"], "backlog") for p in (PROPOSALS[0], PROPOSALS[2])
    )
    sent = b"\n".join(r.raw for r in proxy.requests)
    assert CANARY.encode() not in sent and PATH_CANARY.encode() not in sent
    assert str(PROPOSALS[1]["title"]).encode() not in sent  # the skipped one stays here
    assert b"Tidy stats" not in sent  # the goal too
    creations = [r for r in proxy.requests if r.method == "POST" and r.path_qs.endswith("/tasks")]
    assert {json.loads(r.body)["title"] for r in creations} == {
        PROPOSALS[0]["title"],
        PROPOSALS[2]["title"],
    }


PROBE = """
import asyncio, json, sys
from pathlib import Path
from locusd.daemon import Daemon
from locusd.protocol.messages import PlanShowParams, PlanStartParams
from tests.locusd.agentkit import make_config
from tests.locusd.peers import Client

async def main() -> None:
    where, repo, base_url = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    daemon = Daemon(make_config(where, base_url=base_url))
    run = await daemon.plan_start(PlanStartParams(repo=repo, goal="Tidy stats"), Client())
    done = await daemon.plan_show(PlanShowParams(run_id=run.run_id, wait=True), Client())
    print(json.dumps({"run_id": done.run_id, "state": done.state}), flush=True)
    await asyncio.Event().wait()  # until killed

asyncio.run(main())
"""


async def test_the_proposals_survive_a_kill_9_of_the_daemon(repo: Path, tmp_path: Path) -> None:
    replies = [call("read_file", path="engine.py"), call("propose_tasks", proposals=PROPOSALS)]
    async with AnthropicServer(replies) as model:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", PROBE, str(tmp_path), str(repo), model.base_url,
            stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parents[2],
        )  # fmt: skip
        try:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), 90)
            ended = json.loads(line)
            assert ended["state"] == "completed"
        finally:
            os.kill(process.pid, signal.SIGKILL)
            await process.wait()
    assert process.returncode == -signal.SIGKILL
    daemon = Daemon(make_config(tmp_path, base_url="http://127.0.0.1:9"))
    try:
        run = await daemon.plan_show(PlanShowParams(run_id=ended["run_id"]), Client())
        assert run.state == "completed" and run.kind == "plan"
        assert [(p.number, p.title, p.description, p.likely_files) for p in run.proposals] == [
            (n, p["title"], p["description"], p["likely_files"]) for n, p in enumerate(PROPOSALS, 1)
        ]
    finally:
        await daemon.close()
