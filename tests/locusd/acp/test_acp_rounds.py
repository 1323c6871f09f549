"""A run's later rounds run as its first did: a send-back starts the next round with the
agent and permission mode chosen for the run (``--agent``, ``--mode``), not the config's."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from locusd.agent.transcript import AcpRecord, read
from tests.locusd import daemonmachine
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
