"""``locus plan`` from the terminal, against the real daemon (a detached process), a real cloud
and the scripted Anthropic server: piped, the proposals are printed as inert text and none is
accepted; ``--accept 1,3 RUN`` creates exactly those (again: the same tasks); on a terminal the
person accepts or skips each one; bad input is a one-line error naming the option."""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any

import pexpect
import pytest

from tests.conftest import Cloud
from tests.locusd.agentkit import call
from tests.locusd.cli.test_cli_tasks import login, refused
from tests.locusd.cli.test_cli_text import HOSTILE, SHOWN, assert_inert
from tests.locusd.cliuser import User
from tests.support.anthropic_server import AnthropicServer, Hang
from tests.support.client import every
from tests.support.processes import until

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.parametrize("template", ["sqlite"], indirect=True),
]
PROPOSALS: list[dict[str, Any]] = [
    {"title": "Fix the median", "description": f"Average the middle two. {HOSTILE}"},
    {"title": "Document stats.py", "description": "Docstrings.", "likely_files": ["stats.py"]},
    {"title": "Test the empty list", "description": "median([]) raises."},
]


def planner() -> list[object]:
    return [call("read_file", path="stats.py"), call("propose_tasks", proposals=PROPOSALS)]


async def titles(cloud: Cloud) -> list[str]:
    listed = await every(cloud.api, f"/projects/{cloud.project_id}/tasks")
    return sorted(str(t["title"]) for t in listed if t["status"] == "backlog")


async def test_plan_then_accept_from_the_terminal(user: User, cloud: Cloud) -> None:
    await login(user, cloud)
    before = await titles(cloud)
    async with AnthropicServer([*planner(), *planner(), *planner()]) as model:  # type: ignore[list-item]
        user.agent(provider="anthropic", base_url=model.base_url)
        _, out, err = await user.locus("plan", "Tidy stats", "--repo", str(user.repo))
        assert_inert(out)
        assert SHOWN in out and "1. Fix the median" in out and "likely files: stats.py" in out
        assert "nothing accepted; later: locus plan --accept 1,3 " in err
        handle = err.rsplit(" ", 1)[1].strip()
        assert await titles(cloud) == before  # piped: none accepted

        assert "--accept" in await refused(user, "plan", "--accept", "x", handle, code=2)
        created = await user.json("plan", "--accept", "1,3", handle)
        assert [t["title"] for t in created["created"]] == ["Fix the median", "Test the empty list"]
        again = await user.json("plan", "--accept", "3,1", handle)
        assert [t["id"] for t in again["created"]] == [t["id"] for t in created["created"]]
        assert await titles(cloud) == sorted([*before, "Fix the median", "Test the empty list"])

        # (expect blocks: in a thread, so the model server in this loop goes on answering)
        terminal = user.terminal("plan", "Tidy stats", "--repo", str(user.repo))
        for answer in ("n", "y", ""):
            await asyncio.to_thread(terminal.expect, r"accept \d\? \[y/N\]")
            terminal.sendline(answer)
        await asyncio.to_thread(terminal.expect, r"#\d+\S* Document stats\.py  \(backlog\)")
        await asyncio.to_thread(terminal.expect, pexpect.EOF)
        terminal.close()
        assert terminal.exitstatus == 0
        printed = await user.json("plan", "Tidy stats", "--repo", str(user.repo))
        assert [p["title"] for p in printed["proposals"]] == [p["title"] for p in PROPOSALS]
        assert printed["proposals"][0]["description"] == PROPOSALS[0]["description"]
        assert not any("taskId" in p for p in printed["proposals"])  # --json: none accepted
    expected = [*before, "Document stats.py", "Fix the median", "Test the empty list"]
    assert await titles(cloud) == sorted(expected)
    plans = json.loads((await user.locus("runs", "--json"))[1])
    assert [r["kind"] for r in plans["runs"]] == ["plan", "plan", "plan"]


async def test_ctrl_c_stops_the_planning_run(user: User) -> None:
    async with AnthropicServer([Hang()]) as model:
        user.agent(provider="anthropic", base_url=model.base_url)
        planning = await user.start("plan", "Tidy stats", "--repo", str(user.repo))
        try:
            await until(lambda: bool(model.requests), timeout=60)  # the agent is waiting on it
            planning.send_signal(signal.SIGINT)
            _, err = await asyncio.wait_for(planning.communicate(), 60)
        finally:
            if planning.returncode is None:
                planning.kill()
                await planning.wait()
    assert planning.returncode == 130, err
    (run,) = (await user.json("runs"))["runs"]
    assert (run["kind"], run["state"]) == ("plan", "cancelled")
