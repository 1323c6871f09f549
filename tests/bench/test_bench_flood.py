"""The output-flood benchmark runs end to end in a short mode (a real ``locusd serve``, the
real anthropic SDK against the loopback model, real ``yes`` floods killed at the output cap)
and reports every figure; no timing is asserted here."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.suite import run_suite

pytestmark = pytest.mark.timeout(300)

FIGURES = {
    *("idle_p50_ms", "quiet_p50_ms", "quiet_p99_ms", "flood_p50_ms", "flood_p99_ms"),
    *("flood_max_ms", "ratio_p50", "ratio_p99", "flood_mb_per_s", "flood_commands"),
    *("daemon_cpu_pct_flood", "daemon_cpu_pct_quiet", "daemon_rss_mb_flood"),
}


def test_the_flood_bench_reports_every_figure_and_leaves_no_process() -> None:
    result = run_suite("flood", "--blocks", "1", "--seconds", "1.5")
    assert set(result["values"]) == FIGURES
    assert result["values"]["flood_commands"] >= 1  # a flood really ran during the block
    bars = {f["key"]: f["verdict"] for f in result["figures"] if f["target"]}
    assert set(bars) == {"flood_p99_ms", "ratio_p99"}
    for pid in result["raw"]["pids"]:
        assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid), pid


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
