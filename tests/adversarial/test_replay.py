"""A tampered recording must not replay: an attacker who can hand someone a transcript (a bug
report, a demo) rewrites what a tool returned — and, the chain having no key, recomputes the
hash chain — or passes the file off as an old, unchained one. Replay compares the tools it can
reproduce and plays only chained recordings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from locusd.agent.providers import ProviderError
from locusd.agent.providers.replay import ReplayProvider
from locusd.agent.transcript import chain_of
from tests.locusd.agentkit import DEMO_TRANSCRIPT, make_config, make_sample_repo, run

pytestmark = pytest.mark.timeout(120)
LINK = re.compile(r',"chain":"[0-9a-f]{64}"\}$')


def rechained(lines: list[str]) -> str:
    """The lines with their chain links recomputed, as an attacker can."""
    previous, out = "", []
    for line in lines:
        body = LINK.sub("}", line)
        previous = chain_of(previous, body)
        out.append(body[:-1] + f',"chain":"{previous}"}}')
    return "\n".join(out) + "\n"


async def test_the_demo_recording_replays(tmp_path: Path) -> None:
    """(What the two below tamper with plays back as recorded.)"""
    repo = make_sample_repo(tmp_path)
    done = await run(ReplayProvider(DEMO_TRANSCRIPT), repo, make_config(tmp_path))
    assert done.outcome == "completed" and done.diff


async def test_a_rewritten_tool_result_with_a_recomputed_chain_is_caught(tmp_path: Path) -> None:
    lines = DEMO_TRANSCRIPT.read_text().splitlines()
    # The model was shown the buggy line: the recording now says it was shown something else.
    edited = [
        line.replace("return ordered[middle]", "return ordered[middle]  # audited, fine")
        if '"type":"request"' in line
        else line
        for line in lines
    ]
    assert edited != lines
    forged = tmp_path / "forged.jsonl"
    forged.write_text(rechained(edited))
    provider = ReplayProvider(forged)  # the chain itself checks out

    done = await run(provider, make_sample_repo(tmp_path), make_config(tmp_path))

    assert done.outcome == "failed"
    assert done.reason and "read_file result differs" in done.reason


def test_an_unchained_recording_is_refused(tmp_path: Path) -> None:
    records = [json.loads(line) for line in DEMO_TRANSCRIPT.read_text().splitlines()]
    for record in records:
        record.pop("chain")
    records[0]["format"] = 1
    old = tmp_path / "old.jsonl"
    old.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))

    with pytest.raises(ProviderError, match="format 1 has no hash chain"):
        ReplayProvider(old)
