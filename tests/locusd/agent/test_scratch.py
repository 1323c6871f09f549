"""A run's scratch space: the agent's commands get a $TMPDIR of the run's own (kept across
commands, writable inside the sandbox although it lives under Locus's hidden state), and the
space it shares with the commands' output files has a quota — a command that fills it is
killed, and what is over is removed with a note to the model. Real commands, real bwrap."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from locusd.agent import tools
from locusd.agent.commands import scrubbed_env
from locusd.agent.messages import ToolUseBlock
from locusd.agent.policy import CommandPolicy
from locusd.agent.sandbox import Sandbox, probe
from locusd.agent.scratch import usage
from locusd.agent.tools import ToolResult, Workspace

pytestmark = pytest.mark.timeout(120)
_ids = itertools.count()


def contained() -> list[Any]:
    found = probe()
    assert found.sandbox is not None, found.warning
    return [None, found.sandbox]


def workspace(tmp_path: Path, sandbox: Sandbox | None, **options: Any) -> Workspace:
    root = tmp_path / "worktree"
    root.mkdir(exist_ok=True)
    state = tmp_path / "state"
    return Workspace(
        root=root,
        scratch=state / "runs" / "r1" / "commands",
        policy=CommandPolicy(),
        env=scrubbed_env(os.environ),
        cancel=asyncio.Event(),
        verify=None,
        sandbox=sandbox.hiding([state]) if sandbox is not None else None,
        **options,
    )


async def command(ws: Workspace, line: str, timeout: float = 60) -> ToolResult:
    block = ToolUseBlock(
        id=f"toolu_{next(_ids)}", name="run_command", input={"command": line, "timeout": timeout}
    )
    return await tools.execute(ws, block)


@pytest.mark.parametrize("sandbox", contained(), ids=["process-group", "bwrap"])
async def test_commands_share_a_tmpdir_of_the_runs_own(
    tmp_path: Path, sandbox: Sandbox | None
) -> None:
    ws = workspace(tmp_path, sandbox)
    first = await command(ws, 'echo "$TMPDIR"; echo kept > "$(mktemp)"')
    assert not first.is_error, first.content
    assert first.content.splitlines()[1] == str(ws.scratch / "tmp")
    second = await command(ws, 'cat "$TMPDIR"/tmp.*')
    assert "kept" in second.content, second.content
    if sandbox is not None:  # the rest of Locus's state stays hidden
        (tmp_path / "state" / "token").write_text("SECRET")
        hidden = await command(ws, f"cat {tmp_path / 'state' / 'token'}")
        assert "SECRET" not in hidden.content


@pytest.mark.parametrize("sandbox", contained(), ids=["process-group", "bwrap"])
async def test_a_command_that_fills_the_scratch_space_is_killed_and_it_is_emptied(
    tmp_path: Path, sandbox: Sandbox | None
) -> None:
    ws = workspace(tmp_path, sandbox, scratch_quota=8 * 2**20)
    result = await command(
        ws, 'head -c 64000000 /dev/zero > "$TMPDIR/big"; echo written; sleep 100', timeout=100
    )
    assert result.is_error and result.exit_code is None
    assert "scratch space" in result.content and "over its quota" in result.content
    assert "$TMPDIR was emptied" in result.content
    assert list((ws.scratch / "tmp").iterdir()) == []
    after = await command(ws, "echo fine")  # the run goes on
    assert not after.is_error and "fine" in after.content


async def test_an_inode_flood_is_over_the_quota_too(tmp_path: Path) -> None:
    ws = workspace(tmp_path, None)
    ws.space.max_entries = 500
    result = await command(ws, 'cd "$TMPDIR" && for i in $(seq 2000); do : > f$i; done')
    assert "$TMPDIR was emptied" in result.content, result.content
    assert usage(ws.scratch).entries < 500


async def test_earlier_output_files_go_first_and_the_last_stays(tmp_path: Path) -> None:
    """Output files of commands already answered are what goes first: the model read them."""
    ws = workspace(tmp_path, None, scratch_quota=600_000)
    for _ in range(5):
        result = await command(ws, f"{sys.executable} -c \"print('x' * 250_000)\"")
        assert not result.is_error
        assert "emptied" not in result.content  # $TMPDIR untouched: logs were enough
    logs = sorted(p.name for p in ws.scratch.glob("command-*.log"))
    assert "command-5.log" in logs and len(logs) < 5
    assert usage(ws.scratch).bytes <= 600_000


async def test_emptying_tmpdir_never_follows_a_symlink_out(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    ws = workspace(tmp_path, None, scratch_quota=1_000_000)
    result = await command(
        ws, f'ln -s {outside} "$TMPDIR/out"; ln -s {outside}/precious "$TMPDIR/p";'
        ' head -c 3000000 /dev/urandom > "$TMPDIR/big"',
    )  # fmt: skip
    assert "$TMPDIR was emptied" in result.content
    assert (outside / "precious").read_text() == "keep me"
