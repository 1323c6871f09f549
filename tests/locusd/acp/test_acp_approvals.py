"""A permission request of the REAL Claude Code adapter, answered by a person at a connected
client: a daemon run with ``agent = "claude"`` in ``ask`` mode; Claude Code asks before a
command; Locus asks the user's policy, which says ``ask``; the question goes out as
``locus/approval`` to a real protocol client on the daemon's socket; its answer decides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.locusd import daemonmachine
from tests.locusd.acp.test_acp_hostile import connect, wait_done
from tests.locusd.acp.test_acp_south import Script, blocks_sent_back, worktree_of
from tests.locusd.agentkit import BUGGY, FIXED
from tests.locusd.daemonmachine import Machine, serving
from tests.support.acp_agents import installed
from tests.support.anthropic_server import AnthropicServer, Reply, text, tool_use

machine = daemonmachine.machine
ALLOWED = "touch allowed.txt"
REJECTED = "touch rejected.txt"


def bash(command: str) -> Reply:
    return Reply([tool_use("Bash", {"command": command, "description": "make a file"})], "tool_use")


def asks_twice_then_fixes() -> Script:
    return Script(
        bash(ALLOWED),
        bash(REJECTED),
        lambda root: Reply([tool_use("Read", {"file_path": f"{root}/stats.py"})], "tool_use"),
        lambda root: Reply(
            [
                tool_use(
                    "Edit",
                    {"file_path": f"{root}/stats.py", "old_string": BUGGY, "new_string": FIXED},
                )
            ],
            "tool_use",
        ),
        Reply([text("median() fixed")]),
    )


class Person:
    """The user at another client: allows one command once, rejects the other."""

    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []
        self.resolved: list[dict[str, Any]] = []

    async def answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert method == "locus/approval", method
        self.asked.append(params)
        return {"decision": "allow_once" if params["command"] == ALLOWED else "reject"}

    def notify(self, method: str, params: dict[str, Any]) -> None:
        if method == "locus/approval/resolved":
            self.resolved.append(params)


@pytest.mark.timeout(240)
async def test_claude_codes_permission_request_is_answered_by_a_connected_client(
    machine: Machine,
) -> None:
    script = asks_twice_then_fixes()
    person = Person()
    async with AnthropicServer(script) as model:
        machine.configure(
            f'[agent]\nbase_url = "{model.base_url}"\nmode = "ask"\n'
            f'[agent.policy]\nask = ["touch *"]\n'
            f'[agents.claude]\ncommand = ["{installed().claude}"]\n'
        )
        async with serving(machine):
            client = await connect(machine, on_request=person.answer, on_notification=person.notify)
            async with client:
                started = await client.call_wire(
                    "locus/runs/start", {"repo": str(machine.repo), "task": "t", "agent": "claude"}
                )
                await client.call_wire("locus/runs/subscribe", {"runId": started["runId"]})
                run = await wait_done(client, started["runId"])
    assert run["state"] == "awaiting_review", (run["reason"], run["outcome"])
    # Both of Claude Code's questions came to the client, through the user's policy.
    assert [a["command"] for a in person.asked] == [ALLOWED, REJECTED], person.asked
    assert all(a["runId"] == started["runId"] and "touch *" in a["reason"] for a in person.asked)
    worktree = Path(worktree_of(script.bodies[0]))
    # allow_once: the command ran; reject: it did not, and Claude Code was told so.
    assert (worktree / "allowed.txt").exists()
    assert not (worktree / "rejected.txt").exists()
    (allowed,) = blocks_sent_back(script.bodies[1])
    (rejected,) = blocks_sent_back(script.bodies[2])
    assert allowed.get("is_error") is not True, allowed
    assert rejected.get("is_error") is True, rejected
