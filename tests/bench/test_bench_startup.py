"""The CLI start-up benchmark: its figures from samples (pure), and a real short run end to end
(a real daemon, the installed ``locus``) reporting every figure; no timing is asserted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.startup import COMMANDS, figures, timed
from tests.bench.suite import run_suite
from tests.bench.test_bench_daemon import running

pytestmark = pytest.mark.timeout(240)
ROOT = Path(__file__).resolve().parents[2]
KEYS = {"bare_p50_ms"} | {
    f"{key}_{kind}"
    for key in ("version", "status", "help", "eager")
    for kind in ("p50_ms", "ratio")
}


def samples(status: list[float]) -> dict[str, list[float]]:
    return {"bare": [30, 20, 13], "version": [40, 50, 60], "help": [60], "eager": [900],
            "status": status}  # fmt: skip


@pytest.mark.parametrize(("status", "verdict"), [([90, 100, 500], "PASS"), ([121, 5, 130], "MISS")])
def test_p50s_ratios_to_the_baseline_and_the_status_bar(status: list[float], verdict: str) -> None:
    found = {f.key: f for f in figures(samples(status))}
    assert set(found) == KEYS
    assert found["bare_p50_ms"].value == 20
    assert found["version_p50_ms"].value == 50 and found["version_ratio"].value == 2.5
    assert found["eager_ratio"].value == 45
    assert found["status_ratio"].value == found["status_p50_ms"].value / 20
    assert {k: f.verdict for k, f in found.items() if f.target} == {"status_p50_ms": verdict}


def test_a_short_run_reports_every_figure_and_stops_its_daemon() -> None:
    result = run_suite("startup", "--runs", "1", timeout=200)
    assert set(result["values"]) == KEYS
    assert all(value > 0 for value in result["values"].values())
    assert {k: len(v) for k, v in result["raw"]["samples_ms"].items()} == dict.fromkeys(COMMANDS, 1)
    assert len(result["raw"]["pids"]) == 1
    assert [pid for pid in result["raw"]["pids"] if running(pid)] == []


def test_runs_must_be_at_least_one() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.startup", "--runs", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--runs must be at least 1" in done.stderr


def test_a_command_that_fails_is_an_error_not_a_time() -> None:
    with pytest.raises(RuntimeError, match="exited 3: no daemon"):
        script = "import sys; print('no daemon', file=sys.stderr); sys.exit(3)"
        timed([sys.executable, "-c", script], os.environ)
