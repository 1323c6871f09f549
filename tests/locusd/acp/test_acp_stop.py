"""A cancel and a spent budget end an external agent that will not stop: the probe agent
(tests/locusd/acp/probe_agent.py, ``stubborn``) ignores SIGTERM and ``session/cancel``, has a
child and a double-forked ``setsid`` grandchild that ignore SIGTERM, and a terminal command
that ignores it too. When the run's report comes back, none of them runs any more."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from locusd.agent.report import Event, RunReport
from locusd.agent.run import run_task
from locusd.agent.transcript import AcpRecord, read
from tests.locusd import daemonmachine
from tests.locusd.acp.test_acp_south import commandlines, probe_run, processes_in, running
from tests.locusd.acp.test_acp_south_more import CODEX_MODEL, KEY, preset_config
from tests.locusd.acp.test_acp_south_more import outside_tmp as outside_tmp
from tests.locusd.agentkit import TASK, make_sample_repo
from tests.locusd.daemonmachine import Machine, serving
from tests.locusd.test_daemon_notify import editor, start
from tests.support import gemini_server, responses_server
from tests.support.acp_agents import installed
from tests.support.anthropic_server import AnthropicServer
from tests.support.scripted import Json

machine = daemonmachine.machine


@dataclass(frozen=True)
class Seen:
    """A process of the agent's tree as the test saw it from outside (the host's /proc)."""

    session: int
    argv: list[str]


def marked(mark: str) -> dict[int, Seen]:
    """The processes with ``mark`` in their command line, by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if any(mark.encode() in arg for arg in argv):
            session = int(stat.rsplit(")", 1)[1].split()[3])
            found[int(entry.name)] = Seen(session, [a.decode("utf-8", "replace") for a in argv])
    return found


async def stubborn_run(
    tmp_path: Path,
    *,
    calls: int,
    after: Callable[[list[int]], Awaitable[None]] | None = None,
    **agent: Any,
) -> tuple[RunReport, dict[int, Seen]]:
    """A run of the stubborn probe agent, and its tree as it was when the agent started its
    first tool call (everything running: the agent waits for them first). ``cancel``: the
    run is cancelled then. ``after`` is given the tree's pids at the stopping tool call (the
    first with ``cancel``, the last otherwise). As soon as the report is back, none of them
    may run."""
    mark = f"stubborn-{uuid.uuid4().hex}"
    seen: dict[int, Seen] = {}
    cancel: asyncio.Event | None = agent.get("cancel")
    stopping = 1 if cancel is not None else calls
    timing: list[asyncio.Future[None]] = []

    def watch(event: Event) -> None:
        if event.kind != "tool":
            return
        if not seen:
            seen.update(marked(mark))
        if event.turn == stopping:
            if after is not None:
                timing.append(asyncio.ensure_future(after(list(seen))))
            if cancel is not None:
                cancel.set()

    def ended() -> None:
        assert [pid for pid in seen if running(pid)] == [], "the report came before the kill"
        assert not any(mark.encode() in line for line in commandlines()), "left running"

    report, _ = await probe_run(
        tmp_path,
        make_sample_repo(tmp_path),
        [{"stubborn": mark, "calls": str(calls)}],
        mark=mark,
        watch=watch,
        ended=ended,
        **agent,
    )
    await asyncio.gather(*timing)
    return report, seen


#: The stubborn agent's whole tree, by kind: the agent, its child and the double-forked
#: grandchild (in two sessions), the terminal's command.
WHOLE = {"agent": 1, "forked": 2, "forked sessions": 2, "command": 1}


def kinds(seen: dict[int, Seen]) -> dict[str, int]:
    """How many of each kind of the stubborn agent's processes ``seen`` holds."""
    programs = [p for p in seen.values() if "python" in Path(p.argv[0]).name]
    forked = [p for p in programs if p.argv[1:2] == ["-c"] and "os.setsid()" in p.argv[2]]
    return {
        "agent": sum(p.argv[1].endswith("probe_agent.py") for p in programs),
        "forked": len(forked),
        "forked sessions": len({p.session for p in forked}),
        "command": sum(p.argv[1:2] == ["-c"] and 'open("deaf"' in p.argv[2] for p in programs),
    }


