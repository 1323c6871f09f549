"""File hints replayed on real history: ``python -m bench.graph REPO... [--commits N] [--json]``.

For each of the last ``--commits`` (200) non-merge commits of each repository (a path to a
checkout; offline), the task is the commit's subject and body, the index state is the history
up to its parent (read incrementally, commit after commit), and the truth is the files it
touched that existed at the parent: a renamed file counts under its old name, a file the commit
created is left out (no hint can name a file that does not exist yet), and a commit left with
no such file — only new files, or more than ``MAX_PATHS`` of them — is not scored (counted as
skipped). Printed per repository: recall@10 and hit@10 of the hints
(:func:`locusd.graph.rank.rank`) and of two baselines measured in the same run (the files
changed most often before the parent; BM25 of the task over path words alone), the hints' gain
over the best baseline (bar: +5 points recall@10), the full history read and index time, the
incremental read and index time per commit, the ranking time per task, and what the hints
add to a run's start (history read at most ``MAX_COMMITS``, index, rank at HEAD) next to a
baseline measured alongside (a worktree added at HEAD, which every run start does), and the
graph upload of the checkout at HEAD: built with no saved state, built again with it, and its
payload's size.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.figures import Figure, machine, output_flags, parser_for, progress, result_of, suite_main
from locusd.agent import hints
from locusd.git.repo import Repository, RepositoryError
from locusd.graph.history import MAX_PATHS, Commit, follow_renames, read_history
from locusd.graph.payload import DEFAULT_LIMIT
from locusd.graph.rank import HistoryIndex, frequency, path_scores, rank, words
from locusd.graph.snapshot import snapshot

K = 10
GAIN_POINTS = 5.0
Ranker = Callable[[Sequence[str], HistoryIndex, str], list[str]]


def _hints(paths: Sequence[str], history: HistoryIndex, message: str) -> list[str]:
    title, _, body = message.partition("\n")
    return [hint.path for hint in rank(paths, history, title, body, k=K)]


def _most_changed(paths: Sequence[str], history: HistoryIndex, message: str) -> list[str]:
    counts = frequency(history, paths)
    return sorted(counts, key=lambda path: (-counts[path], path))[:K]


def _path_bm25(paths: Sequence[str], history: HistoryIndex, message: str) -> list[str]:
    scores = path_scores(paths, words(message))
    return sorted(scores, key=lambda path: (-scores[path], path))[:K]


RANKERS: dict[str, Ranker] = {
    "hints": _hints,
    "most_changed": _most_changed,
    "path_bm25": _path_bm25,
}


@dataclass
class Replay:
    """One repository's replay: per ranker the recall and hit of each scored commit."""

    name: str
    scored: int = 0
    skipped: int = 0
    first: str = ""
    last: str = ""
    recall: dict[str, list[float]] = field(default_factory=lambda: {r: [] for r in RANKERS})
    index_s: list[float] = field(default_factory=list)
    step_s: list[float] = field(default_factory=list)
    rank_s: list[float] = field(default_factory=list)
    start_hints_s: float = 0.0
    start_worktree_s: float = 0.0
    upload_s: float = 0.0
    upload_again_s: float = 0.0
    payload_bytes: int = 0

    def mean(self, name: str) -> float:
        return 100 * statistics.fmean(self.recall[name]) if self.recall[name] else 0.0

    def hit(self, name: str) -> float:
        found = [1.0 if r > 0 else 0.0 for r in self.recall[name]]
        return 100 * statistics.fmean(found) if found else 0.0


def truth(target: Commit, existing: set[str]) -> set[str]:
    """The files ``target`` touched that existed at its parent (renamed ones by old name)."""
    return {p for p in target.paths if p in existing} | {
        old for old, _ in target.renames if old in existing
    }


def replay(
    repo: Repository, name: str, commits: int, rankers: dict[str, Ranker] = RANKERS
) -> Replay:
    """Replays the last ``commits`` non-merge commits of ``repo`` (see the module docstring)
    through ``rankers`` (the hints and the baselines)."""
    done = Replay(name)
    done.recall = {ranker: [] for ranker in rankers}
    targets = read_history(repo, limit=commits)
    history: HistoryIndex | None = None
    previous = ""
    for number, target in enumerate(targets):
        parent = repo.resolve(f"{target.sha}^")
        if parent is None:
            done.skipped += 1
            continue
        linear = history is not None and repo.is_ancestor(previous, parent)
        started = time.perf_counter()
        if history is None or not linear:
            # The index holds exactly the parent's history: off the previous one's line
            # (a side branch), it is read again whole rather than leak a sibling's commits.
            history = HistoryIndex(follow_renames(read_history(repo, parent)))
            done.index_s.append(time.perf_counter() - started)
        else:
            history.add(read_history(repo, parent, since=previous))
            done.step_s.append(time.perf_counter() - started)
        previous = parent
        paths = repo.paths_at(parent)
        wanted = truth(target, set(paths))
        if not wanted:
            done.skipped += 1
            continue
        done.first, done.last = done.first or target.sha, target.sha
        done.scored += 1
        for ranker_name, ranker in rankers.items():
            started = time.perf_counter()
            top = ranker(paths, history, target.message)
            if ranker_name == "hints":
                done.rank_s.append(time.perf_counter() - started)
            done.recall[ranker_name].append(len(wanted & set(top)) / len(wanted))
        if number % 50 == 49:
            progress(f"{name}: {number + 1} of {len(targets)} commits replayed")
    return done


