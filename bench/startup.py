"""CLI start-up benchmark: ``.venv/bin/python -m bench.startup [--runs N] [--json]`` (from the repo root).

The wall time of ``locus`` commands as a user types them — the installed console script, a
fresh process each time — p50 over ``--runs`` runs, against a baseline measured in the same
run: the same interpreter doing nothing (``python -c pass``). The runs go round the commands
in turn, so drift (other work on the machine) hits all of them alike.

* ``locus --version`` (context: the floor of a click command; ratio to bare Python);
* ``locus status`` with a daemon already running (``locusd serve`` in a temporary home, as
  ``bench.daemon`` starts it): bar p50 ≤ 120 ms;
* ``locus --help`` (context);
* every subcommand's module imported (``locusd.cli.COMMANDS`` loaded; context): what each
  ``locus`` command paid before they were imported on first use.

Every run's exit code is checked (a failing command is not a fast one), and the daemon is
stopped at the end, also on an error or a SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.daemon import SPAWNED, DaemonProcess, Home, workdir
from bench.figures import (
    Figure,
    at_least_one,
    cancelled_on_sigterm,
    finish,
    machine,
    output_flags,
    parser_for,
    progress,
    result_of,
    table,
    work_directory,
)

STATUS_MS = 120.0
WARMUP_RUNS = 2
RUN_TIMEOUT_S = 60.0
BIN = Path(sys.executable).parent
LOCUS = str(BIN / "locus")
#: What is timed, by key: the baseline first.
COMMANDS: dict[str, tuple[str, list[str]]] = {
    "bare": ("python -c pass (baseline)", [sys.executable, "-c", "pass"]),
    "version": ("locus --version", [LOCUS, "--version"]),
    "status": ("locus status (daemon running)", [LOCUS, "status"]),
    "help": ("locus --help", [LOCUS, "--help"]),
    "eager": (
        "every subcommand imported",
        [
            sys.executable,
            "-c",
            "from locusd.cli import COMMANDS\nfor command in COMMANDS.values(): command.load()",
        ],
    ),
}


def timed(command: list[str], env: Mapping[str, str]) -> float:
    """Milliseconds from spawning ``command`` to its exit; it must exit 0."""
    started = time.perf_counter()
    done = subprocess.run(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=RUN_TIMEOUT_S
    )
    elapsed = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"{command} exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    return elapsed


def measure(env: Mapping[str, str], runs: int) -> dict[str, list[float]]:
    """``runs`` wall times (ms) of each command, in turns, after ``WARMUP_RUNS`` of each."""
    samples: dict[str, list[float]] = {key: [] for key in COMMANDS}
    for turn in range(WARMUP_RUNS + runs):
        for key, (_, command) in COMMANDS.items():
            elapsed = timed(command, env)
            if turn >= WARMUP_RUNS:
                samples[key].append(elapsed)
    return samples


def figures(samples: Mapping[str, list[float]]) -> list[Figure]:
    """Each command's p50 and its ratio to the baseline's p50; the bar on ``locus status``."""
    p50 = {key: statistics.median(values) for key, values in samples.items()}
    found = [Figure(COMMANDS["bare"][0], "bare_p50_ms", "p50", p50["bare"], "ms", "", None)]
    for key in ("version", "status", "help", "eager"):
        group = COMMANDS[key][0]
        bar = key == "status"
        found += [
            Figure(group, f"{key}_p50_ms", "p50", p50[key], "ms",
                   f"≤ {STATUS_MS:g} ms" if bar else "", p50[key] <= STATUS_MS if bar else None),
            Figure(group, f"{key}_ratio", "ratio to bare python, p50", p50[key] / p50["bare"],
                   "x", "", None),
        ]  # fmt: skip
    return found


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = parser_for("python -m bench.startup", __doc__)
    parser.add_argument("--runs", type=int, default=30, help="timed runs of each command (30)")
    output_flags(parser, "the daemon's log")
    args = parser.parse_args(argv)
    at_least_one(parser, args, "runs")
    return args


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    info = machine()
    where = workdir("startup")
    with work_directory(where, args.keep), cancelled_on_sigterm():
        home = Home(where / "home")
        daemon = DaemonProcess(home)
        try:
            await daemon.ready()
            progress(f"{args.runs} runs of each of {len(COMMANDS)} commands")
            samples = await asyncio.to_thread(measure, home.env(), args.runs)
        finally:
            await asyncio.to_thread(daemon.stop)
    raw = {"samples_ms": {k: [round(v, 2) for v in s] for k, s in samples.items()}}
    return result_of(info, args, figures(samples), started, raw={**raw, "pids": list(SPAWNED)})


def render(result: dict[str, Any]) -> str:
    info = result["machine"]
    return table(f"Locus CLI start-up — {info['cpus']} CPUs, Python {info['python']}", result)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return finish(asyncio.run(run(args)), args.json, render)


if __name__ == "__main__":
    sys.exit(main())
