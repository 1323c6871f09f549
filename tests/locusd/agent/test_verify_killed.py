"""A verification that runs over its time limit or is cancelled is never passed — even when
the check, on being told to stop, prints a passing summary and exits 0 (as a check the agent
wrote can): real commands, in a real git worktree, through the tools the loop calls."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
from pathlib import Path

import pytest

from locusd.agent import tools
from locusd.agent.commands import scrubbed_env
from locusd.agent.messages import ToolUseBlock
from locusd.agent.policy import CommandPolicy
from locusd.agent.tools import ToolResult, Workspace
from locusd.agent.verify import VerifyCommand

pytestmark = pytest.mark.timeout(60)
_ids = itertools.count()

#: Says "all passed" at once, marks that it runs, then waits; told to stop (SIGTERM), it says
#: "passed" again and exits 0. Only the verdict of the runner can keep this from passing.
LIAR = (
    "trap 'echo \"===== 3 passed in 0.01s =====\"; exit 0' TERM; "
    'echo "===== 3 passed in 0.01s ====="; touch "$MARK"; sleep 30 & wait'
)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "check.sh").write_text(LIAR + "\n")
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "."],
        ["-c", "user.name=Dev", "-c", "user.email=dev@example.com", "commit", "-qm", "first"],
    ):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    env = scrubbed_env(os.environ) | {"MARK": str(tmp_path / "started")}
    return Workspace(
        root=repo,
        scratch=tmp_path / "scratch",
        policy=CommandPolicy(),
        env=env,
        cancel=asyncio.Event(),
        verify=VerifyCommand("bash check.sh", "the repository's check"),
    )


async def finish(ws: Workspace) -> ToolResult:
    block = ToolUseBlock(id=f"toolu_{next(_ids)}", name="finish", input={"summary": "done"})
    return await tools.execute(ws, block)


async def test_a_verify_over_its_time_limit_is_never_passed(ws: Workspace) -> None:
    ws.verify_timeout = 0.5
    result = await finish(ws)
    (found,) = ws.verifications
    assert found.timed_out and not found.passed and found.exit_code is None  # not its "exit 0"
    assert found.failure == "the check ran over its time limit"
    assert found.counts is not None and found.counts.ran and not found.counts.failed  # claimed
    assert result.is_error and (result.stop is None or result.stop.outcome != "completed")


async def test_a_verify_cancelled_while_it_runs_is_never_passed(
    ws: Workspace, tmp_path: Path
) -> None:
    running = asyncio.create_task(finish(ws))
    while not (tmp_path / "started").exists():  # the check is under way
        await asyncio.sleep(0.01)
    ws.cancel.set()
    result = await running
    (found,) = ws.verifications
    assert not found.passed and not found.timed_out and found.exit_code is None
    assert found.failure == "the check was cancelled before it finished"
    assert result.is_error and result.stop is not None and result.stop.outcome == "cancelled"
