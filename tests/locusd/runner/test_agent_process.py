"""Each run in an agent process of its own (locusd/runner/agent_process.py ↔
locusd/agent/child.py): a killed agent process fails its run and nothing else; an agent process
whose daemon has gone cancels its run and kills its command; whatever a broken child writes is a
clear error; the daemon itself never imports a model SDK. Real processes, a real daemon core,
the real SDK in the child against a loopback model server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from locusd.agent.pipe import FROM_CHILD, MAX_LINE, EventMessage, Phase, Report, Start, line
from locusd.agent.policy import CommandPolicy
from locusd.daemon import Daemon
from locusd.protocol.base import Empty
from locusd.protocol.messages import ApprovalAnswer, ApprovalRequest, RunRef, RunStartParams
from locusd.runner.agent_process import CHILD, AgentProcessError, run_in_child
from tests.locusd.agentkit import ROOT, call, git, make_config, make_sample_repo
from tests.locusd.peers import Client
from tests.support.anthropic_server import AnthropicServer, Reply
from tests.support.processes import alive, ancestor_under, processes_named, until

pytestmark = pytest.mark.timeout(120)
COMMAND = "python3 -c 'print(41 + 1)'"


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-agent-process")


def hanging(marker: str) -> Reply:
    return call("run_command", command=f"exec -a {marker} sleep 300", timeout=600)


@contextlib.contextmanager
def reaped(marker: str) -> Any:
    """Whatever a failed test leaves running under ``marker`` is killed."""
    try:
        yield
    finally:
        for pid in processes_named(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.usefixtures("api_key")
async def test_a_killed_agent_process_fails_its_run_and_the_others_go_on(tmp_path: Path) -> None:
    marker = f"locus-agent-process-{uuid.uuid4().hex}"

    def two_runs(body: dict[str, Any]) -> Reply:
        """The run whose task is "hang" runs a command that hangs; the other asks to run one
        (held by its client until the first has been killed), then asks the user."""
        content = body["messages"][0]["content"]  # the task, then its file hints
        if (content if isinstance(content, str) else content[0]["text"]).startswith("hang"):
            return hanging(marker)
        if len(body["messages"]) == 1:
            return call("run_command", command=COMMAND)
        return call("ask_user", question="checked: anything else?")

    asked, release = asyncio.Event(), asyncio.Event()

    async def later(request: ApprovalRequest) -> ApprovalAnswer:
        asked.set()
        await release.wait()
        return ApprovalAnswer(decision="allow_once")

    peer = Client(later)
    with reaped(marker):
        async with AnthropicServer(two_runs) as server:
            config = make_config(tmp_path, base_url=server.base_url)
            config.agent.policy = CommandPolicy(ask=["python3 *"])
            daemon = Daemon(config)
            first = make_sample_repo(tmp_path / "a")
            killed = await daemon.runs_start(RunStartParams(repo=str(first), task="hang"), peer)
            second = make_sample_repo(tmp_path / "b")
            other = await daemon.runs_start(RunStartParams(repo=str(second), task="check"), peer)
            await daemon.runs_subscribe(RunRef(run_id=other.run_id), peer)
            await until(lambda: bool(processes_named(marker)), timeout=60)
            await asyncio.wait_for(asked.wait(), 60)  # both runs are mid-flight

            command = processes_named(marker)[0]  # (bwrap, bash, or the command itself)
            os.kill(ancestor_under(command, os.getpid()), signal.SIGKILL)
            failed = await daemon.runs.wait(killed.run_id)
            release.set()
            finished = await daemon.runs.wait(other.run_id)
            status = await daemon.daemon_status(Empty(), peer)
            await daemon.close()

    assert failed.state == "failed"
    assert failed.reason == "the agent process died (signal 9, SIGKILL) before reporting"
    # Recorded when the worktree was made, before the agent's first edit: the work is findable.
    assert failed.worktree and Path(failed.worktree).is_dir() and failed.branch is None
    # No branch: its work is kept under the run's ref (a snapshot on top of its base).
    assert git(first, "branch", "--list", "locus/*") == ""
    kept = git(first, "rev-parse", f"refs/locus/runs/{killed.run_id}^")
    assert kept == failed.base_commit
    assert finished.state == "needs_input" and finished.question == "checked: anything else?"
    assert "42" in json.dumps(server.requests[-1].body)  # the approved command ran
    assert status.runs == {"failed": 1, "needs_input": 1}


@pytest.mark.usefixtures("api_key")
async def test_an_agent_process_whose_daemon_has_gone_cancels_its_run(tmp_path: Path) -> None:
    marker = f"locus-agent-orphan-{uuid.uuid4().hex}"
    repo = make_sample_repo(tmp_path)
    (repo / ".locus.toml").write_text('setup = "true"\n')
    git(repo, "add", ".locus.toml")
    git(repo, "-c", "user.name=Dev", "-c", "user.email=dev@localhost", "commit", "-qm", "setup")
    with reaped(marker):
        async with AnthropicServer([hanging(marker)]) as server:
            config = make_config(tmp_path, base_url=server.base_url)
            start = Start(
                repo=repo, task="hang", config=config, replay=None, task_id="t1", attended=False
            )
            child = await asyncio.create_subprocess_exec(
                *CHILD, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
            )
            assert child.stdin is not None and child.stdout is not None
            child.stdin.write(line(start))
            await until(lambda: bool(processes_named(marker)), timeout=60)
            child.stdin.close()  # the daemon's end closing: what its kill -9 looks like here
            out = await asyncio.wait_for(child.stdout.read(), 60)
            await child.wait()
        assert not processes_named(marker)  # the agent's command was killed

    messages = [FROM_CHILD.validate_json(raw) for raw in out.splitlines()]
    kinds = [m.type if not isinstance(m, Phase) else m.text for m in messages]
    # The worktree is told before the bootstrap and the agent touch it.
    assert kinds[:6] == ["creating the worktree", "worktree", "bootstrapping (.locus.toml)",
                         "ranking file hints", "event", "running the agent"]  # fmt: skip
    hinted = messages[4]  # what the agent is told of the files, before it starts
    assert isinstance(hinted, EventMessage) and hinted.event.data == {"kind": "hints"}
    assert any(isinstance(m, EventMessage) and m.event.kind == "tool" for m in messages)
    assert isinstance(messages[-1], Report) and messages[-1].report.outcome == "cancelled"
    assert child.returncode == 0


async def test_a_daemon_killed_mid_run_takes_its_agent_process_with_it(tmp_path: Path) -> None:
    """A real parent process (standing in for the daemon) is SIGKILLed mid-run."""
    marker = f"locus-agent-parent-{uuid.uuid4().hex}"
    repo = make_sample_repo(tmp_path)
    with reaped(marker):
        async with AnthropicServer([hanging(marker)]) as server:
            config = make_config(tmp_path, base_url=server.base_url)
            daemon = await asyncio.create_subprocess_exec(
                sys.executable, "-c", PARENT, str(repo), config.model_dump_json(),
                env={**os.environ, "ANTHROPIC_API_KEY": "sk-ant-agent-process"},
            )  # fmt: skip
            await until(lambda: bool(processes_named(marker)), timeout=60)
            agent = ancestor_under(processes_named(marker)[0], daemon.pid)
            daemon.kill()
            await daemon.wait()
            await until(lambda: not alive(agent) and not processes_named(marker), timeout=60)


PARENT = """
import asyncio, sys
from pathlib import Path
from locusd.config import Config
from locusd.runner.agent_process import run_in_child
asyncio.run(run_in_child(repo=Path(sys.argv[1]), task="hang", replay=None, task_id="t2",
    config=Config.model_validate_json(sys.argv[2]), cancel=asyncio.Event()))
