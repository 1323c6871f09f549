"""The conflict-aware claim benchmark runs end to end, tiny, on SQLite and PostgreSQL (a real
``locus-cloud serve`` each, a graph uploaded through the route) and reports every figure: the
claims of every policy were timed, on the database and over HTTP, and the workload really has overlapping and free
candidates. No timing is asserted."""

from __future__ import annotations

import pytest

from bench.footprints import HTTP, POLICIES
from tests.bench.suite import run_suite

pytestmark = pytest.mark.timeout(300)
BACKENDS = ("sqlite", "postgresql")
PER_POLICY = ("p50_ms", "p95_ms", "ratio_p50", "ratio_p95")


def test_the_footprint_bench_reports_every_figure_on_both_backends() -> None:
    result = run_suite(
        "footprints", *("--files", "120", "--earlier", "20", "--queued", "12", "--claims", "3")
    )
    values = result["values"]
    for b in BACKENDS:
        for policy in (*POLICIES, *HTTP):
            baseline = policy in ("ignore", "http_ignore")
            for figure in PER_POLICY[:2] if baseline else PER_POLICY:
                assert values[f"{b}_{policy}_{figure}"] > 0, f"{b} {policy} {figure}"
        assert values[f"{b}_model_ms"] > 0
        assert values[f"{b}_footprint_ms"] > 0
        # Every other queued task names a held task's module: avoid has something to pass over.
        assert values[f"{b}_candidates"] == 12
        assert values[f"{b}_overlapping"] == 6
        # Each cold claim (3 timed, 1 untimed) came right after a graph change.
        assert values[f"{b}_cold_graph_changes"] == 4
    assert len(result["args"]["backends"]) == 2
