"""The dispatch suite's figures against their targets (brief §9), per backend, as a table or as
JSON; the machine it ran on (with the SQLite and PostgreSQL versions)."""

from __future__ import annotations

import sqlite3
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

from bench import figures
from bench.claims import DrainResult
from bench.figures import Figure
from bench.overlap import ClaimCheck
from bench.pickup import CrowdResult, PickupResult
from tests.support.pgserver import find_pg_bindir

#: claims per second over HTTP that each backend must reach with 32 racing workers
CLAIM_TARGETS = {"sqlite": 300.0, "postgresql": 500.0}
PICKUP_P50_MS = 100.0
PICKUP_P99_MS = 500.0
#: issue 15: pick-up p99 with 1,000 idle long-polls
CROWD_P99_MS = 50.0


@dataclass
class BackendRun:
    backend: str
    pickup: PickupResult
    crowd: CrowdResult
    http: DrainResult
    raw: DrainResult
    http_check: ClaimCheck
    raw_check: ClaimCheck

    def figures(self) -> list[Figure]:
        b, crowd = self.backend, self.crowd
        target = CLAIM_TARGETS[b]
        ratio = self.http.per_second / self.raw.per_second if self.raw.per_second else 0.0
        doubles = self.http_check.double_claims + self.raw_check.double_claims
        complete = (
            self.http_check.unclaimed == 0
            and self.raw_check.unclaimed == 0
            and len(self.http.claims) == self.http.tasks
            and len(self.raw.claims) == self.raw.tasks
        )
        return [
            Figure(b, "pickup_p50_ms", "pick-up p50", self.pickup.p50, "ms",
                   f"≤ {PICKUP_P50_MS:.0f} ms", self.pickup.p50 <= PICKUP_P50_MS),
            Figure(b, "pickup_p99_ms", "pick-up p99", self.pickup.p99, "ms",
                   f"≤ {PICKUP_P99_MS:.0f} ms", self.pickup.p99 <= PICKUP_P99_MS),
            Figure(b, "crowd_pickup_p50_ms", f"pick-up p50, {crowd.idle} idle long-polls",
                   crowd.p50, "ms", "", None),
            Figure(b, "crowd_pickup_p99_ms", f"pick-up p99, {crowd.idle} idle long-polls",
                   crowd.p99, "ms", f"≤ {CROWD_P99_MS:.0f} ms", crowd.p99 <= CROWD_P99_MS),
            Figure(b, "crowd_ratio_p50", f"pick-up p50, {crowd.idle} idle ÷ 1 idle",
                   crowd.p50 / self.pickup.p50, "x", "", None),
            Figure(b, "crowd_ratio_p99", f"pick-up p99, {crowd.idle} idle ÷ 1 idle",
                   crowd.p99 / self.pickup.p99, "x", "", None),
            Figure(b, "crowd_wakeups_per_task", f"long-polls woken per task ({crowd.idle} idle)",
                   crowd.wakeups_per_task, "", "≤ 1", crowd.wakeups_per_task <= 1),
            Figure(b, "crowd_server_cpu_ms_per_task",
                   f"server CPU per task ({crowd.idle} idle)", crowd.server_cpu_ms_per_task,
                   "ms", "", None),
            Figure(b, "http_claims_per_s", f"claims/s over HTTP ({self.http.workers} workers)",
                   self.http.per_second, "/s", f"≥ {target:.0f}/s",
                   self.http.per_second >= target and complete),
            Figure(b, "raw_claims_per_s", f"claims/s raw DB ({self.raw.workers} coroutines)",
                   self.raw.per_second, "/s", "", None),
            Figure(b, "ratio_http_raw", "HTTP/raw ratio", ratio, "x", "", None),
            Figure(b, "server_cpu_ms_per_claim", "server CPU per HTTP claim",
                   self.server_ms_per_claim, "ms", "", None),
            Figure(b, "double_claims", "double claims (HTTP + raw)", doubles, "", "= 0",
                   doubles == 0 and complete),
        ]  # fmt: skip

    @property
    def server_ms_per_claim(self) -> float:
        """CPU the API process spent per claim: unlike claims/s, barely moved by other load."""
        return self.http.cpu.get("server", 0.0) / max(1, len(self.http.claims)) * 1000

    def details(self) -> list[str]:
        out = [
            f"  pick-up: {len(self.pickup.samples_ms)} samples, max {self.pickup.max:.1f} ms"
            + ("" if self.pickup.observed_waiter else " (no waiter gauge: settled 50 ms instead)"),
            f"  pick-up among {self.crowd.idle} idle long-polls: {len(self.crowd.samples_ms)}"
            f" samples, max {self.crowd.max:.1f} ms",
        ]
        for drain, check in ((self.http, self.http_check), (self.raw, self.raw_check)):
            cpu = ", ".join(
                f"{k} {v:.1f} s ({v / drain.seconds * 100:.0f}% of a core,"
                f" {v / max(1, len(drain.claims)) * 1000:.2f} ms/claim)"
                for k, v in drain.cpu.items()
            )
            out.append(
                f"  {drain.kind}: {len(drain.claims)}/{drain.tasks} claimed in {drain.seconds:.2f} s"
                f" by {drain.workers}; errors {len(drain.errors)}; CPU: {cpu}"
            )
            out.append(
                f"  {drain.kind} check: {check.responses} responses, {check.claim_events} claim"
                f" events, unclaimed {check.unclaimed}, duplicates {check.duplicate_responses},"
                f" extra claims {check.extra_claims}, lease expiries {check.lease_expiries},"
                f" overlaps {check.timeline_overlaps} (timeline) / {check.response_overlaps}"
                f" (responses), owner mismatches {check.mismatches}"
            )
        return out

    def as_json(self) -> dict[str, Any]:
        found = self.figures()
        return {
            "figures": [f.as_json() for f in found],
            "values": figures.values(found),
            "pickup_ms": {
                "p50": self.pickup.p50,
                "p99": self.pickup.p99,
                "max": self.pickup.max,
                "samples": len(self.pickup.samples_ms),
                "observed_waiter": self.pickup.observed_waiter,
            },
            "crowd_pickup_ms": {
                "idle": self.crowd.idle,
                "p50": self.crowd.p50,
                "p99": self.crowd.p99,
                "max": self.crowd.max,
                "samples": len(self.crowd.samples_ms),
                "wakeups_per_task": self.crowd.wakeups_per_task,
                "server_cpu_ms_per_task": self.crowd.server_cpu_ms_per_task,
            },
            "http": _drain_json(self.http, self.http_check),
            "raw": _drain_json(self.raw, self.raw_check),
        }


