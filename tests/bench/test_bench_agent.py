"""The agent benchmark runs, and its deterministic half holds: the request layout keeps at
least 90 % of the input behind a cache breakpoint, with one tool call a turn and with 12
parallel ones (no timing is asserted here)."""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from bench import agent, external

pytestmark = pytest.mark.timeout(300)


async def test_the_agent_bench_runs_and_caching_holds() -> None:
    result = await agent.run(argparse.Namespace(turns=5, json=True))
    assert result["overhead_ms_trivial_tool"] > 0
    assert result["overhead_ms_read_file"] > 0
    usages = result["cache_usage_per_turn"]
    assert len(usages) == 20
    assert usages[0]["cache_read_tokens"] == 0 and usages[0]["cache_write_tokens"] > 0
    assert all(u["cache_read_tokens"] > 0 for u in usages[1:])
    assert result["cache_share_after_turn_2"] >= agent.CACHE_TARGET
    # 12 parallel calls a turn put 24 blocks between breakpoints, beyond the API's 20-block
    # lookback: each turn must still read everything the turn before it wrote.
    parallel = result["cache_usage_per_turn_parallel"]
    assert len(parallel) == 20
    for before, after in itertools.pairwise(parallel[1:]):
        assert (
            after["cache_read_tokens"] == before["cache_read_tokens"] + before["cache_write_tokens"]
        )
    assert result["cache_share_parallel_after_turn_2"] >= agent.CACHE_TARGET


async def test_the_external_agent_section_runs_and_times_each_moment() -> None:
    """One round with the real Claude Code adapter, direct and through Locus, and a cancel:
    every moment is measured, in order, and Locus's were seen as they happened (its runner
    verifies after the agent's turn ends, so the turn ends before the run does)."""
    result = await agent.run_external(argparse.Namespace(runs=1, json=True))
    for side in ("direct_s", "locus_s"):
        moments = [result[side][key] for key in external.MOMENTS]
        assert 0 < moments[0] <= moments[1] <= moments[2] <= moments[3], (side, moments)
    assert result["locus_s"]["before_agent"] > 0 and result["locus_s"]["after_turn"] > 0
    assert set(result["overhead_s"]) == set(result["ratio"]) == set(external.MOMENTS)
    assert len(result["samples"]["direct"]) == len(result["samples"]["locus"]) == 1
    assert result["cancel_to_gone_s"] > 0
    # Each stop timed: a cooperating agent, one that ignores the cancel and SIGTERM (and its
    # budget stop), Codex and Gemini CLI.
    assert set(result["stop_to_gone_s"]) == set(external.STOPS)
    assert all(seconds > 0 for seconds in result["stop_to_gone_s"].values())
    shown = external.render(result)
    assert "stop → the agent's process tree gone" in shown
    assert all(label in shown for label in external.STOPS.values())


def test_without_node_the_external_section_says_what_to_install(tmp_path: Path) -> None:
    """The default run includes the external agents; with no Node on PATH it says what to
    install and how to skip them, exit 1, no traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.agent", "--external"],
        capture_output=True,
        text=True,
        env={"PATH": str(tmp_path), "HOME": str(tmp_path)},
        cwd=Path(__file__).parents[2],
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "external agents: not measured: node is not installed" in done.stdout
    assert "--no-external" in done.stdout


def test_external_runs_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        agent.main(["--external", "--runs", "0"])
    assert exited.value.code == 2 and "--runs must be at least 1" in capsys.readouterr().err
