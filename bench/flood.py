"""The daemon under an output flood: ``.venv/bin/python -m bench.flood [--json] [--quick]``.

A real daemon (``locusd serve``, its own process and temporary home) runs one task whose model
(the real anthropic SDK against the loopback model server) calls ``run_command`` turn after
turn. In *flood* blocks the command is ``yes``: it prints as fast as it can until the 16 MB
output cap kills it, and the model asks for it again at once. In *quiet* blocks it is
``sleep 0.5``: the same run, the same daemon, the same turns, no output. Meanwhile another
client times ``locus/daemon/status`` round trips; the blocks alternate (quiet, flood, quiet, …)
so that a change in the machine's load hits both. The ratio flood ÷ quiet is the figure
(bar: p99 ≤ 5x and ≤ 50 ms); an idle daemon (no run) is measured first as context, and so are
the daemon's CPU and RSS and the flood's rate (MB/s through the agent's pipe).

Every wait has a deadline, only Unix sockets and 127.0.0.1 are used, and every process started
is stopped at the end (also on errors).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.daemon import (
    SPAWNED,
    STATUS,
    DaemonProcess,
    Home,
    Latencies,
    call,
    checkout,
    client,
    proc_sample,
    workdir,
)
from bench.figures import (
    Figure,
    cancelled_on_sigterm,
    finish,
    machine,
    output_flags,
    parse_sized,
    parser_for,
    progress,
    result_of,
    table,
    work_directory,
)
from locusd.agent.commands import MAX_OUTPUT_BYTES
from locusd.cli.rpc import DaemonClient
from locusd.protocol.base import Empty
from locusd.protocol.messages import DaemonStatus, Run, RunRef, RunStartParams
from tests.support.anthropic_server import AnthropicServer, Reply, tool_use

RATIO_P99 = 5.0
FLOOD_P99_MS = 50.0
FLOOD = "yes"
QUIET = "sleep 0.5"
TASK = "Print y forever (bench.flood)."
RUN_START_TIMEOUT_S = 60.0
RUN_END_TIMEOUT_S = 120.0
SIZES: dict[str, tuple[float, float]] = {"seconds": (5.0, 2.0), "blocks": (6, 2)}


class Script:
    """The model: flood or quiet commands as the bench says, ``ask_user`` once it is done
    (the run then ends as needs_input). Runs on the model server's thread."""

    def __init__(self) -> None:
        self.flooding = threading.Event()
        self.done = threading.Event()
        self.started = threading.Event()
        self.floods = 0
        self.quiets = 0

    def __call__(self, body: dict[str, Any]) -> Reply:
        self.started.set()
        if self.done.is_set():
            return Reply([tool_use("ask_user", {"question": "enough?"})], stop_reason="tool_use")
        if self.flooding.is_set():
            self.floods += 1
            command = f"{FLOOD}  # {self.floods}"  # the same call thrice would be "stuck"
        else:
            self.quiets += 1
            command = f"{QUIET}  # {self.quiets}"
        return Reply(
            [tool_use("run_command", {"command": command, "timeout": 60})], stop_reason="tool_use"
        )


@dataclass
class Phase:
    """Round trips and the daemon's CPU over the blocks of one kind."""

    trips: Latencies = field(default_factory=Latencies)
    cpu_s: float = 0.0
    rss_mb_max: float = 0.0
    commands: int = 0


async def _block(
    probe: DaemonClient, seconds: float, into: Phase, pid: int, count: Any, script: Script
) -> None:
    """Status calls one after another for ``seconds``, the daemon's CPU and RSS sampled."""
    before, commands = proc_sample(pid), count(script)
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        t0 = time.perf_counter()
        await call(probe, STATUS, Empty(), DaemonStatus)
        into.trips.samples_ms.append((time.perf_counter() - t0) * 1000)
        into.rss_mb_max = max(into.rss_mb_max, proc_sample(pid).rss_kb / 1024)
    into.trips.seconds += time.perf_counter() - started
    into.cpu_s += proc_sample(pid).cpu_s - before.cpu_s
    into.commands += count(script) - commands


async def _run_state(daemon: DaemonClient, run_id: str) -> Run:
    shown: Run = await call(daemon, "locus/runs/show", RunRef(run_id=run_id), Run)
    return shown


async def measure(args: argparse.Namespace, where: Path) -> dict[str, Any]:
    script = Script()
    idle, quiet, flood = Phase(), Phase(), Phase()
    daemon: DaemonProcess | None = None
    with AnthropicServer(script).in_thread() as model:
        try:
            home = Home(where / "home")
            home.write_config(
                f'[agent]\nprovider = "anthropic"\nbase_url = "{model.base_url}"\n'
                "[agent.budget]\nmax_turns = 100000\nmax_tokens = 2000000000\n"
                "max_cost_usd = 1000000\n"
            )
            daemon = DaemonProcess(home, {"ANTHROPIC_API_KEY": "x"})
            await daemon.ready()
            repo = await asyncio.to_thread(checkout, where / "repo")
            async with client(home.socket, "bench-runner") as runner, client(home.socket) as probe:
                for _ in range(200):  # warm-up
                    await call(probe, STATUS, Empty(), DaemonStatus)
                progress(f"idle daemon: status calls for {args.seconds:g} s")
                await _block(probe, args.seconds, idle, daemon.pid, lambda s: 0, script)
                run: Run = await call(
                    runner, "locus/runs/start", RunStartParams(repo=str(repo), task=TASK), Run
                )
                deadline = time.monotonic() + RUN_START_TIMEOUT_S
                while not script.started.is_set():
                    if time.monotonic() > deadline:
                        shown = await _run_state(runner, run.run_id)
                        raise RuntimeError(f"the run did not reach the model: {shown}")
                    await asyncio.sleep(0.05)
                for block in range(args.blocks):
                    progress(f"block {block + 1}/{args.blocks}: quiet, then flood")
                    script.flooding.clear()
                    await asyncio.sleep(1.0)  # the flood command in flight ends (16 MB)
                    await _block(probe, args.seconds, quiet, daemon.pid, _quiets, script)
                    script.flooding.set()
                    await asyncio.sleep(1.0)  # the next command is a flood
                    await _block(probe, args.seconds, flood, daemon.pid, _floods, script)
                script.done.set()
                ended = await _until_ended(runner, run.run_id)
        finally:
            if daemon is not None:
                await asyncio.to_thread(daemon.stop)
    if ended.state != "needs_input":
        raise RuntimeError(f"the flood run ended {ended.state}: {ended.reason}")
    if flood.commands < args.blocks:
        raise RuntimeError(f"only {flood.commands} flood commands ran: nothing was measured")
    return {"figures": figures(idle, quiet, flood), "raw": _raw(idle, quiet, flood)}


