"""The model gateway with the REAL pinned agents: their model traffic goes through it, and the
run's budget counts what the model server said, not what the agent reports. Codex and Gemini
CLI report no cost (and Locus does not need them to): a token budget their first model call
spends ends the run ``budget_exhausted`` there, and no later call reaches the server. Claude
Code's metered tokens are the ones the Anthropic server sent."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from locusd.agent.external.gateway import STAND_IN_KEY
from locusd.agent.messages import Usage
from locusd.agent.run import run_task
from locusd.agent.transcript import AcpRecord, EgressRecord, ModelCallRecord, read
from tests.locusd.acp import test_acp_south, test_acp_south_more
from tests.locusd.acp.test_acp_south import Script, claude_config, claude_run, fix_median
from tests.locusd.acp.test_acp_south_more import (
    CODEX_MODEL,
    KEY,
    codex_script,
    gemini_script,
    preset_config,
)
from tests.locusd.agentkit import API_KEY, TASK, anthropic, make_sample_repo, run
from tests.support import gemini_server, responses_server
from tests.support.acp_agents import installed
from tests.support.anthropic_server import AnthropicServer, Reply, text, tool_use

model_env = test_acp_south.model_env
outside_tmp = test_acp_south_more.outside_tmp
SERVER_USAGE = {
    "input_tokens": 1234, "output_tokens": 56, "cache_read_input_tokens": 700,
    "cache_creation_input_tokens": 89,
}  # fmt: skip


def calls_of(transcript: str) -> list[ModelCallRecord]:
    return [r for r in read(Path(transcript)) if isinstance(r, ModelCallRecord)]


def reported_costs(transcript: str) -> list[Any]:
    return [
        r.message["params"]["update"].get("cost")
        for r in read(Path(transcript))
        if isinstance(r, AcpRecord)
        and r.message.get("method") == "session/update"
        and r.message["params"]["update"].get("sessionUpdate") == "usage_update"
    ]


@pytest.mark.usefixtures("model_env")
async def test_claude_codes_metered_tokens_are_what_the_server_sent(tmp_path: Path) -> None:
    steps = fix_median().steps

    def with_usage(step: Any) -> Any:
        if isinstance(step, Reply):
            return dataclasses.replace(step, usage=SERVER_USAGE)
        return lambda root: dataclasses.replace(step(root), usage=SERVER_USAGE)

    script = Script(*(with_usage(step) for step in steps))
    report, port = await claude_run(tmp_path, script)
    assert report.outcome == "completed", (report.reason, report.warnings)
    calls = [c for c in calls_of(report.transcript) if c.format == "anthropic"]
    assert len(calls) == len(script.bodies) >= 4  # each of its model calls, through Locus
    one = Usage(input_tokens=1234, output_tokens=56, cache_read_tokens=700, cache_write_tokens=89)
    assert all(c.usage == one and c.status == 200 for c in calls), calls
    assert report.usage.total_tokens >= one.total_tokens * len(calls)
    # The journal names the model endpoint; the agent's network reached the gateway only.
    assert {(u.host, u.port) for u in report.network if u.allowed} == {("127.0.0.1", port)}
    egress = [r for r in read(Path(report.transcript)) if isinstance(r, EgressRecord)]
    assert egress and all(r.port == port for r in egress if r.allowed)


@pytest.mark.parametrize("agent", ["codex", "gemini"])
async def test_a_run_ends_when_its_metered_tokens_spend_the_budget(
    agent: str, tmp_path: Path, outside_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither reports a cost; a 50-token budget is spent by their first model call."""
    codex = agent == "codex"
    monkeypatch.setenv("OPENAI_API_KEY" if codex else "GEMINI_API_KEY", KEY)
    repo = make_sample_repo(tmp_path)
    server: Any = (
        responses_server.ResponsesServer(codex_script)
        if codex
        else gemini_server.GeminiServer(gemini_script)
    )
    async with server:
        options = {"base_url": f"{server.base_url}/v1", "model": CODEX_MODEL} if codex else {}
        program = installed().codex if codex else installed().gemini
        config = preset_config(
            tmp_path, outside_tmp, agent, program, budget={"max_tokens": 50},
            **{"base_url": server.base_url, **options},
        )  # fmt: skip
        report = await run_task(repo=repo, task=TASK, provider=None, config=config)
    spent_on_first_call(report, server.requests)


