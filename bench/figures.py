"""What the benchmark suites share: a :class:`Figure` against its target, the machine it ran
on, the table of figures, the JSON result and the exit code; the ``--json``/``--keep`` flags,
progress lines, the work directory and stopping cleanly on a SIGTERM.

A suite measures, turns what it measured into figures (each with a target and PASS/MISS, or
none when it is context) and hands them to :func:`result_of`; :func:`finish` prints the result
as JSON or as the suite's table (:func:`table` with the suite's details below it) and gives the
exit code: 1 on a MISS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any


def verdict(passed: bool | None) -> str:
    """PASS or MISS for a bar, nothing for context."""
    return "" if passed is None else "PASS" if passed else "MISS"


def _fixed(value: float) -> str:
    """About three significant digits, more below 1 (0.396, 1.44, 96.1, 1,054)."""
    size = abs(value)
    if size < 1:
        return f"{value:.3f}"
    if size < 10:
        return f"{value:.2f}"
    if size < 1000:
        return f"{value:.1f}"
    return f"{value:,.0f}"


@dataclass
class Figure:
    group: str  # what it belongs to: a part of the suite, or the dispatch suite's backend
    key: str  # its name in the JSON result's ``values``
    name: str
    value: float
    unit: str  # ms, s, /s, MB, kB, %, x (a ratio), or "" (a count)
    target: str  # "" when the figure is context, not a bar
    passed: bool | None

    @property
    def verdict(self) -> str:
        return verdict(self.passed)

    def shown(self) -> str:
        if self.unit in ("ms", "s"):
            return f"{_fixed(self.value)} {self.unit}"
        if self.unit == "/s":
            return f"{self.value:.2f}/s" if self.value < 10 else f"{self.value:,.0f}/s"
        if self.unit in ("MB", "kB"):
            return f"{self.value:.1f} {self.unit}"
        if self.unit == "%":
            return f"{self.value:.2f} %"
        if self.unit == "x":
            return f"{self.value:.2f}"
        return f"{self.value:,.0f}"

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Figure:
        return cls(**{f.name: data[f.name] for f in fields(cls)})


def passed(figures: list[Figure]) -> bool:
    """No bar missed (context figures do not count)."""
    return all(f.passed is not False for f in figures)


def values(figures: list[Figure]) -> dict[str, float]:
    return {f.key: round(f.value, 4) for f in figures}


# --- the machine ---------------------------------------------------------------------------


def load() -> str:
    """The 1-minute load average: other work on the machine competes for the same 2 cores."""
    return f"{os.getloadavg()[0]:.2f}"


def machine(**more: str) -> dict[str, Any]:
    """CPUs, Python, the platform, what the suite adds (versions of what it measures) and the
    load average now, as ``load_start``."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        **more,
        "load_start": load(),
    }


# --- the result ----------------------------------------------------------------------------


def result_of(
    info: dict[str, Any],
    args: argparse.Namespace,
    figures: list[Figure],
    started: float,
    **more: Any,
) -> dict[str, Any]:
    """The result every suite prints with ``--json``: the machine (with the load average now as
    ``load_end``), the arguments, the figures and their values by key, what the suite adds
    (raw samples, notes), the seconds since ``started`` (``time.monotonic()``) and whether
    every bar passed."""
    return {
        "machine": {**info, "load_end": load()},
        "args": dict(vars(args)),
        "figures": [f.as_json() for f in figures],
        "values": values(figures),
        **more,
        "seconds": round(time.monotonic() - started, 1),
        "passed": passed(figures),
    }