def start_cost(repo: Repository, path: Path, rounds: int = 3) -> tuple[float, float]:
    """Seconds (median of ``rounds``) a run start spends on its hints at HEAD — the history
    read (at most ``hints.MAX_COMMITS``), indexed and ranked for the newest commit's subject —
    and, as the baseline measured alongside, on what a run start does without them: adding
    and removing a detached worktree at HEAD."""
    head = repo.resolve("HEAD") or "HEAD"
    task = read_history(repo, limit=1)[-1].message.partition("\n")[0]
    hinted: list[float] = []
    bare: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / "wt"
        for _ in range(rounds):
            started = time.perf_counter()
            repo.add_worktree(target, head)
            bare.append(time.perf_counter() - started)
            repo.remove_worktree(target, force=True)
            started = time.perf_counter()
            hints.compute(path, head, task)
            hinted.append(time.perf_counter() - started)
    return statistics.median(hinted), statistics.median(bare)


def upload_cost(path: Path) -> tuple[float, float, int]:
    """The graph upload of the checkout at HEAD (:func:`locusd.graph.snapshot.snapshot`: index,
    history, finished tasks, payload): seconds with no saved state, seconds again with it,
    and the payload's bytes."""
    with tempfile.TemporaryDirectory() as state:
        started = time.perf_counter()
        shot = snapshot(path, Path(state))
        full = time.perf_counter() - started
        started = time.perf_counter()
        snapshot(path, Path(state))
        again = time.perf_counter() - started
    return full, again, len(shot.payload.body)


def figures(done: Replay) -> list[Figure]:
    key = re.sub(r"[^a-z0-9]+", "_", done.name.lower()).strip("_")
    best = max(done.mean("most_changed"), done.mean("path_bm25"))
    gain = done.mean("hints") - best
    step = statistics.fmean(done.step_s) * 1000 if done.step_s else 0.0
    index_s = statistics.fmean(done.index_s) if done.index_s else 0.0
    rank_ms = statistics.fmean(done.rank_s) * 1000 if done.rank_s else 0.0
    g = done.name
    return [
        Figure(g, f"{key}_scored", "commits scored", done.scored, "", "", None),
        Figure(g, f"{key}_skipped", "commits skipped (no file at parent)", done.skipped, "",
               "", None),
        *(
            Figure(g, f"{key}_recall_{r}", f"recall@{K} {r}", done.mean(r), "%", "", None)
            for r in RANKERS
        ),
        *(Figure(g, f"{key}_hit_{r}", f"hit@{K} {r}", done.hit(r), "%", "", None)
          for r in RANKERS),
        Figure(g, f"{key}_gain", f"recall@{K} gain over best baseline, points", gain, "",
               f">= +{GAIN_POINTS:g} points", done.scored > 0 and gain >= GAIN_POINTS),
        Figure(g, f"{key}_index_s", "full history read + index", index_s, "s", "", None),
        Figure(g, f"{key}_step_ms", "incremental read + index per commit", step, "ms", "",
               None),
        Figure(g, f"{key}_rank_ms", "ranking per task", rank_ms, "ms", "", None),
        Figure(g, f"{key}_start_hints_ms", "run start: hints (read + index + rank at HEAD)",
               done.start_hints_s * 1000, "ms", "", None),
        Figure(g, f"{key}_start_worktree_ms", "run start baseline: worktree add at HEAD",
               done.start_worktree_s * 1000, "ms", "", None),
        Figure(g, f"{key}_start_ratio", "hints / worktree add", done.start_hints_s
               / done.start_worktree_s if done.start_worktree_s else 0.0, "x", "", None),
        Figure(g, f"{key}_upload_s", "graph upload built, no saved state", done.upload_s, "s",
               "<= 60 s", done.upload_s <= 60),
        Figure(g, f"{key}_upload_again_s", "graph upload built again, saved state",
               done.upload_again_s, "s", "<= 2 s", done.upload_again_s <= 2),
        Figure(g, f"{key}_payload_kb", "graph payload", done.payload_bytes / 1000, "kB",
               "<= 524.3 kB", done.payload_bytes <= DEFAULT_LIMIT),
    ]  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = parser_for("python -m bench.graph", __doc__)
    parser.add_argument("repos", nargs="+", type=Path, metavar="REPO", help="a git checkout")
    parser.add_argument("--commits", type=int, default=200, help="commits replayed per repo")
    parser.add_argument("--quick", action="store_true", help="20 commits per repository")
    output_flags(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.commits = 20
    if args.commits < 1:
        parser.error("--commits must be at least 1")
    opened = []
    for path in args.repos:
        try:
            opened.append(Repository(path))
        except RepositoryError as error:
            parser.error(f"REPO {path}: {error}")
    args.opened = opened
    return args


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    info = machine(max_paths=str(MAX_PATHS))
    found: list[Figure] = []
    ranges: dict[str, str] = {}
    for repo, path in zip(args.opened, args.repos, strict=True):
        done = replay(repo, path.resolve().name, args.commits)
        done.start_hints_s, done.start_worktree_s = start_cost(repo, path)
        done.upload_s, done.upload_again_s, done.payload_bytes = upload_cost(path)
        ranges[done.name] = f"{done.first[:12]}..{done.last[:12]}"
        found += figures(done)
    del args.opened
    args.repos = [str(path) for path in args.repos]
    return result_of(info, args, found, started, ranges=ranges)


def main(argv: list[str] | None = None) -> int:
    return suite_main(argv, parse_args, run, "File hints vs baselines, replayed history")


if __name__ == "__main__":
    sys.exit(main())