def _quiets(script: Script) -> int:
    return script.quiets


def _floods(script: Script) -> int:
    return script.floods


async def _until_ended(daemon: DaemonClient, run_id: str) -> Run:
    deadline = time.monotonic() + RUN_END_TIMEOUT_S
    while (run := await _run_state(daemon, run_id)).state in ("starting", "running"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} did not end within {RUN_END_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.1)
    return run


def figures(idle: Phase, quiet: Phase, flood: Phase) -> list[Figure]:
    g = "status round trip, 1 client"
    mb_per_s = flood.commands * MAX_OUTPUT_BYTES / 2**20 / flood.trips.seconds
    ratio99, ratio50 = flood.trips.p99 / quiet.trips.p99, flood.trips.p50 / quiet.trips.p50
    ok = ratio99 <= RATIO_P99 and flood.trips.p99 <= FLOOD_P99_MS
    return [
        Figure(g, "idle_p50_ms", "idle daemon (no run) p50", idle.trips.p50, "ms", "", None),
        Figure(g, "quiet_p50_ms", "run in quiet commands p50", quiet.trips.p50, "ms", "", None),
        Figure(g, "quiet_p99_ms", "run in quiet commands p99", quiet.trips.p99, "ms", "", None),
        Figure(g, "flood_p50_ms", "run flooding p50", flood.trips.p50, "ms", "", None),
        Figure(g, "flood_p99_ms", "run flooding p99", flood.trips.p99, "ms",
               f"≤ {FLOOD_P99_MS:g} ms", flood.trips.p99 <= FLOOD_P99_MS),
        Figure(g, "flood_max_ms", "run flooding max", flood.trips.max, "ms", "", None),
        Figure(g, "ratio_p50", "ratio flood / quiet, p50", ratio50, "x", "", None),
        Figure(g, "ratio_p99", "ratio flood / quiet, p99", ratio99, "x",
               f"≤ {RATIO_P99:g}", ok),
        Figure("flood", "flood_mb_per_s", "output through the agent's pipe, MB/s", mb_per_s,
               "", "", None),
        Figure("flood", "flood_commands", "flood commands (each killed at 16 MB)",
               flood.commands, "", "", None),
        Figure("flood", "daemon_cpu_pct_flood", "daemon CPU while flooding, % of one core",
               flood.cpu_s / flood.trips.seconds * 100, "%", "", None),
        Figure("flood", "daemon_cpu_pct_quiet", "daemon CPU in quiet blocks, % of one core",
               quiet.cpu_s / quiet.trips.seconds * 100, "%", "", None),
        Figure("flood", "daemon_rss_mb_flood", "daemon RSS while flooding, max",
               flood.rss_mb_max, "MB", "", None),
    ]  # fmt: skip


def _raw(*phases: Phase) -> dict[str, Any]:
    names = ("idle", "quiet", "flood")
    return {
        name: {
            "calls": len(p.trips.samples_ms),
            "seconds": round(p.trips.seconds, 3),
            "commands": p.commands,
            "p95_ms": round(p.trips.p95, 3),
        }
        for name, p in zip(names, phases, strict=True)
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = parser_for("python -m bench.flood", __doc__)
    parser.add_argument("--seconds", type=float, help="length of one block (5)")
    parser.add_argument("--blocks", type=int, help="quiet/flood block pairs (6)")
    parser.add_argument("--quick", action="store_true", help="2 block pairs of 2 s")
    output_flags(parser)
    args = parse_sized(parser, argv, SIZES)
    if args.seconds <= 0 or args.blocks < 1:
        parser.error("--seconds must be > 0 and --blocks at least 1")
    return args


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    info = machine()
    where = workdir("flood")
    with work_directory(where, args.keep), cancelled_on_sigterm():
        measured = await measure(args, where)
    raw = {**measured["raw"], "pids": list(SPAWNED)}
    return result_of(info, args, measured["figures"], started, notes=[], raw=raw)


def render(result: dict[str, Any]) -> str:
    info = result["machine"]
    raw = result["raw"]
    return table(
        f"Locus daemon under an output flood — {info['cpus']} CPUs, Python {info['python']}",
        result,
        [json.dumps({k: raw[k] for k in ("idle", "quiet", "flood")})],
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        return finish(asyncio.run(run(args)), args.json, render)
    return 130


if __name__ == "__main__":
    sys.exit(main())
