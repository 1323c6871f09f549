"""An ACP agent's prompt carries the same file hints as the built-in loop's first message: the
REAL Claude Code adapter run as the agent, against the loopback Anthropic server, on a real
repository whose history points at ``src/parser.py``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from locusd.agent import hints
from locusd.agent.transcript import AcpRecord, Header, read
from tests.locusd.acp.test_acp_south import Script, claude_config
from tests.locusd.agent.test_hints_run import HOSTILE, SECRET, TASK, history
from tests.locusd.agentkit import anthropic, run
from tests.support.anthropic_server import AnthropicServer, Reply, text

pytestmark = pytest.mark.timeout(180)


async def test_the_acp_prompt_ends_its_task_with_the_hints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key")
    repo = history(tmp_path)
    script = Script(Reply([text("Nothing to do.")]))
    async with AnthropicServer(script) as server:
        config = claude_config(tmp_path, base_url=server.base_url)
        report = await run(anthropic(server), repo, config, task=TASK)

    header = read(Path(report.transcript))[0]
    assert isinstance(header, Header) and header.hints is not None
    prompts = [
        record.message
        for record in read(Path(report.transcript))
        if isinstance(record, AcpRecord) and record.message.get("method") == "session/prompt"
    ]
    sent = "".join(block["text"] for block in prompts[0]["params"]["prompt"])
    assert f"{TASK}\n\n{header.hints}" in sent
    assert header.hints.split("\n")[2].startswith('- "src/parser.py" — ')
    assert json.dumps(HOSTILE).replace("<", "\\u003c").replace(">", "\\u003e") in sent
    assert sent.count(hints.CLOSE) == 1 and SECRET not in sent
    # The model Claude Code asked saw them too, inside its user message.
    said = [block.get("text", "") for block in script.bodies[0]["messages"][0]["content"]]
    assert any(header.hints in block for block in said)
