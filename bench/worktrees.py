"""Worktree benchmarks: ``.venv/bin/python -m bench.worktrees [--json]`` (from the repo root).

In one run, on a repository generated in a temporary directory (20,000 small files in nested
directories, one commit, with a ``.locus.toml`` whose setup command builds an ignored cache):

* ``Worktrees.create`` + ``remove`` against plain ``git worktree add -b`` + ``git worktree
  remove``, timed the same way, interleaved, median of several repetitions (bar: ≤ 1.2 x);
* time to ready — fresh ``create`` + bootstrap (cold cache: the setup command builds it) against
  ``take_from_pool`` + bootstrap (a finished run's worktree, cache warm: setup skips) (bar:
  ≤ 0.2 x), and the time until the repository's verify command first passes, both ways;
* one git call through :class:`~locusd.git.repo.Repository` (GitPython's ``repo.git`` over
  Locus's process layer) against the same call through the process layer alone, and the time
  to open a ``Repository`` (context, no bar: the difference is tens of microseconds of Python
  per call, less than the load of a shared machine moves a process start).

Each figure is printed with its target and PASS/MISS; the exit code is 1 on a MISS.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from bench.figures import (
    Figure,
    at_least_one,
    finish,
    machine,
    output_flags,
    parser_for,
    progress,
    result_of,
    table,
    work_directory,
)
from locusd.git.cli import git_env
from locusd.git.cli import run as run_process
from locusd.git.repo import Repository
from locusd.git.worktrees import Worktree, Worktrees
from locusd.repo_config import RepoConfig
from locusd.repo_config import load as load_repo_config

CREATE_RATIO_TARGET = 1.2
MIN_REPS = 3
READY_RATIO_TARGET = 0.2
CALL_REPS = 200

#: The cold setup: a "dependency install" that writes a package tree and byte-compiles it.
MAKE_CACHE = """#!/bin/sh
set -e
rm -rf build-cache.tmp
"{python}" - <<'PY'
from pathlib import Path
for p in range({packages}):
    d = Path("build-cache.tmp/lib") / f"dep{{p:02}}"
    d.mkdir(parents=True)
    (d / "__init__.py").write_text("")
    for m in range(100):
        (d / f"m{{m:03}}.py").write_text(f"def f(x):\\n    return x * {{m}}\\n" * 20)