"""


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        (
            "print('garbage')",
            "the agent process broke the protocol (line 1): input: Invalid JSON",
        ),
        (
            'print(\'{"type": "report", "report": {"outcome": "completed"}}\')',
            "the agent process broke the protocol (line 1): report.report.reason: Field required",
        ),
        (
            'print(\'{"type": "phase", "text": "x", "rm": "-rf"}\')',
            "the agent process broke the protocol (line 1): phase.rm: Extra inputs",
        ),
        (
            f"import sys; sys.stdout.write('x' * {MAX_LINE + 1})",
            f"the agent process wrote a line over {MAX_LINE} bytes",
        ),
        ("import sys; sys.exit(3)", "the agent process exited with status 3 before reporting"),
        (
            "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
            "the agent process died (signal 9, SIGKILL) before reporting",
        ),
    ],
    ids=["not-json", "invalid-report", "extra-field", "line-too-long", "exit-3", "sigkill"],
)
async def test_what_a_broken_agent_process_writes_is_a_clear_error(
    tmp_path: Path, script: str, reason: str
) -> None:
    with pytest.raises(AgentProcessError) as broken:
        await run_in_child(
            repo=tmp_path,
            task="x",
            config=make_config(tmp_path),
            replay=None,
            task_id="t3",
            cancel=asyncio.Event(),
            program=[sys.executable, "-c", script],
        )
    assert str(broken.value).startswith(reason)


async def test_the_daemon_never_imports_a_model_sdk(tmp_path: Path) -> None:
    repo = make_sample_repo(tmp_path)
    async with AnthropicServer([call("ask_user", question="what is wrong?")]) as server:
        probe = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.locusd.daemon_probe", str(tmp_path), str(repo),
            server.base_url, cwd=ROOT, stdout=subprocess.PIPE,
            env={**os.environ, "ANTHROPIC_API_KEY": "sk-ant-agent-process"},
        )  # fmt: skip
        out, _ = await asyncio.wait_for(probe.communicate(), 90)
    found = json.loads(out)
    assert found["state"] == "needs_input", found["reason"]  # the run used the anthropic SDK…
    assert found["sdks"] == []  # …in its agent process, not in the daemon's
