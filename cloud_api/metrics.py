"""Prometheus metrics, one registry per app (so several apps in one process do not collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "locus_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "locus_http_request_seconds", "HTTP request latency", ["route"], registry=self.registry
        )
        self.claims = Counter(
            "locus_task_claims", "Tasks claimed by workers", registry=self.registry
        )
        self.waiting = Gauge(
            "locus_claim_waiters",
            "Workers long-polling for a task right now",
            registry=self.registry,
        )
        self.writes_waiting = Gauge(
            "locus_sqlite_writes_waiting",
            "SQLite write transactions queued behind the one running (0 on PostgreSQL)",
            registry=self.registry,
        )
        self.claim_wakeups = Counter(
            "locus_claim_wakeups",
            "Claim long-polls woken by a queued task (cause: queued), handed a wake-up another"
            " waiter left unused (passed), or all woken to look again (all: a lost LISTEN"
            " connection, shutdown)",
            ["cause"],
            registry=self.registry,
        )

    def claim_woken(self, cause: str) -> None:
        self.claim_wakeups.labels(cause).inc()
