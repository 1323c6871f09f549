"""The graph index benchmark runs on a small generated repository, and its deterministic half
holds: the incremental index reads again only the one manifest that changed, the .locusignored
module is not indexed, and the payload stays under its limit (no timing is asserted)."""

from __future__ import annotations

import pytest

from bench import graphindex
from tests.bench.suite import run_suite


def test_the_graph_index_bench_runs_and_reads_only_the_changed_manifest() -> None:
    result = run_suite("graphindex", "--files", "600", "--commits", "50")
    assert result["values"]["manifests_read"] == 1
    assert result["repo"]["indexed_paths"] < 600  # packages/p55/ is .locusignored
    assert result["values"]["payload_kb"] * 1000 <= 512 * 1024
    assert result["values"]["full_s"] > 0 and result["values"]["incremental_s"] > 0


def test_bad_arguments_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        graphindex.parse_args(["--files", "0"])
    assert exited.value.code == 2 and "--files must be at least 1" in capsys.readouterr().err
