"""The double-claim check: duplicates are not enough, leases must not overlap.

Fencing tokens can hide a broken claim — two workers holding one task at once while only one
of them gets its writes in — so besides counting duplicate claim responses this rebuilds every
task's lease intervals from the timeline (a claim opens one; leaving claimed/running closes it;
an open one lasts until now) and from the claimers' own view, and counts overlaps.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from bench.claims import Observed
from cloud_api.domain.states import TaskStatus
from cloud_api.store.db import Database
from cloud_api.store.tables import task_events, tasks

LEASED = {TaskStatus.CLAIMED.value, TaskStatus.RUNNING.value}


@dataclass
class ClaimCheck:
    tasks: int
    responses: int  # claims the claimers received
    claim_events: int  # queued → claimed in the timeline
    unclaimed: int  # tasks nobody claimed
    duplicate_responses: int  # responses beyond one per task
    extra_claims: int  # claim events beyond one per task, counted where no lease ran out
    lease_expiries: int  # claimed/running → queued by the system (makes a re-claim legitimate)
    timeline_overlaps: int  # a claim event while the previous lease of the task is still open
    response_overlaps: int  # two received leases of one task that overlap in time
    mismatches: int  # the task row's owner/attempt/token is not the one its claimer received

    @property
    def double_claims(self) -> int:
        return (
            self.duplicate_responses
            + self.extra_claims
            + self.timeline_overlaps
            + self.response_overlaps
            + self.mismatches
        )


def _overlaps(intervals: Iterable[tuple[float, float]]) -> int:
    """How many intervals start before an earlier-starting one has ended."""
    count, open_until = 0, -math.inf
    for start, end in sorted(intervals):
        if start < open_until:
            count += 1
        open_until = max(open_until, end)
    return count


async def check_claims(
    db: Database, task_ids: list[int], observed: list[Observed], lease_seconds: float
) -> ClaimCheck:
    wanted = set(task_ids)
    lo, hi = min(wanted), max(wanted)
    async with db.read() as conn:
        events = (
            await conn.execute(
                select(
                    task_events.c.task_id,
                    task_events.c.from_status,
                    task_events.c.to_status,
                    task_events.c.actor,
                    task_events.c.created_at,
                )
                .where(
                    task_events.c.kind == "status",
                    task_events.c.task_id >= lo,
                    task_events.c.task_id <= hi,
                )
                .order_by(task_events.c.task_id, task_events.c.id)
            )
        ).all()
        rows = {
            r.id: r
            for r in (
                await conn.execute(
                    select(
                        tasks.c.id, tasks.c.attempt, tasks.c.claim_token, tasks.c.lease_owner_id
                    ).where(tasks.c.id >= lo, tasks.c.id <= hi)
                )
            ).all()
            if r.id in wanted
        }

    claim_times: defaultdict[int, list[float]] = defaultdict(list)
    release_times: defaultdict[int, list[float]] = defaultdict(list)
    expiries: defaultdict[int, int] = defaultdict(int)
    for ev in events:
        if ev.task_id not in wanted:
            continue
        at = ev.created_at.timestamp()
        if ev.to_status == TaskStatus.CLAIMED.value:
            claim_times[ev.task_id].append(at)
        elif ev.from_status in LEASED and ev.to_status not in LEASED:
            release_times[ev.task_id].append(at)
            if ev.to_status == TaskStatus.QUEUED.value and ev.actor == "system":
                expiries[ev.task_id] += 1

    timeline_overlaps = 0
    for task_id, starts in claim_times.items():
        ends = sorted(release_times[task_id])
        intervals = []
        for start in sorted(starts):
            # A lease lasts until the first release after it, or is still open now.
            end = next((e for e in ends if e >= start), math.inf)
            intervals.append((start, end))
        timeline_overlaps += _overlaps(intervals)

    by_task: defaultdict[int, list[Observed]] = defaultdict(list)
    for one in observed:
        by_task[one.task_id].append(one)
    lease = timedelta(seconds=lease_seconds)
    response_overlaps = sum(
        _overlaps(
            ((s.lease_expires_at - lease).timestamp(), s.lease_expires_at.timestamp()) for s in seen
        )
        for seen in by_task.values()
    )
    mismatches = 0
    for task_id, claims in by_task.items():
        last = max(claims, key=lambda s: s.attempt)
        row = rows.get(task_id)
        if row is None or (row.attempt, row.claim_token, row.lease_owner_id) != (
            last.attempt,
            last.claim_token,
            last.worker_id,
        ):
            mismatches += 1

    return ClaimCheck(
        tasks=len(wanted),
        responses=len(observed),
        claim_events=sum(len(v) for v in claim_times.values()),
        unclaimed=len(wanted - claim_times.keys()),
        duplicate_responses=sum(
            max(0, len(v) - 1 - expiries[task_id]) for task_id, v in by_task.items()
        ),
        extra_claims=sum(
            max(0, len(v) - 1 - expiries[task_id]) for task_id, v in claim_times.items()
        ),
        lease_expiries=sum(expiries.values()),
        timeline_overlaps=timeline_overlaps,
        response_overlaps=response_overlaps,
        mismatches=mismatches + len(set(by_task) - wanted),
    )
