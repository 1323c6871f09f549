"""Figures against their targets (brief §9), as a table or as JSON."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

from bench.claims import DrainResult
from bench.overlap import ClaimCheck
from bench.pickup import PickupResult
from tests.support.pgserver import find_pg_bindir

#: claims per second over HTTP that each backend must reach with 32 racing workers
CLAIM_TARGETS = {"sqlite": 300.0, "postgresql": 500.0}
PICKUP_P50_MS = 100.0
PICKUP_P99_MS = 500.0


@dataclass
class Figure:
    backend: str
    name: str
    value: float
    unit: str
    target: str  # "" when the figure is context, not a bar
    passed: bool | None

    @property
    def verdict(self) -> str:
        return "" if self.passed is None else "PASS" if self.passed else "MISS"

    def shown(self) -> str:
        if self.unit == "ms":
            return f"{self.value:.1f} ms"
        if self.unit == "/s":
            return f"{self.value:.0f}/s"
        if self.unit == "x":
            return f"{self.value:.2f}"
        return f"{self.value:.0f}"


@dataclass
class BackendRun:
    backend: str
    pickup: PickupResult
    http: DrainResult
    raw: DrainResult
    http_check: ClaimCheck
    raw_check: ClaimCheck

    def figures(self) -> list[Figure]:
        b = self.backend
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
            Figure(b, "pick-up p50", self.pickup.p50_ms, "ms", f"≤ {PICKUP_P50_MS:.0f} ms",
                   self.pickup.p50_ms <= PICKUP_P50_MS),
            Figure(b, "pick-up p99", self.pickup.p99_ms, "ms", f"≤ {PICKUP_P99_MS:.0f} ms",
                   self.pickup.p99_ms <= PICKUP_P99_MS),
            Figure(b, f"claims/s over HTTP ({self.http.workers} workers)", self.http.per_second,
                   "/s", f"≥ {target:.0f}/s", self.http.per_second >= target and complete),
            Figure(b, f"claims/s raw DB ({self.raw.workers} coroutines)", self.raw.per_second,
                   "/s", "", None),
            Figure(b, "HTTP/raw ratio", ratio, "x", "", None),
            Figure(b, "server CPU per HTTP claim", self.server_ms_per_claim, "ms", "", None),
            Figure(b, "double claims (HTTP + raw)", doubles, "", "= 0", doubles == 0 and complete),
        ]  # fmt: skip

    @property
    def server_ms_per_claim(self) -> float:
        """CPU the API process spent per claim: unlike claims/s, barely moved by other load."""
        return self.http.cpu.get("server", 0.0) / max(1, len(self.http.claims)) * 1000

    def details(self) -> list[str]:
        out = [
            f"  pick-up: {len(self.pickup.samples_ms)} samples, max {self.pickup.max_ms:.1f} ms"
            + ("" if self.pickup.observed_waiter else " (no waiter gauge: settled 50 ms instead)"),
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
        return {
            "figures": [{**asdict(f), "verdict": f.verdict} for f in self.figures()],
            "pickup_ms": {
                "p50": self.pickup.p50_ms,
                "p99": self.pickup.p99_ms,
                "max": self.pickup.max_ms,
                "samples": len(self.pickup.samples_ms),
                "observed_waiter": self.pickup.observed_waiter,
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


def load() -> str:
    """The 1-minute load average: other work on the machine competes for the same 2 cores."""
    return f"{os.getloadavg()[0]:.2f}"


def machine() -> dict[str, str]:
    pg = "not found"
    bindir = find_pg_bindir()
    if bindir is not None:
        proc = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=False
        )
        pg = proc.stdout.strip().removeprefix("postgres (PostgreSQL) ")
    return {
        "cpus": str(os.cpu_count()),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg,
        "platform": platform.platform(),
    }


def render(runs: list[BackendRun], info: dict[str, str]) -> str:
    lines = [
        "Locus dispatch benchmark — "
        f"{info['cpus']} CPUs, Python {info['python']}, SQLite {info['sqlite']},"
        f" PostgreSQL {info['postgresql']}",
        f"load average (1 min) at start {info.get('load_start', '?')}, at end {info.get('load_end', '?')}",
        "",
        f"{'backend':<11} {'figure':<36} {'value':>10}  {'target':<10} result",
    ]
    for run in runs:
        for f in run.figures():
            lines.append(
                f"{f.backend:<11} {f.name:<36} {f.shown():>10}  {f.target:<10} {f.verdict}"
            )
    lines.append("")
    for run in runs:
        lines.append(f"{run.backend}:")
        lines.extend(run.details())
    return "\n".join(lines)


def all_passed(runs: list[BackendRun]) -> bool:
    return all(f.passed is not False for run in runs for f in run.figures())
