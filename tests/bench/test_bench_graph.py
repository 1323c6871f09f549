"""The hints harness replays a history this test writes itself (tests/support/histories.py), so
it cannot rot: every figure is printed, and on that history — where a task's words name no
path but recur in the earlier commits that touched its files — the hints beat both baselines.
By construction, not by timing: no time is asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.suite import ROOT, run_suite
from tests.support.histories import constructed_project

pytestmark = pytest.mark.timeout(120)
PER_REPO = {
    *("scored", "skipped", "gain", "index_s", "step_ms", "rank_ms"),
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
