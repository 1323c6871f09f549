"""Other agents inside Locus: the REAL Claude Code ACP adapter (pinned, tests/support/acp_agents.py)
run as a run's agent, inside the run's sandbox, against the loopback Anthropic server. The
scripted model uses Claude Code's own tools (Read, Edit, Bash); what Locus does around it — the
sandbox, the network, the policy, the runner's verification, the transcript — is Locus's."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from locusd.agent.report import RunReport
from locusd.agent.transcript import AcpRecord, read
from locusd.config import Config, ExternalAgentConfig
from tests.locusd.agentkit import (
    API_KEY,
    BUGGY,
    FIXED,
    anthropic,
    make_config,
    make_sample_repo,
    run,
)
from tests.support.acp_agents import installed
from tests.support.anthropic_server import AnthropicServer, Reply, text, tool_use

WORKDIR = re.compile(r"Primary working directory: (\S+)")


def worktree_of(body: dict[str, Any]) -> str:
    """Where Claude Code works (its system prompt says), as the scripted model needs it."""
    found = WORKDIR.search(json.dumps(body["system"]))
    assert found is not None, "Claude Code's system prompt names no working directory"
    return found[1].rstrip("\\n").split("\\n")[0]


def claude_config(where: Path, **agent: Any) -> Config:
    config = make_config(where, agent="claude", **agent)
    command = [str(installed().claude)]
    return config.model_copy(update={"agents": {"claude": ExternalAgentConfig(command=command)}})


class Script:
    """Claude Code's turns, by how many tool results it has sent back."""

    def __init__(self, *steps: Reply | Callable[[str], Reply]) -> None:
        self.steps = steps
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, body: dict[str, Any]) -> Reply:
        self.bodies.append(body)
        root = worktree_of(body)
        done = sum(
            1
            for message in body["messages"]
            if message["role"] == "user"
            and isinstance(message["content"], list)
            and any(block.get("type") == "tool_result" for block in message["content"])
        )
        step = self.steps[min(done, len(self.steps) - 1)]
        return step(root) if callable(step) else step


def fix_median() -> Script:
    return Script(
        lambda root: Reply(
            [text("Reading the code."), tool_use("Read", {"file_path": f"{root}/stats.py"})],
            stop_reason="tool_use",
        ),
        lambda root: Reply(
            [
                tool_use(
                    "Edit",
                    {"file_path": f"{root}/stats.py", "old_string": BUGGY, "new_string": FIXED},
                )
            ],
            stop_reason="tool_use",
        ),
        Reply(
            [tool_use("Bash", {"command": "python3 -m pytest -q", "description": "run tests"})],
            stop_reason="tool_use",
        ),
        Reply([text("median() now averages the two middle values of an even list.")]),
    )


@pytest.fixture
def model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)


async def claude_run(tmp_path: Path, script: Script, **agent: Any) -> tuple[RunReport, int]:
    """The run's report, and the model server's port."""
    repo = make_sample_repo(tmp_path)
    async with AnthropicServer(script) as server:
        config = claude_config(tmp_path, base_url=server.base_url, **agent)
        report = await run(anthropic(server), repo, config)
        return report, int(server.base_url.rsplit(":", 1)[1])


@pytest.mark.usefixtures("model_env")
async def test_claude_code_fixes_the_sample_and_the_runner_verifies(tmp_path: Path) -> None:
    script = fix_median()
    report, port = await claude_run(tmp_path, script)
    assert report.outcome == "completed", (report.reason, report.warnings)
    # The runner's own verification, after the agent's end of turn.
    assert report.verification is not None and report.verification.passed
    assert "(ordered[middle - 1] + ordered[middle]) / 2" in report.diff
    assert report.summary == "median() now averages the two middle values of an even list."
    # Claude Code's own tools, as its first request listed them.
    names = {tool["name"] for tool in script.bodies[0]["tools"]}
    assert {"Read", "Edit", "Write", "Bash"} <= names
    # The agent worked in the run's worktree, which it saw at its own path.
    assert worktree_of(script.bodies[0]) == report.worktree
    # The ACP traffic is in the transcript: Locus's prompt and the agent's updates.
    records = [r for r in read(Path(report.transcript)) if isinstance(r, AcpRecord)]
    methods = [r.message.get("method") for r in records if r.direction == "to_agent"]
    assert {"initialize", "session/new", "session/prompt"} <= set(methods)
    assert any(r.message.get("method") == "session/update" for r in records)
    # Its model calls went through the agent's own egress proxy, to the endpoint alone.
    hosts = {(use.host, use.port, use.allowed) for use in report.network}
    assert ("127.0.0.1", port, True) in hosts
