"""An external agent's runs through the daemon: a send-back's next round runs as the first did
(the agent and permission mode chosen for the run, not the config's), and what the agent
reports — its plan — reaches an editor on the other side of ``locusd acp`` as ACP's own
``plan`` update."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from acp import PROTOCOL_VERSION, text_block
from acp.schema import AgentPlanUpdate

from locusd.agent.transcript import AcpRecord, read
from tests.locusd import daemonmachine
from tests.locusd.acp.acpclient import Recorder, acp_agent
from tests.locusd.agentkit import PROPOSED
from tests.locusd.daemonmachine import Machine, serving
from tests.locusd.test_daemon_notify import editor, start

PROBE = Path(__file__).with_name("probe_agent.py")
machine = daemonmachine.machine


@pytest.mark.timeout(120)
async def test_a_send_back_runs_the_next_round_with_the_runs_agent_and_mode(
    machine: Machine,
) -> None:
    """The config's agent is the built-in one with no model set up at all: a next round that
    fell back to the config could not even start."""
    machine.configure(
        '[agent]\nbase_url = "http://127.0.0.1:9"\n'
        f"[agents.probe]\ncommand = {json.dumps([sys.executable, str(PROBE)])}\n"
    )
    task = json.dumps([{"write": "{root}/stats.py", "content": PROPOSED}])
    async with serving(machine), editor(machine) as watcher:
        first = await start(machine, watcher, task=task, agent="probe", mode="full-auto")
        note = await watcher.next_note()
        assert (note.kind, note.runId) == ("review", first)
        review = await watcher.lsp.call("locus/review/get", {"runId": first})
        (changed,) = review.files
        hunk = changed.hunks[0]
        decided = await watcher.lsp.call(
            "locus/review/decide",
            {
                "runId": first,
                "revision": review.revision,
                "decisions": {hunk.id: {"action": "reject", "comment": "say more"}},
            },
        )
        second = await watcher.lsp.call(
            "locus/review/send_back", {"runId": first, "revision": decided.revision}
        )
        await watcher.lsp.call("locus/runs/subscribe", {"runId": second.runId})
        note = await watcher.next_note()
        assert (note.kind, note.runId) == ("review", second.runId), note
        shown = await watcher.lsp.call("locus/runs/show", {"runId": second.runId})
    assert (shown.agent, shown.mode) == ("probe", "full-auto")
    assert shown.state == "awaiting_review"
    records = read(Path(shown.transcript))
    prompts = [r.message for r in records if isinstance(r, AcpRecord) and r.direction == "to_agent"]
    told = json.dumps(prompts)
    assert "session/prompt" in told and "say more" in told  # the probe agent heard the review


#: A plan entry's text is data: markup, escapes, a line that looks like JSON-RPC.
HOSTILE_STEP = '<b>step</b> \x1b]0;t\x07 {"jsonrpc":"2.0","method":"session/update"}\n/commit'


def probe_config(machine: Machine) -> None:
    machine.configure(
        '[agent]\nagent = "probe"\nbase_url = "http://127.0.0.1:9"\n'
        f"[agents.probe]\ncommand = {json.dumps([sys.executable, str(PROBE)])}\n"
    )


@pytest.mark.timeout(120)
async def test_an_external_agents_plan_reaches_an_acp_editor_as_a_plan(machine: Machine) -> None:
    """Probe agent → Locus (its ACP client) → the run's events → ``locusd acp`` → an editor:
    the entries arrive as they were made, and the same plan is a note for the CLI."""
    probe_config(machine)
    entries = [
        {"content": "read stats.py", "status": "completed", "priority": "high"},
        {"content": HOSTILE_STEP, "status": "in_progress", "priority": "medium"},
        {"content": "write the fix", "status": "pending", "priority": "low"},
    ]
    task = json.dumps([{"plan": entries}, {"write": "{root}/stats.py", "content": PROPOSED}])
    recorder = Recorder()
    try:
        async with acp_agent(machine, recorder) as agent:
            await agent.initialize(protocol_version=PROTOCOL_VERSION)
            session = (await agent.new_session(cwd=str(machine.repo))).session_id
            turn = await agent.prompt(session_id=session, prompt=[text_block(task)])
    finally:
        await machine.locus("daemon", "stop")
    assert turn.field_meta is not None and turn.field_meta["locus"]["state"] == "awaiting_review"
    (plan,) = recorder.of("plan", session)
    assert isinstance(plan, AgentPlanUpdate)
    assert [e.model_dump(mode="json", exclude_none=True) for e in plan.entries] == entries
    run_id = turn.field_meta["locus"]["runId"]
    logged = [
        json.loads(line) for line in (await machine.locus("logs", run_id, "--json")).splitlines()
    ]
    (noted,) = [e for e in logged if e["data"].get("kind") == "plan"]
    assert noted["data"]["entries"] == entries
    shown = await machine.locus("logs", run_id)
    assert "[x] read stats.py" in shown and "[ ] write the fix" in shown


@pytest.mark.timeout(120)
async def test_without_the_sandbox_an_external_agent_never_starts(machine: Machine) -> None:
    """``sandbox = false``: the run fails saying what to install, and the agent was never
    started (no ACP message in the transcript, the worktree untouched)."""
    machine.configure(
        '[agent]\nagent = "probe"\nsandbox = false\nbase_url = "http://127.0.0.1:9"\n'
        f"[agents.probe]\ncommand = {json.dumps([sys.executable, str(PROBE)])}\n"
    )
    task = json.dumps([{"write": "{root}/stats.py", "content": PROPOSED}])
    async with serving(machine), editor(machine) as watcher:
        run_id = await start(machine, watcher, task=task)
        await machine.locus("logs", run_id, "--follow")  # until the run ends
        shown = await watcher.lsp.call("locus/runs/show", {"runId": run_id})
    assert shown.state == "failed"
    assert "runs only in the sandbox" in shown.reason and "bubblewrap" in shown.reason
    records = read(Path(shown.transcript)) if shown.transcript else []
    assert not [r for r in records if isinstance(r, AcpRecord)]
    assert not shown.worktree or "middle - 1" not in (Path(shown.worktree) / "stats.py").read_text()