def table(
    title: str, result: Mapping[str, Any], footer: Iterable[str] = (), *, group: str = "group"
) -> str:
    """The title, the load average at the start and the end, a row per figure of
    ``result["figures"]`` (as in the JSON result): group, name, value, target, PASS/MISS, and
    after a blank line the ``footer``'s lines (the suite's details)."""
    info = result["machine"]
    details = list(footer)
    header = (group, "figure", "value", "target", "result")
    rows = [
        (f["group"], f["name"], Figure.from_json(f).shown(), f["target"], f["verdict"])
        for f in result["figures"]
    ]
    width = [max(len(row[i]) for row in (header, *rows)) for i in range(4)]
    return "\n".join(
        [
            title,
            f"load average (1 min) at start {info['load_start']}, at end {info['load_end']}",
            "",
            *(
                f"{g:<{width[0]}}  {name:<{width[1]}}  {shown:>{width[2]}}"
                f"  {target:<{width[3]}}  {ok}".rstrip()
                for g, name, shown, target, ok in (header, *rows)
            ),
            *(["", *details] if details else []),
        ]
    )


async def measured(
    args: argparse.Namespace, measure: Callable[[], Awaitable[list[Figure]]], **more: Any
) -> dict[str, Any]:
    """A suite's ``run``: the machine, ``measure()`` (a SIGTERM cancels it, so its cleanup
    runs) and the result (:func:`result_of`, with ``more``)."""
    started = time.monotonic()
    info = machine()
    with cancelled_on_sigterm():
        figures = await measure()
    return result_of(info, args, figures, started, **more)


def finish(result: dict[str, Any], as_json: bool, render: Callable[[dict[str, Any]], str]) -> int:
    """Print ``result`` as JSON or rendered, with the time it took; 1 if a bar missed."""
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print(render(result))
        print(f"\ntotal {result['seconds']:.0f} s")
    return 0 if result["passed"] else 1


# --- the command line and the run ----------------------------------------------------------


def parser_for(prog: str, doc: str) -> argparse.ArgumentParser:
    """A suite's parser, described by the first line of its module's docstring."""
    return argparse.ArgumentParser(prog=prog, description=doc.split("\n")[0])


def parse_sized(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    sizes: Mapping[str, tuple[float, float]],
) -> argparse.Namespace:
    """``argv`` parsed; each flag named in ``sizes`` that was not given takes its (full,
    ``--quick``) default, of the type the default is written in (``3`` an int, ``2.0`` a float)."""
    args = parser.parse_args(argv)
    for name, (full, quick) in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, type(full)(quick if args.quick else full))
    return args


def output_flags(parser: argparse.ArgumentParser, kept: str = "") -> None:
    """``--json``, and ``--keep`` for the work directory (``kept``: what is in it)."""
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    kept = f" ({kept})" if kept else ""
    parser.add_argument("--keep", action="store_true", help=f"keep the work directory{kept}")


def at_least_one(parser: argparse.ArgumentParser, args: argparse.Namespace, *names: str) -> None:
    """A usage error (exit 2) unless each of the options ``names`` is at least 1."""
    for name in names:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def work_directory(where: Path, keep: bool) -> Iterator[Path]:
    """``where``, removed at the end (also on errors) unless ``keep``."""
    try:
        yield where
    finally:
        if keep:
            progress(f"work directory kept: {where}")
        else:
            shutil.rmtree(where, ignore_errors=True)


@contextlib.contextmanager
def cancelled_on_sigterm() -> Iterator[None]:
    """A SIGTERM cancels the running task, so its cleanup (stopping every process the suite
    started) still runs; for the block's duration."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` in this process's environment for the block (what a server or a run started
    in it inherits), as it was after."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def suite_main(
    argv: list[str] | None,
    parse_args: Callable[[list[str] | None], argparse.Namespace],
    run: Callable[[argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]],
    title: str,
    group: str = "group",
) -> int:
    """A cloud suite's ``main``: parse, run, print the table titled ``title`` (with the
    machine, and the arguments as its footer) or the JSON; 130 on Ctrl-C."""
    args = parse_args(argv)

    def render(result: dict[str, Any]) -> str:
        info = result["machine"]
        return table(
            f"{title} — {info['cpus']} CPUs, Python {info['python']}",
            result,
            [json.dumps(result["args"])],
            group=group,
        )

    with contextlib.suppress(KeyboardInterrupt):
        return finish(asyncio.run(run(args)), args.json, render)
    return 130
