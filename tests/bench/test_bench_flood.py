"""The output-flood benchmark runs end to end in a short mode (a real ``locusd serve``, the
real anthropic SDK against the loopback model, real ``yes`` floods killed at the output cap)
and reports every figure; no timing is asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(300)
ROOT = Path(__file__).resolve().parents[2]

FIGURES = {
    *("idle_p50_ms", "quiet_p50_ms", "quiet_p99_ms", "flood_p50_ms", "flood_p99_ms"),
    *("flood_max_ms", "ratio_p50", "ratio_p99", "flood_mb_per_s", "flood_commands"),
    *("daemon_cpu_pct_flood", "daemon_cpu_pct_quiet", "daemon_rss_mb_flood"),
}


def test_the_flood_bench_reports_every_figure_and_leaves_no_process() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.flood", "--json", "--blocks", "1", "--seconds", "1.5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]  # 1 is a MISS, not a failure
    result = json.loads(done.stdout)
    assert set(result["values"]) == FIGURES
    assert result["values"]["flood_commands"] >= 1  # a flood really ran during the block
    bars = {f["key"]: f["verdict"] for f in result["figures"] if f["target"]}
    assert set(bars) == {"flood_p99_ms", "ratio_p99"}
    assert done.returncode == (0 if result["passed"] else 1)
    for pid in result["raw"]["pids"]:
        assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid), pid


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