def spent_on_first_call(report: Any, requests: list[Any]) -> None:
    assert report.outcome == "budget_exhausted", (report.reason, report.warnings)
    assert report.reason is not None and "max tokens" in report.reason
    assert report.diff == ""  # its edit would have needed another call
    # The agent reported no cost; the metered usage ended the run.
    assert not [c for c in reported_costs(report.transcript) if c]
    calls = calls_of(report.transcript)
    served = [c for c in calls if c.refused is None]
    assert len(served) == 1 and served[0].usage is not None
    assert served[0].usage.total_tokens >= 50 and report.usage.total_tokens >= 50
    assert len(requests) == 1  # every later call was refused at the gateway
    assert all(c.status == 429 for c in calls if c.refused)


@pytest.mark.usefixtures("model_env")
async def test_claude_code_holds_a_stand_in_key_and_the_server_gets_the_users(
    tmp_path: Path,
) -> None:
    """The agent's own Bash prints its API key; what it printed (sent back to the model as the
    tool's result) is the stand-in, while each request reached the server with the user's."""
    printenv = Reply(
        [tool_use("Bash", {"command": "printenv ANTHROPIC_API_KEY", "description": "key"})],
        stop_reason="tool_use",
    )
    script = Script(printenv, Reply([text("Done.")]))
    repo = make_sample_repo(tmp_path)
    async with AnthropicServer(script) as server:
        config = claude_config(tmp_path, base_url=server.base_url, max_verify_rounds=1)
        report = await run(anthropic(server), repo, config)
    assert report.outcome in ("completed", "failed"), (report.reason, report.warnings)
    assert len(script.bodies) >= 2
    assert {r.api_key for r in server.requests} == {API_KEY}
    bodies = json.dumps([r.body for r in server.requests])
    assert STAND_IN_KEY in bodies and API_KEY not in bodies


@pytest.mark.usefixtures("model_env")
async def test_the_agent_cannot_reach_its_model_endpoint_but_through_the_gateway(
    tmp_path: Path,
) -> None:
    """Claude Code's Bash tries the real model server directly (its address, ``localhost``,
    through the egress proxy, as a plain request and a tunnel): each is refused or finds
    nothing, and nothing arrives there but the gateway's calls."""
    port: list[int] = []

    def attempt(root: str) -> Reply:
        tries = "\n".join(
            [
                "python3 - <<'PY'",
                "import os, socket, urllib.parse, urllib.request",
                'proxy = urllib.parse.urlsplit(os.environ["HTTP_PROXY"])',
                "for host in ('127.0.0.1', 'localhost'):",
                f"    url = f'http://{{host}}:{port[0]}/v1/direct'",
                "    try:",
                "        urllib.request.urlopen(url, timeout=5)",
                "    except OSError as e:",
                "        print('direct', host, e)",
                "    s = socket.create_connection((proxy.hostname, proxy.port))",
                "    s.sendall(f'GET {url} HTTP/1.1\\r\\nHost: {host}\\r\\n\\r\\n'.encode())",
                "    print('proxied', host, s.recv(200))",
                "    s = socket.create_connection((proxy.hostname, proxy.port))",
                f"    s.sendall(f'CONNECT {{host}}:{port[0]} HTTP/1.1\\r\\n\\r\\n'.encode())",
                "    print('tunnel', host, s.recv(200))",
                "PY",
            ]
        )
        command = {"command": tries, "description": "reach the model server"}
        return Reply([tool_use("Bash", command)], stop_reason="tool_use")

    script = Script(attempt, Reply([text("Done.")]))
    repo = make_sample_repo(tmp_path)
    async with AnthropicServer(script) as server:
        port.append(int(server.base_url.rsplit(":", 1)[1]))
        config = claude_config(
            tmp_path, base_url=server.base_url, max_verify_rounds=1, mode="full-auto"
        )
        report = await run(anthropic(server), repo, config)
    assert len(script.bodies) >= 2, (report.reason, report.warnings)
    tried = json.dumps(
        [
            block
            for message in script.bodies[1]["messages"]
            if isinstance(message["content"], list)
            for block in message["content"]
            if block.get("type") == "tool_result"
        ]
    )
    for way in ("direct", "proxied", "tunnel"):
        assert tried.count(way) == 2, tried[-3000:]
    assert tried.count("403 Forbidden") == 4 and "HTTP/1.1 200" not in tried
    assert {r.path for r in server.requests} == {"/v1/messages"}
    refused = {(u.host, u.port) for u in report.network if not u.allowed}
    assert ("127.0.0.1", port[0]) in refused, tried[-3000:]
