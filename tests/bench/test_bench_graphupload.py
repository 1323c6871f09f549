"""The graph-upload benchmark runs end to end in its short mode (a real ``locus-cloud serve``,
real maximal uploads) and reports every figure; no timing is asserted."""

from __future__ import annotations

import pytest

from tests.bench.suite import run_suite

pytestmark = pytest.mark.timeout(300)
KEYS = {
    *("quiet_p50_ms", "quiet_p99_ms", "one_p50_ms", "one_max_ms", "many_p50_ms"),
    *("many_p99_ms", "many_max_ms", "ratio_p99", "upload_max_s", "upload_failed"),
}


def test_the_graph_upload_bench_reports_every_figure() -> None:
    result = run_suite("graphupload", "--quick", "--uploaders", "2")
    assert set(result["values"]) == KEYS
    assert result["values"]["upload_failed"] == 0, "every maximal upload answered 2xx"
