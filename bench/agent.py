"""Agent loop benchmarks: ``.venv/bin/python -m bench.agent [--turns N] [--runs N] [--json]``:
the built-in loop, then what Locus adds around an external ACP agent and how fast a stop ends
its tree (``bench/external.py``; it needs Node 20 and the pinned adapters from npm:
``--no-external`` skips it, ``--external`` runs it alone).

* **Harness overhead per turn** with a zero-latency provider (an in-process provider that
  answers at once, so model time is zero): the loop, request building, tool dispatch and the
  flushed transcript — everything Locus adds around a model call. Measured for a turn whose
  tool is trivial (``create_follow_up``) and one that reads a file. Target ≤ 20 ms.
* **Share of input tokens behind a cache breakpoint** over a 20-turn scripted run with the real
  anthropic SDK against the loopback server (which simulates prompt caching the way the API
  does: a 1024-token minimum, and a prior entry found only within 20 blocks before a
  breakpoint): cache reads / all input tokens, from turn 3 on. Target ≥ 90 %.
* The same share for a run whose every turn makes **12 parallel tool calls** (24 new blocks a
  turn, more than the lookback reaches). Target ≥ 90 %.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from bench import external
from bench.figures import finish, verdict
from locusd.agent import transcript
from locusd.agent.messages import Message, Request, Response, ToolUseBlock, Usage
from locusd.agent.providers import OnText
from locusd.agent.providers.anthropic import AnthropicProvider
from locusd.agent.report import Event
from locusd.agent.run import run_task
from locusd.agent.transcript import ResponseRecord
from tests.locusd.agentkit import make_config, make_sample_repo
from tests.support.acp_agents import installed
from tests.support.anthropic_server import AnthropicServer, Reply, tool_use

OVERHEAD_TARGET_MS = 20.0
CACHE_TARGET = 0.90


class InstantProvider:
    """Answers every turn at once with the next scripted tool call, then ``ask_user``."""

    name = "instant"
    model = "instant"

    def __init__(self, calls: list[tuple[str, dict[str, Any]]]) -> None:
        self.calls = calls
        self.turn = 0
        self.model_seconds = 0.0

    def cost(self, usage: Usage) -> float | None:
        return 0.0

    async def complete(self, request: Request, on_text: OnText | None = None) -> Response:
        started = time.perf_counter()
        name, arguments = (
            self.calls[self.turn]
            if self.turn < len(self.calls)
            else ("ask_user", {"question": "?"})
        )
        self.turn += 1
        block = ToolUseBlock(id=f"toolu_{self.turn}", name=name, input=arguments)
        response = Response(
            message=Message(role="assistant", content=(block,)),
            stop_reason="tool_use",
            usage=Usage(input_tokens=10, output_tokens=10),
            model=self.model,
        )
        self.model_seconds += time.perf_counter() - started
        return response


class Span:
    """From the first turn's start to the last tool's end, by progress events."""

    first = 0.0
    last = 0.0

    def event(self, event: Event) -> None:
        if event.kind == "turn" and not self.first:
            self.first = time.perf_counter()
        elif event.kind == "tool_done":
            self.last = time.perf_counter()


async def overhead(where: Path, name: str, arguments: dict[str, Any], turns: int) -> float:
    """Milliseconds per turn of everything but the model, median of 3 runs. The span is the
    first turn's start to the last tool's end (progress events), so worktree creation and the
    final diff, which are per run, not per turn, stay out."""
    samples = []
    for attempt in range(3):
        root = where / f"{name}-{attempt}"
        repo = make_sample_repo(root)
        provider = InstantProvider([(name, arguments)] * turns)
        config = make_config(root, stuck_threshold=turns + 10, budget={"max_turns": turns + 5})
        clock = Span()
        report = await run_task(
            repo=repo, task="bench", provider=provider, config=config, on_event=clock.event
        )
        assert report.outcome == "needs_input", report.reason
        span = clock.last - clock.first
        samples.append((span - provider.model_seconds) / provider.turn * 1000)
    return statistics.median(samples)


def scripted_turns(turns: int) -> list[Reply]:
    calls = [
        tool_use("read_file", {"path": "stats.py"}),
        tool_use("search", {"pattern": "def "}),
        tool_use("list_files", {"pattern": "*.py"}),
        tool_use("read_file", {"path": "test_stats.py"}),
    ]
    script = [Reply([calls[n % len(calls)]], stop_reason="tool_use") for n in range(turns - 1)]
    return [*script, Reply([tool_use("ask_user", {"question": "done?"})], stop_reason="tool_use")]


PARALLEL_CALLS = 12


def parallel_turns(turns: int, calls: int = PARALLEL_CALLS) -> list[Reply]:
    """Every turn ``calls`` different tool calls at once, as a model reading around does."""
    kinds = [
        ("read_file", {"path": "stats.py"}),
        ("read_file", {"path": "test_stats.py"}),
        ("read_file", {"path": "README.md"}),
        ("list_files", {"pattern": "*.py"}),
        ("list_files", {"pattern": "*.md"}),
    ]
    words = ["def ", "return", "import", "median", "mean", "assert", "class", "self", "len("]
    kinds += [("search", {"pattern": word}) for word in words]
    script = [
        Reply(
            [tool_use(*kinds[(turn + n) % len(kinds)]) for n in range(calls)],
            stop_reason="tool_use",
        )
        for turn in range(turns - 1)
    ]
    return [*script, Reply([tool_use("ask_user", {"question": "done?"})], stop_reason="tool_use")]


async def cache_share(
    where: Path, script: list[Reply], name: str = "cache"
) -> tuple[float, list[dict[str, int]]]:
    turns = len(script)
    repo = make_sample_repo(where / name)
    config = make_config(where / name, stuck_threshold=turns * PARALLEL_CALLS + 10)
    async with AnthropicServer(script, min_cacheable_tokens=1024) as server:
        provider = AnthropicProvider(api_key="bench", base_url=server.base_url)
        report = await run_task(repo=repo, task="bench", provider=provider, config=config)
    assert report.outcome == "needs_input", report.reason
    records = await asyncio.to_thread(transcript.read, Path(report.transcript))
    usages = [r.response.usage.model_dump() for r in records if isinstance(r, ResponseRecord)]
    later = usages[2:]
    read = sum(u["cache_read_tokens"] for u in later)
    total = sum(u["input_tokens"] + u["cache_read_tokens"] + u["cache_write_tokens"] for u in later)
    return (read / total if total else 0.0), usages


async def run_external(args: argparse.Namespace) -> dict[str, Any]:
    """The external-agent section: direct vs Locus, and each stop to the tree gone (≤ 2 s).
    Without Node or the adapters: ``missing``, saying what to install (a miss, not a
    traceback)."""
    started = time.monotonic()
    try:
        installed()  # Node and the pinned adapters first: a clear miss, at once
        with tempfile.TemporaryDirectory(prefix="locus-bench-external-") as tmp:
            result = await external.measure(Path(tmp), args.runs)
    except pytest.fail.Exception as missing:  # tests/support's "install X" failures
        return {"missing": str(missing), "seconds": 0.0, "passed": False}
    target = external.CANCEL_TARGET_S
    return {
        **result,
        "cancel_target_s": target,
        "seconds": round(time.monotonic() - started, 1),
        "passed": max(result["stop_to_gone_max_s"].values()) <= target,
    }


def render_external(result: dict[str, Any]) -> str:
    if "missing" in result:
        return (
            f"external agents: not measured: {result['missing']}\n"
            "  (or run `python -m bench.agent --no-external`)"
        )
    return external.render(result)


async def run_both(args: argparse.Namespace) -> dict[str, Any]:
    """The default: the built-in loop, then the external agents."""
    loop = await run(args)
    outside = await run_external(args)
    return {
        "loop": loop,
        "external": outside,
        "seconds": round(loop["seconds"] + outside["seconds"], 1),
        "passed": loop["passed"] and outside["passed"],
    }


def render_both(result: dict[str, Any]) -> str:
    return f"{render(result['loop'])}\n\n{render_external(result['external'])}"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="locus-bench-agent-") as tmp:
        where = Path(tmp)
        trivial = await overhead(
            where, "create_follow_up", {"title": "t", "description": "d"}, args.turns
        )
        reading = await overhead(where, "read_file", {"path": "stats.py"}, args.turns)
        share, usages = await cache_share(where, scripted_turns(20))
        parallel, parallel_usages = await cache_share(where, parallel_turns(20), "parallel")
    return {
        "overhead_ms_trivial_tool": round(trivial, 2),
        "overhead_ms_read_file": round(reading, 2),
        "overhead_target_ms": OVERHEAD_TARGET_MS,
        "cache_share_after_turn_2": round(share, 4),
        "cache_target": CACHE_TARGET,
        "cache_usage_per_turn": usages,
        "parallel_calls": PARALLEL_CALLS,
        "cache_share_parallel_after_turn_2": round(parallel, 4),
        "cache_usage_per_turn_parallel": parallel_usages,
        "seconds": round(time.monotonic() - started, 1),
        "passed": max(trivial, reading) <= OVERHEAD_TARGET_MS
        and min(share, parallel) >= CACHE_TARGET,
    }


def render(result: dict[str, Any]) -> str:
    target = result["overhead_target_ms"]
    rows = [
        ("harness overhead / turn, trivial tool", f"{result['overhead_ms_trivial_tool']:.2f} ms",
         f"≤ {target:.0f} ms", verdict(result["overhead_ms_trivial_tool"] <= target)),
        ("harness overhead / turn, read_file", f"{result['overhead_ms_read_file']:.2f} ms",
         f"≤ {target:.0f} ms", verdict(result["overhead_ms_read_file"] <= target)),
        ("input tokens behind a cache breakpoint, turns 3-20",
         f"{result['cache_share_after_turn_2']:.1%}", f"≥ {result['cache_target']:.0%}",
         verdict(result["cache_share_after_turn_2"] >= result["cache_target"])),
        (f"the same, {result['parallel_calls']} parallel tool calls a turn",
         f"{result['cache_share_parallel_after_turn_2']:.1%}", f"≥ {result['cache_target']:.0%}",
         verdict(result["cache_share_parallel_after_turn_2"] >= result["cache_target"])),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{r[0]:<{width}}  {r[1]:>10}  {r[2]:>8}  {r[3]}" for r in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.agent", description=__doc__)
    parser.add_argument("--turns", type=int, default=50, help="turns per overhead run")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--external", action="store_true", help="only the external-agent section")
    only.add_argument(
        "--no-external",
        action="store_true",
        help="skip the external-agent section (it needs Node 20 and the pinned ACP adapters)",
    )
    parser.add_argument(
        "--runs", type=int, default=5, help="external agents: rounds per side, and stops"
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.external:
        return finish(asyncio.run(run_external(args)), args.json, render_external)
    if args.no_external:
        return finish(asyncio.run(run(args)), args.json, render)
    return finish(asyncio.run(run_both(args)), args.json, render_both)


if __name__ == "__main__":
    sys.exit(main())
