"""The login-flood benchmark runs end to end in its short mode (a real ``locus-cloud serve``,
150 real clients posting wrong passwords) and reports every figure; no timing is asserted."""

from __future__ import annotations

import pytest

from tests.bench.suite import run_suite

pytestmark = pytest.mark.timeout(300)
KEYS = {
    *("quiet_p50_ms", "quiet_p99_ms", "flood_p50_ms", "flood_p99_ms", "flood_max_ms"),
    *("ratio_p99", "logins_per_s", "logins_429_pct"),
}


def test_the_login_flood_bench_reports_every_figure() -> None:
    result = run_suite("logins", "--quick", "--seconds", "1")
    runs = ("unthrottled", "throttled")
    assert set(result["values"]) == {f"{run}_{key}" for run in runs for key in KEYS}
    values = result["values"]
    assert values["unthrottled_logins_per_s"] > 0 and values["unthrottled_logins_429_pct"] == 0
    assert values["throttled_logins_429_pct"] > 0, "the default throttling refused the flood"