def _drain_json(drain: DrainResult, check: ClaimCheck) -> dict[str, Any]:
    return {
        "tasks": drain.tasks,
        "workers": drain.workers,
        "claimed": len(drain.claims),
        "seconds": drain.seconds,
        "per_second": drain.per_second,
        "errors": drain.errors[:10],
        "cpu_seconds": drain.cpu,
        "check": {**asdict(check), "double_claims": check.double_claims},
    }


def machine() -> dict[str, Any]:
    """The machine (:func:`bench.figures.machine`) with the SQLite and PostgreSQL versions."""
    pg = "not found"
    bindir = find_pg_bindir()
    if bindir is not None:
        proc = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=False
        )
        pg = proc.stdout.strip().removeprefix("postgres (PostgreSQL) ")
    return figures.machine(sqlite=sqlite3.sqlite_version, postgresql=pg)


def render(runs: list[BackendRun], info: dict[str, Any]) -> str:
    title = (
        "Locus dispatch benchmark — "
        f"{info['cpus']} CPUs, Python {info['python']}, SQLite {info['sqlite']},"
        f" PostgreSQL {info['postgresql']}"
    )
    found = [f.as_json() for run in runs for f in run.figures()]
    details = [line for run in runs for line in (f"{run.backend}:", *run.details())]
    return figures.table(title, {"machine": info, "figures": found}, details, group="backend")


def all_passed(runs: list[BackendRun]) -> bool:
    return figures.passed([f for run in runs for f in run.figures()])
