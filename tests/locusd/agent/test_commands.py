"""Commands run for the agent: real bash processes, real process groups, real signals."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from locusd.agent.commands import run_command, scrubbed_env


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): look at its state.
    status = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1]
    return not status.startswith("Z")


def env() -> dict[str, str]:
    return scrubbed_env(os.environ)


async def test_exit_code_output_and_closed_stdin(tmp_path: Path) -> None:
    result = await run_command(
        "echo out; echo err >&2; cat; exit 3",  # cat must see EOF at once: stdin is closed
        tmp_path,
        output_path=tmp_path / "out.log",
        env=env(),
        timeout=60,
    )
    assert result.exit_code == 3 and not result.timed_out and not result.cancelled
    assert result.output.split() == ["out", "err"]


def test_secrets_never_reach_the_environment() -> None:
    base = {
        "PATH": "/usr/bin",
        "HOME": "/home/dev",
        "ANTHROPIC_API_KEY": "sk-ant",
        "ANTHROPIC_BASE_URL": "http://x",
        "OPENAI_API_KEY": "sk",
        "LOCUS_CLOUD_TOKEN": "lcu_x",
        "GITHUB_TOKEN": "ghp",
        "AWS_SECRET_ACCESS_KEY": "aws",
        "DB_PASSWORD": "pw",
        "RANDOM_THING": "not allow-listed",
    }
    assert scrubbed_env(base) == {"PATH": "/usr/bin", "HOME": "/home/dev"}
    assert scrubbed_env(base, allow=[*base]) == {
        "PATH": "/usr/bin",
        "HOME": "/home/dev",
        "RANDOM_THING": "not allow-listed",
    }


async def test_a_command_looking_for_secrets_finds_none(tmp_path: Path) -> None:
    leaky = {**os.environ, "MY_API_KEY": "sekret-1", "ANTHROPIC_AUTH": "sekret-2", "LOCUS_X": "s3"}
    result = await run_command(
        "env", tmp_path, output_path=tmp_path / "env.log", env=scrubbed_env(leaky), timeout=60
    )
    assert result.exit_code == 0 and "PATH=" in result.output
    assert "sekret" not in result.output and "s3" not in result.output


async def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    result = await run_command(
        "sleep 300 & echo $! > child.pid; wait",
        tmp_path,
        output_path=tmp_path / "out.log",
        env=env(),
        timeout=0.5,
    )
    assert result.timed_out and result.exit_code is None
    assert not alive(int((tmp_path / "child.pid").read_text()))


async def test_cancel_kills_a_running_command(tmp_path: Path) -> None:
    cancel = asyncio.Event()
    run = asyncio.create_task(
        run_command(
            "echo started; sleep 300 & echo $! > child.pid; wait",
            tmp_path,
            output_path=tmp_path / "out.log",
            env=env(),
            timeout=120,
            cancel=cancel,
        )
    )
    async with asyncio.timeout(60):  # wait until the command really runs
        while not (tmp_path / "child.pid").exists() or not (tmp_path / "child.pid").read_text():
            await asyncio.sleep(0.01)
    cancel.set()
    result = await asyncio.wait_for(run, 60)
    assert result.cancelled and not result.timed_out and result.exit_code is None
    assert not alive(int((tmp_path / "child.pid").read_text()))


async def test_long_output_keeps_head_and_tail(tmp_path: Path) -> None:
    result = await run_command(
        "seq 1 100000", tmp_path, output_path=tmp_path / "out.log", env=env(), timeout=60, limit=200
    )
    assert (
        result.truncated
        and result.output.startswith("1\n2\n")
        and result.output.endswith("100000\n")
    )
    assert "bytes cut" in result.output
    assert (tmp_path / "out.log").read_text().count("\n") == 100000


async def test_a_flood_is_killed_at_the_output_limit(tmp_path: Path) -> None:
    """``yes`` prints as fast as it can: the command is killed once its output passes the
    limit, the file holds exactly the limit, and the answer keeps a head and a tail."""
    limit = 2 * 1024 * 1024
    result = await run_command(
        "yes flood", tmp_path, output_path=tmp_path / "out.log", env=env(), timeout=60,
        limit=200, max_output=limit,
    )  # fmt: skip
    assert result.overflowed and result.exit_code is None and not result.timed_out
    assert (tmp_path / "out.log").stat().st_size == limit
    assert result.truncated and result.output.startswith("flood\n") and len(result.output) < 400


async def test_output_under_the_limit_is_whole_and_the_exit_code_kept(tmp_path: Path) -> None:
    result = await run_command(
        "printf 'a%.0s' $(seq 1 1000); exit 3", tmp_path, output_path=tmp_path / "out.log",
        env=env(), timeout=60, max_output=1000,
    )  # fmt: skip
    assert not result.overflowed and result.exit_code == 3
    assert result.output == "a" * 1000