def assert_whole_tree(seen: dict[int, Seen]) -> None:
    """What was seen is the whole tree (the grandchild in a session of its own)."""
    assert kinds(seen) == WHOLE, seen


def sent_to_agent(report: RunReport) -> list[str]:
    records = [r for r in read(Path(report.transcript)) if isinstance(r, AcpRecord)]
    return [str(r.message.get("method")) for r in records if r.direction == "to_agent"]


async def test_a_cancel_kills_an_agent_that_ignores_it_with_its_whole_tree(tmp_path: Path) -> None:
    """``session/cancel`` is sent, the agent ignores it, and its whole tree is killed before
    the run is reported cancelled: no process of it is left, not even the ``setsid``
    grandchild or the terminal's command that ignore SIGTERM."""
    report, seen = await stubborn_run(tmp_path, calls=1, cancel=asyncio.Event())
    assert report.outcome == "cancelled", (report.reason, report.warnings)
    assert "session/cancel" in sent_to_agent(report)
    assert_whole_tree(seen)
    assert [pid for pid in seen if running(pid)] == []


async def test_a_spent_budget_kills_an_agent_that_keeps_going(tmp_path: Path) -> None:
    """The second tool call of a one-turn budget: ``session/cancel``, and the tree killed at
    once (no grace: it would be more spending), before the run is reported
    ``budget_exhausted``."""
    report, seen = await stubborn_run(tmp_path, calls=2, budget={"max_turns": 1})
    assert report.outcome == "budget_exhausted", (report.reason, report.warnings)
    assert report.reason is not None and "max turns" in report.reason
    assert "session/cancel" in sent_to_agent(report)
    assert_whole_tree(seen)
    assert [pid for pid in seen if running(pid)] == []


LONG = "setsid sleep {mark}1 & sleep {mark}2"


def codex_calls(command: str) -> Callable[[Json], responses_server.ResponsesItem]:
    """Codex's model: run ``command`` (Codex runs it itself), whatever came before."""

    def script(body: Json) -> responses_server.ResponsesItem:
        return responses_server.Reply(
            [responses_server.function_call("exec_command", {"cmd": command})]
        )

    return script


def gemini_calls(item: gemini_server.GeminiItem) -> Callable[[Json], gemini_server.GeminiItem]:
    """Gemini's model: answer its router, then ``item``, whatever came before."""

    def script(body: Json) -> gemini_server.GeminiItem:
        config = body.get("generationConfig") or {}
        if config.get("responseMimeType") == "application/json":  # its model router
            routed = {"complexity_reasoning": "a look", "complexity_score": 1}
            return gemini_server.Reply([gemini_server.text(json.dumps(routed))])
        return item

    return script


async def preset_stopped(
    agent: str,
    state: Path,
    where: Path,
    script: Callable[[Json], Any],
    until: Callable[[], Awaitable[object]] | None = None,
    after: Callable[[list[int]], Awaitable[None]] | None = None,
    **options: Any,
) -> tuple[RunReport, list[int]]:
    """A run of the ``agent`` preset against ``script``; cancelled once ``until`` returns.
    The report, and the processes in the worktree (the agent's and its commands') at the
    cancel, which ``after`` is given then (bench/external.py times their end). As soon as
    the report is back, none of them may run."""
    key = "OPENAI_API_KEY" if agent == "codex" else "GEMINI_API_KEY"
    cancel = asyncio.Event()
    seen: list[int] = []
    worktrees: list[Path] = []

    async def cancel_then() -> None:
        if until is not None:
            await until()
            seen.extend(processes_in(worktrees[0]))
            cancel.set()
            if after is not None:
                await after(seen)

    server: Any = (
        responses_server.ResponsesServer(script)
        if agent == "codex"
        else gemini_server.GeminiServer(script)
    )
    repo = make_sample_repo(where)
    async with server as model:
        program = installed().codex if agent == "codex" else installed().gemini
        base_url = f"{model.base_url}/v1" if agent == "codex" else model.base_url
        model_name = {"model": CODEX_MODEL} if agent == "codex" else {}
        config = preset_config(
            where, state, agent, program, base_url=base_url, **model_name, **options
        )
        canceller = asyncio.ensure_future(cancel_then())
        try:
            with pytest.MonkeyPatch.context() as env:
                env.setenv(key, KEY)
                report = await run_task(
                    repo=repo,
                    task=TASK,
                    provider=None,
                    config=config,
                    cancel=cancel,
                    on_worktree=lambda worktree: worktrees.append(worktree.path),
                )
            # At once: the agent's tree was gone before the report came.
            assert processes_in(worktrees[0]) == [], "the report came before the kill"
            assert [pid for pid in seen if running(pid)] == []
            if cancel.is_set():
                await canceller  # after() is done
        finally:
            canceller.cancel()
    return report, seen


