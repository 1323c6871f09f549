"""The planning run's tool set, tool by tool on a real worktree: reading works; writing,
editing and commands are refused before anything runs; ``propose_tasks`` ends the run with
its proposals, and its bounds (count, one-line titles, lengths) come back as errors the model
can fix."""

from __future__ import annotations

import asyncio
import itertools
import os
from pathlib import Path
from typing import Any

import pytest

from locusd.agent import planning, tools
from locusd.agent.commands import scrubbed_env
from locusd.agent.messages import ToolUseBlock
from locusd.agent.policy import CommandPolicy
from locusd.agent.tools import ToolResult, Workspace
from tests.locusd.agentkit import make_sample_repo

_ids = itertools.count(1)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(
        root=make_sample_repo(tmp_path),
        scratch=tmp_path / "scratch",
        policy=CommandPolicy(),
        env=scrubbed_env(os.environ),
        cancel=asyncio.Event(),
        verify=None,
        mode="full-auto",  # even a mode that runs commands unasked runs none here
        tools=planning.PLANNING_TOOLS,
    )


async def call(ws: Workspace, name: str, **args: Any) -> ToolResult:
    block = ToolUseBlock(id=f"toolu_{next(_ids)}", name=name, input=args)
    return await tools.execute(ws, block)


def proposal(title: str = "Fix the median", **more: Any) -> dict[str, Any]:
    return {"title": title, "description": "average the middle two", **more}


async def test_reading_works(ws: Workspace) -> None:
    assert "def median" in (await call(ws, "read_file", path="stats.py")).content
    assert "stats.py" in (await call(ws, "list_files", pattern="*.py")).content
    assert "stats.py" in (await call(ws, "search", pattern="def median")).content


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("write_file", {"path": "new.txt", "content": "x"}),
        ("edit_file", {"path": "stats.py", "old_string": "def", "new_string": "oops"}),
        ("run_command", {"command": "touch ran.txt"}),
        ("run_verify", {}),
        ("finish", {"summary": "done"}),
        ("ask_user", {"question": "?"}),
    ],
)
async def test_every_other_tool_is_refused_before_it_runs(
    ws: Workspace, name: str, args: dict[str, Any]
) -> None:
    before = {p: p.read_bytes() for p in ws.root.rglob("*") if p.is_file()}
    result = await call(ws, name, **args)
    assert result.is_error and result.stop is None
    assert f"there is no tool '{name}' in this run" in result.content
    assert {p: p.read_bytes() for p in ws.root.rglob("*") if p.is_file()} == before
    specs = {spec.name for spec in tools.specs(ws.tools)}
    assert specs == {"read_file", "list_files", "search", "propose_tasks"}


async def test_propose_tasks_ends_the_run_with_its_proposals(ws: Workspace) -> None:
    result = await call(
        ws, "propose_tasks", proposals=[proposal(likely_files=["stats.py"]), proposal("Docs")]
    )
    assert result.stop is not None and result.stop.outcome == "completed"
    assert [p.title for p in result.stop.proposals] == ["Fix the median", "Docs"]
    assert result.stop.proposals[0].likely_files == ["stats.py"]


@pytest.mark.parametrize(
    ("proposals", "field"),
    [
        ([], "proposals"),
        ([proposal()] * 11, "proposals"),
        ([proposal("two\nlines")], "title"),
        ([proposal("   ")], "title"),
        ([proposal("x" * 201)], "title"),
        ([proposal(description="d" * 4001)], "description"),
        ([proposal(likely_files=["a.py"] * 21)], "likely_files"),
        ([proposal(priority=1)], "priority"),
    ],
)
async def test_bad_proposals_are_errors_the_model_can_fix(
    ws: Workspace, proposals: list[dict[str, Any]], field: str
) -> None:
    result = await call(ws, "propose_tasks", proposals=proposals)
    assert result.is_error and result.stop is None
    assert "invalid input for propose_tasks" in result.content and field in result.content
