"""The ``search`` tool against plain ``git grep``: ``.venv/bin/python -m bench.search [--json]``.

The tool reads every file through the confined open and matches with RE2 in Python (see
``locusd/agent/search.py`` for why); ``git grep`` — what it used before — opens files by name
in C threads. Both search the same repository, made in the run from this Python installation's
own library (``*.py`` files, committed), for the same patterns: a literal that matches
nothing, one that matches often (capped at 200 shown), and a regular expression. Each timing is
the median of ``--repeat`` runs, the two alternating; the ratio tool ÷ git grep is the figure
(bar: ≤ 10x, and ≤ 1 s for the repository).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

from bench.daemon import workdir
from bench.figures import (
    Figure,
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
from locusd.agent import tools
from locusd.agent.messages import ToolUseBlock
from locusd.agent.policy import CommandPolicy
from locusd.agent.tools import Workspace

RATIO = 10.0
TOOL_S = 1.0
PATTERNS = {
    "none": "no_such_identifier_anywhere_42",
    "common": "import",
    "regex": r"^def [a-z]+_[a-z]+\(self",
}


def make_repo(where: Path, limit_mb: float) -> tuple[Path, int, int]:
    """A git repository of the standard library's ``*.py`` files, up to ``limit_mb``."""
    source = Path(sysconfig.get_paths()["stdlib"])
    repo = where / "repo"
    files, size = 0, 0
    for path in sorted(source.rglob("*.py")):
        if "site-packages" in path.parts or not path.is_file() or path.is_symlink():
            continue
        target = repo / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        files, size = files + 1, size + path.stat().st_size
        if size > limit_mb * 2**20:
            break
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=b", "-c", "user.email=b@b",
                 "commit", "-q", "-m", "stdlib"]):  # fmt: skip
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    return repo, files, size


def git_grep(repo: Path, pattern: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["git", "grep", "-z", "--line-number", "-I", "--untracked", "--exclude-standard",
         "--extended-regexp", "-e", pattern],
        cwd=repo, capture_output=True, check=False,
    )  # fmt: skip
    return time.perf_counter() - started


async def tool(ws: Workspace, pattern: str) -> float:
    block = ToolUseBlock(id="toolu_bench", name="search", input={"pattern": pattern})
    started = time.perf_counter()
    result = await tools.execute(ws, block)
    elapsed = time.perf_counter() - started
    if result.is_error:
        raise RuntimeError(f"search failed: {result.content}")
    return elapsed


async def measure(args: argparse.Namespace, where: Path) -> dict[str, Any]:
    progress(f"copying up to {args.megabytes:g} MB of the standard library into a repository")
    repo, files, size = await asyncio.to_thread(make_repo, where, args.megabytes)
    ws = Workspace(
        root=repo, scratch=where / "scratch", policy=CommandPolicy(), env={},
        cancel=asyncio.Event(), verify=None,
    )  # fmt: skip
    figures: list[Figure] = []
    raw: dict[str, Any] = {"files": files, "bytes": size}
    for name, pattern in PATTERNS.items():
        progress(f"pattern {name}: {args.repeat} runs each")
        mine, theirs = [], []
        await tool(ws, pattern)  # warm the page cache for both
        for _ in range(args.repeat):
            mine.append(await tool(ws, pattern))
            theirs.append(await asyncio.to_thread(git_grep, repo, pattern))
        ours, git = statistics.median(mine), statistics.median(theirs)
        group = f"{files} files, {size / 2**20:.0f} MB: {name}"
        figures += [
            Figure(group, f"tool_{name}_s", "search tool, median", ours, "s", f"≤ {TOOL_S:g} s",
                   ours <= TOOL_S),
            Figure(group, f"git_grep_{name}_s", "git grep, median", git, "s", "", None),
            Figure(group, f"ratio_{name}", "ratio tool / git grep", ours / git, "x",
                   f"≤ {RATIO:g}", ours / git <= RATIO),
        ]  # fmt: skip
        raw[name] = {"tool_s": mine, "git_grep_s": theirs}
    return {"figures": figures, "raw": raw}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = parser_for("python -m bench.search", __doc__)
    parser.add_argument("--megabytes", type=float, default=40.0, help="repository size (40)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each (5)")
    output_flags(parser)
    args = parser.parse_args(argv)
    if args.megabytes <= 0 or args.repeat < 1:
        parser.error("--megabytes must be > 0 and --repeat at least 1")
    return args


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    info = machine(git=await asyncio.to_thread(_git_version))
    where = workdir("search")
    with work_directory(where, args.keep), cancelled_on_sigterm():
        measured = await measure(args, where)
    return result_of(info, args, measured["figures"], started, notes=[], raw=measured["raw"])


def _git_version() -> str:
    done = subprocess.run(["git", "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def render(result: dict[str, Any]) -> str:
    info = result["machine"]
    return table(f"search tool vs git grep — {info['cpus']} CPUs, {info['git']}", result)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return finish(asyncio.run(run(args)), args.json, render)


if __name__ == "__main__":
    sys.exit(main())