async def test_a_cancel_kills_codex_and_its_command(tmp_path: Path, outside_tmp: Path) -> None:
    """Codex cancelled while it runs (itself, in its own sandbox) a long command with a
    ``setsid`` child: the run is reported cancelled once none of it runs."""
    mark = f"{os.getpid() % 1000 + 7000}"

    async def command_runs() -> None:
        while not any(f"sleep {mark}2".encode() in line for line in commandlines()):
            await asyncio.sleep(0.01)

    script = codex_calls(LONG.format(mark=mark))
    report, seen = await preset_stopped("codex", outside_tmp, tmp_path, script, command_runs)
    assert report.outcome == "cancelled", (report.reason, report.warnings)
    assert "session/cancel" in sent_to_agent(report)
    assert len(seen) >= 2, "the agent and its command ran in the worktree"
    assert not any(mark.encode() in line for line in commandlines())


async def test_a_cancel_kills_gemini_waiting_for_its_model(
    tmp_path: Path, outside_tmp: Path
) -> None:
    """Gemini CLI cancelled while it waits for its model (which never answers): cancelled,
    its tree gone. (Its own shell tool cannot run here: its permission requests carry no
    ``rawInput.command``, so Locus's policy refuses them.)"""
    hang = gemini_server.Hang()
    script = gemini_calls(hang)
    report, seen = await preset_stopped("gemini", outside_tmp, tmp_path, script, hang.reached.wait)
    assert report.outcome == "cancelled", (report.reason, report.warnings)
    assert "session/cancel" in sent_to_agent(report)
    assert seen, "the agent ran in the worktree"


@pytest.mark.parametrize("agent", ["codex", "gemini"])
async def test_a_spent_budget_kills_a_real_agent(
    agent: str, tmp_path: Path, outside_tmp: Path
) -> None:
    """Its second tool call of a one-turn budget (Codex runs a command, Gemini reads a file,
    again and again): ``budget_exhausted``, the tree gone first."""
    read = gemini_server.function_call("read_file", {"file_path": "stats.py"})
    script = (
        codex_calls("echo step") if agent == "codex" else gemini_calls(gemini_server.Reply([read]))
    )
    report, _ = await preset_stopped(
        agent, outside_tmp, tmp_path, script, mode="full-auto", budget={"max_turns": 1}
    )
    assert report.outcome == "budget_exhausted", (report.reason, report.warnings)
    assert report.reason is not None and "max turns" in report.reason
    assert "session/cancel" in sent_to_agent(report)


@pytest.mark.timeout(120)
async def test_the_daemon_answers_a_cancel_once_a_stubborn_agents_tree_is_gone(
    machine: Machine,
) -> None:
    """Through the real daemon: ``locus/runs/cancel`` of a run of the stubborn probe agent
    returns the run cancelled, and at that moment no process of the agent's tree runs."""
    mark = f"stubborn-{uuid.uuid4().hex}"
    probe = [sys.executable, str(Path(__file__).with_name("probe_agent.py")), mark]
    async with AnthropicServer([]) as model:
        machine.configure(
            f'[agent]\nbase_url = "{model.base_url}"\n'
            f"[agents.probe]\ncommand = {json.dumps(probe)}\n"
        )
        async with serving(machine), editor(machine) as watcher:
            task = json.dumps([{"stubborn": mark, "calls": "1"}])
            run_id = await start(machine, watcher, task=task, agent="probe")
            while kinds(tree := marked(mark)) != WHOLE:
                await asyncio.sleep(0.05)
            answer = await watcher.lsp.call("locus/runs/cancel", {"runId": run_id})
            left = [pid for pid in tree if running(pid)]
    assert (answer.state, answer.outcome) == ("cancelled", "cancelled")
    assert left == [], "the daemon answered before the kill"
    assert_whole_tree(tree)
