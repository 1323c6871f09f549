"""The daemon benchmark runs end to end in its quick mode (a real ``locusd serve`` process, a
real cloud, the loopback model) and reports every figure; no timing is asserted here."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import daemon
from tests.bench.suite import run_suite

pytestmark = pytest.mark.timeout(300)

FIGURES = {
    "status_p50_ms",
    "status_p99_ms",
    "echo_p50_ms",
    "echo_p99_ms",
    "echo_inproc_p50_ms",
    "ratio_p50",
    "status_p50_ms_10",
    "status_p99_ms_10",
    "status_per_s_10",
    "echo_p50_ms_10",
    "echo_p99_ms_10",
    "echo_per_s_10",
    "ratio_p50_10",
    "rss_fresh_mb",
    "idle_rss_mb",
    "idle_rss_mb_start",
    "idle_cpu_pct",
    "idle_wakeups_per_s",
    "idle_threads",
    "rss_after_run_mb",
    "history_status_p50_ms",
    "history_status_p99_ms",
    "cancel_local_s",
    "cancel_local_max_s",
    "cancel_local_answer_s",
    "cancel_cloud_s",
    "cancel_cloud_max_s",
    "rss_before_runs_mb",
    "rss_after_runs_mb",
}


def test_the_quick_daemon_bench_reports_every_figure() -> None:
    result = run_suite("daemon", "--quick", "--idle-seconds", "3")
    assert set(result["values"]) == FIGURES
    assert all(value >= 0 for value in result["values"].values())
    assert result["values"]["status_p50_ms"] > 0 and result["values"]["idle_rss_mb"] > 0
    bars = {f["key"]: f["verdict"] for f in result["figures"] if f["target"]}
    assert set(bars) == {
        "status_p50_ms",
        "idle_rss_mb",
        "idle_cpu_pct",
        "rss_after_run_mb",
        "rss_after_runs_mb",
        "cancel_local_s",
        "cancel_cloud_s",
    }
    assert set(bars.values()) <= {"PASS", "MISS"}
    assert result["passed"] == ("MISS" not in bars.values())
    assert len(result["raw"]["cancel_local_s"]) == len(result["raw"]["cancel_cloud_s"]) == 2
    # Nothing the bench started outlives it: daemons, baseline, cloud, the agents' commands.
    assert daemon.processes_named(result["raw"]["marker_prefix"]) == []
    assert len(result["raw"]["pids"]) == 5
    assert [pid for pid in result["raw"]["pids"] if running(pid)] == []


def running(pid: int) -> bool:
    """A process that exists and is not a zombie (an exited child waiting to be reaped)."""
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())
    except OSError:
        return False
