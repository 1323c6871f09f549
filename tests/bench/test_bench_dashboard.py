"""The dashboard benchmark runs end to end at a tiny size (a real ``locus-cloud serve`` process,
the real sign-in form, real SSE connections) and reports every figure with consistent counts;
no timing is asserted here."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bench import dashboard
from cloud_api.dashboard.groups import COLUMN_OF

pytestmark = pytest.mark.timeout(120)

TASKS = 50
CONNECTIONS = 20
ROUNDS = 2
REFRESHERS = 5

FIGURES = {
    "board_p50_ms",
    "board_p95_ms",
    "board_max_ms",
    "board_cpu_ms",
    "board_kb",
    "columns_p50_ms",
    "rest_page_p50_ms",
    "rest_all_p50_ms",
    "rest_all_kb",
    "healthz_p50_ms",
    "ratio_board_rest_page",
    "ratio_board_rest_all",
    "live_connected",
    "live_connect_s",
    "rss_before_mb",
    "rss_open_mb",
    "rss_per_connection_kb",
    "fds_before",
    "fds_open",
    "threads_open",
    "idle_cpu_pct",
    "idle_keepalives",
    "fanout_received",
    "fanout_p50_ms",
    "fanout_p95_ms",
    "fanout_last_ms",
    "fanout_max_ms",
    "fanout_post_ms",
    "fanout_cpu_ms_per_connection",
    "healthz_open_p50_ms",
    "healthz_open_max_ms",
    "board_open_p50_ms",
    "close_s",
    "refresh_count",
    "refresh_last_ms",
    "refresh_p50_ms",
    "refresh_cpu_s",
    "refresh_healthz_p50_ms",
    "refresh_healthz_max_ms",
}


async def test_the_dashboard_bench_reports_every_figure_at_a_tiny_size() -> None:
    args = dashboard.parse_args(
        [
            *("--tasks", str(TASKS), "--connections", str(CONNECTIONS)),
            *("--reps", "3", "--warmup", "1", "--idle-seconds", "0.5"),
            *("--rounds", str(ROUNDS), "--refreshers", str(REFRESHERS), "--json"),
        ]
    )
    result = await dashboard.run(args)
    values = result["values"]
    assert set(values) == FIGURES
    assert all(value >= 0 for value in values.values())

    bars = {f["key"]: f["verdict"] for f in result["figures"] if f["target"]}
    assert set(bars) == {"board_p50_ms", "live_connected", "fanout_received"}
    assert set(bars.values()) <= {"PASS", "MISS"}
    assert result["passed"] == ("MISS" not in bars.values())
    assert bars["live_connected"] == bars["fanout_received"] == "PASS"

    raw = result["raw"]
    counts = raw["seeded"]["counts"]
    assert counts == dashboard.spread(TASKS)
    assert sum(counts.values()) == TASKS and all(n > 0 for n in counts.values())
    # Every task is a card in the column of its status, and the REST baseline saw them all.
    board = raw["board"]
    assert board["cards"] == TASKS
    by_column: Counter[str] = Counter()
    for status, n in counts.items():
        by_column[COLUMN_OF[status]] += n
    assert board["columns"] == dict(by_column)
    assert (board["rest_tasks"], board["rest_pages"]) == (TASKS, 1)
    assert board["live_after"] == raw["seeded"]["events"]
    assert all(len(samples) == 3 for samples in board["samples_ms"].values())
    assert values["board_kb"] > 0 and values["rest_all_kb"] > 0

    # Every client held its stream and saw every status change; the pages that refresh did.
    live = raw["live"]
    assert live["connected"] == CONNECTIONS and live["failures"] == []
    assert values["live_connected"] == CONNECTIONS
    assert values["fanout_received"] == CONNECTIONS * ROUNDS
    assert [r["received"] for r in live["rounds"]] == [CONNECTIONS] * ROUNDS
    assert all(len(r["latencies_ms"]) == CONNECTIONS for r in live["rounds"])
    assert live["refresh"] == {
        "refreshers": REFRESHERS,
        "received": CONNECTIONS,
        "refreshed": REFRESHERS,
    }
    assert values["refresh_count"] == REFRESHERS
    # The server held a socket per connection and let go of them all once they closed.
    proc = live["proc"]
    assert proc["opened"]["fds"] >= CONNECTIONS
    assert proc["closed"]["fds"] <= proc["before"]["fds"]
    assert proc["opened"]["rss_kb"] > 0
    # The server was stopped at the end.
    assert not running(raw["server_pid"])


def running(pid: int) -> bool:
    """A process that exists and is not a zombie (an exited child waiting to be reaped)."""
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())
    except OSError:
        return False
