"""The hints harness replays a history this test writes itself (tests/support/histories.py), so
it cannot rot: every figure is printed, and on that history — where a task's words name no
path but recur in the earlier commits that touched its files — the hints beat both baselines.
By construction, not by timing: no time is asserted."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from bench.graph import replay
from locusd.git.repo import Repository
from locusd.graph.history import read_history
from locusd.graph.rank import HistoryIndex
from tests.bench.suite import ROOT, run_suite
from tests.support.histories import START, commit, constructed_project, git, new_repo

pytestmark = pytest.mark.timeout(120)
PER_REPO = {
    *("scored", "skipped", "gain", "index_s", "step_ms", "rank_ms"),
    *("start_hints_ms", "start_worktree_ms", "start_ratio"),
    *("upload_s", "upload_again_s", "payload_kb"),
    *(f"{kind}_{ranker}" for kind in ("recall", "hit") for ranker in ("hints", "most_changed", "path_bm25")),
}  # fmt: skip


def test_the_harness_replays_a_built_history_and_the_hints_beat_the_baselines(
    tmp_path: Path,
) -> None:
    repo = constructed_project(tmp_path / "built")
    result = run_suite("graph", str(repo), "--commits", "18")
    values = result["values"]
    assert set(values) == {f"built_{key}" for key in PER_REPO}
    assert values["built_scored"] == 18 and values["built_skipped"] == 0
    best = max(values["built_recall_most_changed"], values["built_recall_path_bm25"])
    assert values["built_recall_hints"] >= best + 5, values
    assert values["built_hit_hints"] >= values["built_hit_most_changed"], values
    assert result["passed"]
    assert set(result["ranges"]) == {"built"}


def test_a_repo_that_is_no_git_checkout_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.graph", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert f"REPO {tmp_path}" in done.stderr and "Traceback" not in done.stderr


def test_each_task_is_ranked_on_exactly_its_parents_history(tmp_path: Path) -> None:
    """Across a side branch and its merge, the index a commit is ranked with holds the
    commits its parent descends from — no sibling's, never its own."""
    repo = new_repo(tmp_path / "r")
    day = 86400
    for n in range(3):
        commit(repo, f"Main {n}", {"main.py": str(n)}, START + n * day)
    git(repo, "switch", "-q", "-c", "side", "HEAD~1")
    for n in range(2):
        commit(repo, f"Side {n}", {"side.py": str(n)}, START + (3 + n) * day)
    git(repo, "switch", "-q", "main")
    commit(repo, "Main 3", {"main.py": "3"}, START + 5 * day)
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge side", "side", when=START + 6 * day)
    commit(repo, "Main 4", {"main.py": "4", "side.py": "4"}, START + 7 * day)
    opened = Repository(repo)
    seen: dict[str, set[str]] = {}

    def recording(paths: Sequence[str], history: HistoryIndex, message: str) -> list[str]:
        seen[message] = {record.sha for record in history.records}
        return list(paths)[:1]

    done = replay(opened, "r", 20, {"recording": recording})
    # the root commit has no parent; "Side 0" only creates a file: neither is scored
    assert (done.scored, done.skipped) == (len(seen), 2) == (5, 2)
    for target in read_history(opened):
        if target.message in seen:
            parent = {record.sha for record in read_history(opened, f"{target.sha}^")}
            assert seen[target.message] == parent, target.message
