"""What the provider fault tests share: one small request, and the checks every fault makes —
what the provider said, and how many requests reached the loopback server."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from locusd.agent.messages import Message, Request, ToolSpec
from locusd.agent.providers import ProviderError
from locusd.agent.report import RunReport
from locusd.agent.transcript import Footer, ToolCallRecord, read
from tests.support.scripted import ScriptedServer

REQUEST = Request(
    system="You are a test.",
    tools=(ToolSpec(name="write_file", description="Write.", input_schema={"type": "object"}),),
    messages=(Message.user("go"),),
    max_tokens=256,
)


#: What the runner tests' model writes with one write_file call, long enough to be cut in half.
NOTES = "whole\n" * 20


async def failure(server: ScriptedServer[Any], attempt: Awaitable[object], requests: int) -> str:
    """The message of the ProviderError ``attempt`` ends with, once ``requests`` requests
    reached ``server`` (no more: what is not retryable is not asked again)."""
    with pytest.raises(ProviderError) as caught:
        await attempt
    assert len(server.requests) == requests
    return str(caught.value)


def same_requests(server: ScriptedServer[Any]) -> bool:
    """Every attempt sent the same conversation: nothing of a broken stream leaked in."""
    bodies = [json.dumps(r.body, sort_keys=True) for r in server.requests]
    return len(set(bodies)) == 1


def wrote_the_notes_once(report: RunReport) -> None:
    """The run ran the whole write_file call exactly once (never a half-streamed one), then
    asked its question."""
    assert report.outcome == "needs_input", report.reason
    assert (Path(report.worktree) / "notes.txt").read_text() == NOTES
    records = read(Path(report.transcript))
    assert [r.name for r in records if isinstance(r, ToolCallRecord)] == ["write_file", "ask_user"]


def failed_with_a_footer(report: RunReport) -> None:
    """The run ended ``failed`` the orderly way: its transcript ends with a footer that gives
    the report's reason."""
    assert report.outcome == "failed"
    records = read(Path(report.transcript))
    assert isinstance(records[-1], Footer) and records[-1].outcome == "failed"
    assert records[-1].reason == report.reason