PY
"{python}" -m compileall -q build-cache.tmp/lib
mv build-cache.tmp build-cache
"""
CHECK = """import sys
sys.path.insert(0, "build-cache/lib")
import dep00.m000, dep{last:02}.m099
assert dep{last:02}.m099.f(1) == 99
"""


def git(cwd: Path, *args: str, stdin: bytes | None = None) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, input=stdin, capture_output=True, check=False, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.decode(errors='replace')}")
    return done.stdout.decode()


def _fast_import_stream(files: dict[str, tuple[str, bytes]]) -> bytes:
    """One commit on main holding ``files`` (path → (mode, content)), inline blobs."""
    parts = [
        b"commit refs/heads/main\n",
        b"committer Bench <bench@example.com> 1767225600 +0000\n",
        b"data 9\ngenerated\n",
    ]
    for path, (mode, content) in files.items():
        parts.append(f"M {mode} inline {path}\ndata {len(content)}\n".encode())
        parts.append(content + b"\n")
    return b"".join(parts)


def generate_repo(path: Path, n_files: int, cache_packages: int) -> Path:
    """``n_files`` small source files in nested directories (20 x 25 x n), one commit, plus
    the .locus.toml, cache script and verify script; checked out like a user's clone."""
    files: dict[str, tuple[str, bytes]] = {}
    per_dir = max(1, -(-n_files // 500))
    for i in range(n_files):
        d = i // per_dir
        name = f"src/pkg{d // 25:02}/mod{d % 25:02}/file_{i % per_dir:03}.py"
        files[name] = (
            "100644",
            f"VALUE_{i} = {i}\n\n\ndef value():\n    return VALUE_{i}\n".encode(),
        )
    python = sys.executable
    files[".gitignore"] = ("100644", b"build-cache/\nbuild-cache.tmp/\n__pycache__/\n")
    files[".locus.toml"] = (
        "100644",
        f'setup = "test -d build-cache || ./make-cache.sh"\nverify = "\\"{python}\\" check.py"\n'.encode(),
    )
    script = MAKE_CACHE.format(python=python, packages=cache_packages)
    files["make-cache.sh"] = ("100755", script.encode())
    files["check.py"] = ("100644", CHECK.format(last=cache_packages - 1).encode())
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "bench@example.com")
    git(path, "config", "user.name", "Bench")
    git(path, "fast-import", "--quiet", stdin=_fast_import_stream(files))
    git(path, "reset", "-q", "--hard", "main")
    return path


@dataclass
class Timings:
    plain_add_ms: list[float] = field(default_factory=list)
    locus_add_ms: list[float] = field(default_factory=list)
    plain_remove_ms: list[float] = field(default_factory=list)
    locus_remove_ms: list[float] = field(default_factory=list)
    cold_ready_ms: list[float] = field(default_factory=list)
    warm_ready_ms: list[float] = field(default_factory=list)
    cold_verify_ms: list[float] = field(default_factory=list)
    warm_verify_ms: list[float] = field(default_factory=list)


@contextmanager
def stopwatch(into: list[float]) -> Iterator[None]:
    started = time.perf_counter()
    yield
    into.append((time.perf_counter() - started) * 1000)


def interleaved(i: int, steps: list[tuple[list[float], Callable[[], object]]]) -> list[object]:
    """Both steps, each timed into its list, in an order that alternates with ``i`` so drift
    hits both; round 0 is a warm-up and not counted. Results in the order given."""
    results: dict[int, object] = {}
    order = list(enumerate(steps))
    for n, (into, step) in order if i % 2 else reversed(order):
        with stopwatch(into if i else []):
            results[n] = step()
    return [results[n] for n in range(len(steps))]


def measure_create(
    repo: Path, trees: Worktrees, reps: int, budget: float, t: Timings
) -> list[Path]:
    """``git worktree add -b`` against ``Worktrees.create``, ``reps`` rounds or fewer (but at
    least 3) when they take over ``budget`` seconds; returns the worktrees made, for
    :func:`measure_remove`, which takes about as long again."""
    made: list[Path] = []
    deadline = time.monotonic() + budget
    for i in range(reps + 1):
        if i > MIN_REPS and time.monotonic() > deadline:
            break
        plain = trees.root / f"plain-{i}"
        add = partial(git, repo, "worktree", "add", "-q", "-b", f"bench/{i}", str(plain), "HEAD")
        create = partial(trees.create, f"bench-{i}", "create ratio")
        _, worktree = interleaved(i, [(t.plain_add_ms, add), (t.locus_add_ms, create)])
        assert isinstance(worktree, Worktree)
        made += [plain, worktree.path]
    return made


def measure_remove(repo: Path, trees: Worktrees, made: list[Path], t: Timings) -> None:
    """Run last: on ext4 without a journal (as on the machine in docs/benchmarks.md), creating
    files in the ~30 s after mass deletes is many times slower (``recently_deleted`` in the
    inode allocator), so no timed create may follow a remove."""
    by_path = {w.path: w for w in trees.list()}
    for i in range(len(made) // 2):
        plain, locus = made[2 * i], by_path[made[2 * i + 1]]
        steps: list[tuple[list[float], Callable[[], object]]] = [
            (t.plain_remove_ms, partial(git, repo, "worktree", "remove", str(plain))),
            (t.locus_remove_ms, partial(trees.remove, locus)),
        ]
        interleaved(i, steps)


def measure_pool(repo: Path, trees: Worktrees, reps: int, t: Timings) -> None:
    """Each round: a fresh worktree (setup builds the cache), then — once that run is reported
    and the user has committed something new — that worktree taken from the pool for the next
    task (setup finds the cache and skips)."""
    config = load_repo_config(repo)
    changed = repo / "src" / "pkg00" / "mod00" / "file_000.py"
    for i in range(reps):
        start = partial(trees.create, f"cold-{i}", "fresh worktree")
        cold = first_pass(trees, config, start, t.cold_ready_ms, t.cold_verify_ms)
        trees.set_state(cold, "done")
        changed.write_text(f"VALUE_0 = {i}\n")
        git(repo, "commit", "-q", "-am", f"user commit {i}")
        take = partial(trees.take_from_pool, f"warm-{i}", "pooled worktree")
        warm = first_pass(trees, config, take, t.warm_ready_ms, t.warm_verify_ms)
        assert not cold.path.exists(), "the pool gave another worktree"
        assert warm.path.name.startswith(f"warm-{i}-"), "renamed for its run"
        assert (warm.path / changed.relative_to(repo)).read_text() == changed.read_text()
        trees.set_state(warm, "done")


@dataclass
class Calls:
    """Per git call: the process layer alone, the same call through Repository, and opening a
    Repository (no process)."""

    process_ms: list[float] = field(default_factory=list)
    repository_ms: list[float] = field(default_factory=list)
    open_ms: list[float] = field(default_factory=list)


def measure_calls(repo: Path, reps: int) -> Calls:
    """``git rev-parse --verify -q HEAD^{commit}`` (what ``resolve`` runs), interleaved: through
    ``cli.run`` as the code before GitPython ran it, and through ``Repository.resolve``."""
    calls = Calls()
    opened = Repository(repo)
    argv = ["git", "rev-parse", "--verify", "-q", "--end-of-options", "HEAD^{commit}"]
    steps: list[tuple[list[float], Callable[[], object]]] = [
        (calls.process_ms, lambda: run_process(argv, repo, env=git_env())),
        (calls.repository_ms, partial(opened.resolve, "HEAD")),
    ]
    for i in range(reps + 1):
        interleaved(i, steps)
    for _ in range(reps):
        with stopwatch(calls.open_ms):
            Repository(repo)
    return calls


def first_pass(
    trees: Worktrees,
    config: RepoConfig,
    start: Callable[[], Worktree | None],
    ready_ms: list[float],
    verify_ms: list[float],
) -> Worktree:
    """Time to ready (worktree + bootstrap) and to the verify command's first pass."""
    assert config.verify is not None
    with stopwatch(verify_ms):
        with stopwatch(ready_ms):
            worktree = start()
            assert worktree is not None, "the pool was empty"
            trees.bootstrap(worktree, config)
        done = subprocess.run(
            ["bash", "-c", config.verify], cwd=worktree.path, capture_output=True, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(f"verify failed in {worktree.path}: {done.stderr.decode()[-500:]}")
    return worktree


def figures(t: Timings, c: Calls) -> list[Figure]:
    plain = statistics.median(
        [a + r for a, r in zip(t.plain_add_ms, t.plain_remove_ms, strict=True)]
    )
    locus = statistics.median(
        [a + r for a, r in zip(t.locus_add_ms, t.locus_remove_ms, strict=True)]
    )
    create_only = statistics.median(t.locus_add_ms) / statistics.median(t.plain_add_ms)
    cold, warm = statistics.median(t.cold_ready_ms), statistics.median(t.warm_ready_ms)
    cold_v, warm_v = statistics.median(t.cold_verify_ms), statistics.median(t.warm_verify_ms)
    process, through = statistics.median(c.process_ms), statistics.median(c.repository_ms)
    return [
        Figure("create", "plain_ms", "plain git worktree add + remove", plain, "ms", "", None),
        Figure("create", "locus_ms", "Worktrees.create + remove", locus, "ms", "", None),
        Figure("create", "create_ratio", "ratio, Locus / plain", locus / plain, "x",
               f"≤ {CREATE_RATIO_TARGET}", locus / plain <= CREATE_RATIO_TARGET),
        Figure("create", "add_ratio", "ratio, create alone / add alone", create_only, "x", "",
               None),
        Figure("pool", "cold_ready_ms", "ready: create + setup (cold cache)", cold, "ms", "",
               None),
        Figure("pool", "warm_ready_ms", "ready: pooled reuse + setup (warm)", warm, "ms", "",
               None),
        Figure("pool", "ready_ratio", "ready ratio, reuse / create", warm / cold, "x",
               f"≤ {READY_RATIO_TARGET}", warm / cold <= READY_RATIO_TARGET),
        Figure("pool", "cold_verify_ms", "first passing verify, cold", cold_v, "ms", "", None),
        Figure("pool", "warm_verify_ms", "first passing verify, warm", warm_v, "ms", "", None),
        Figure("pool", "verify_ratio", "verify ratio, warm / cold", warm_v / cold_v, "x", "",
               None),
        Figure("calls", "process_ms", "git rev-parse, process layer alone", process, "ms", "",
               None),
        Figure("calls", "repository_ms", "the same through Repository", through, "ms", "",
               None),
        Figure("calls", "call_ratio", "ratio, Repository / process", through / process, "x", "",
               None),
        Figure("calls", "open_ms", "opening a Repository (no process)",
               statistics.median(c.open_ms), "ms", "", None),
    ]  # fmt: skip


def filesystem(path: Path) -> str:
    """The filesystem type under ``path`` (tmpfs and ext4 differ a lot for 20k files)."""
    best = ("", "?")
    for line in Path("/proc/mounts").read_text().splitlines():
        _, mount, fstype, *_ = line.split()
        if (path == Path(mount) or Path(mount) in path.parents) and len(mount) > len(best[0]):
            best = (mount, fstype)
    return best[1]


def render(result: dict[str, Any]) -> str:
    info = result["machine"]
    title = (
        f"Locus worktree benchmark — {info['cpus']} CPUs, git {info['git']}, Python"
        f" {info['python']}, temp dir on {info['tmp_filesystem']}\n"
        f"repository: {result['repo']['files']} files, generated in"
        f" {result['repo']['generate_seconds']:.1f} s; medians of {result['reps']['create']}"
        f" (create), {result['reps']['pool']} (pool) and {result['reps']['calls']} (calls)"
        " repetitions"
    )
    samples = (
        f"{name}: " + ", ".join(f"{v:.0f}" for v in values) + " ms"
        for name, values in result["samples_ms"].items()
    )
    return table(title, result, samples)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = parser_for("python -m bench.worktrees", __doc__)
    parser.add_argument("--files", type=int, default=20_000, help="files in the generated repo")
    parser.add_argument("--reps", type=int, default=9, help="repetitions of the create ratio")
    parser.add_argument(
        "--budget",
        type=float,
        default=30,
        help=f"seconds for the create rounds (at least {MIN_REPS} rounds run)",
    )
    parser.add_argument("--pool-reps", type=int, default=3, help="repetitions of cold vs warm")
    parser.add_argument(
        "--cache-packages", type=int, default=40, help="100 files each in the cache"
    )
    output_flags(parser)
    args = parser.parse_args(argv)
    at_least_one(parser, args, "files", "reps", "pool_reps", "cache_packages")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="locus-bench-worktrees-")).resolve()
    with work_directory(workdir, args.keep):
        info = machine(
            git=git(workdir, "--version").strip().removeprefix("git version "),
            tmp_filesystem=filesystem(workdir),
        )
        progress(f"generating a {args.files}-file repository")
        generating = time.monotonic()
        repo = generate_repo(workdir / "repo", args.files, args.cache_packages)
        generated = time.monotonic() - generating
        trees = Worktrees(repo, workdir / "worktrees")
        timings = Timings()
        progress(f"create, plain git vs Locus, up to {args.reps} + 1 rounds")
        made = measure_create(repo, trees, args.reps, args.budget, timings)
        progress(f"time to ready, fresh vs pooled, {args.pool_reps} rounds")
        measure_pool(repo, trees, args.pool_reps, timings)
        progress("remove, plain git vs Locus")
        measure_remove(repo, trees, made, timings)
        progress(f"one git call, process layer vs Repository, {CALL_REPS} rounds")
        calls = measure_calls(repo, CALL_REPS)
    return result_of(
        info,
        args,
        figures(timings, calls),
        started,
        repo={"files": args.files + 4, "generate_seconds": generated},
        reps={"create": len(timings.plain_add_ms), "pool": args.pool_reps, "calls": CALL_REPS},
        samples_ms={k: [round(v, 1) for v in vs] for k, vs in asdict(timings).items()},
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return finish(run(args), args.json, render)


if __name__ == "__main__":
    sys.exit(main())
