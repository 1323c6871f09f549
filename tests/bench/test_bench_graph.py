"""The graph-upload benchmark runs end to end in its short mode (a real ``locus-cloud serve``,
real maximal uploads) and reports every figure; no timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(300)
ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    *("quiet_p50_ms", "quiet_p99_ms", "one_p50_ms", "one_max_ms", "many_p50_ms"),
    *("many_p99_ms", "many_max_ms", "ratio_p99", "upload_max_s", "upload_failed"),
}


def test_the_graph_upload_bench_reports_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.graph", "--json", "--quick", "--uploaders", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]  # 1 is a MISS, not a failure
    result = json.loads(done.stdout)
    assert set(result["values"]) == KEYS
    assert result["values"]["upload_failed"] == 0, "every maximal upload answered 2xx"
    assert done.returncode == (0 if result["passed"] else 1)
