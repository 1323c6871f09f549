"""The settled horizon of task events: the highest id below which nothing can still commit.

PostgreSQL draws ``task_events.id`` from a sequence when a row is inserted, and transactions
commit in another order: a reader that sees id 105 committed while 104 is still in flight,
and moves its cursor to 105, never sees 104 (nor does ``Last-Event-ID`` bring it back).
Cursor readers (event streams, ``?after=`` pages, worker signals, the board's starting point)
therefore hand out ids only up to the *settled horizon* H: every id ≤ H belongs to a
transaction that has committed (its rows are visible) or rolled back (a hole for good).

How H is known, with no lock and no extra write on any writer's path:

* an event's id is drawn only once its transaction has an xid (the column default
  ``locus_event_id()``, migration 0004), so from then on the transaction shows its xid in
  ``pg_stat_activity.backend_xid`` (read straight from the process array) until it ends;
* a *sample* reads the sequence's last value L, then the xids in flight in this database
  (``locus_event_sample()``: one round trip, the two reads microseconds apart, so few
  transactions that start meanwhile are waited for needlessly): every id ≤ L belongs to a
  finished transaction or to one of those xids;
* once none of a sample's xids is in flight any more (a later read), every id ≤ L is settled
  and visible to any snapshot taken after. Each read takes a new sample and settles the
  earlier ones.

Not ``pg_current_snapshot()``: its in-flight list stops at xmax, one past the latest
*completed* xid, so a transaction that took its xid after that is in flight but not listed.

An id in flight holds H below it until its transaction ends (usually milliseconds, but as
long as the longest write transaction open at the time): a reader that sees committed events
above H reads again after :data:`SETTLE_POLL` instead of waiting for the next publish.
The sequence must not cache values per session (``CACHE 1``, the default).

SQLite has one writer, whose transactions take ids and commit one after the other: every
visible id is settled (:meth:`Horizon.settled` returns None, no bound).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, text
from sqlalchemy.ext.asyncio import AsyncConnection

#: How soon a reader holding events back (above H) reads again, in seconds.
SETTLE_POLL = 0.05
#: How long a one-shot read (a page of the timeline) waits for what it can see to settle, and
#: its first pause between looks (doubling each time: a page costs at most ~8 looks), seconds.
SETTLE_WAIT = 1.0
SETTLE_STEP = 0.005
#: Samples kept while waiting to settle (the oldest go first; that only delays H).
MAX_SAMPLES = 64

#: The sequence's last value, then the xids in flight in this database (migration 0004).
_SAMPLE = text("SELECT last_id, in_flight FROM locus_event_sample()")

R = TypeVar("R")


@dataclass(frozen=True)
class _Sample:
    last: int
    in_flight: frozenset[int]


class Horizon:
    """One per process (on :class:`~cloud_api.store.db.Database`): every reader's sample
    helps every other reader settle."""

    def __init__(self, backend: str) -> None:
        self._postgres = backend == "postgresql"
        self._settled = 0
        self._samples: list[_Sample] = []

    async def settled(self, conn: AsyncConnection) -> int | None:
        """H, as of now; None when every visible id is settled (SQLite). Call it before the
        read it bounds: every id ≤ H is then visible to that read."""
        if not self._postgres:
            return None
        row = (await conn.execute(_SAMPLE)).one()
        last = int(row.last_id)
        in_flight = frozenset(int(xid) for xid in (row.in_flight or "").split(",") if xid)
        if last > self._settled:
            # An earlier sample covering no more ids and waiting on no fewer xids is redundant.
            self._samples = [
                s for s in self._samples if not (s.last <= last and in_flight <= s.in_flight)
            ]
            self._samples.append(_Sample(last, in_flight))
        waiting = []
        for sample in self._samples:
            if sample.in_flight.isdisjoint(in_flight):
                self._settled = max(self._settled, sample.last)
            elif sample.last > self._settled:
                waiting.append(sample)
        self._samples = waiting[-MAX_SAMPLES:]
        return self._settled

    async def covering(
        self, read: Callable[[], AbstractAsyncContextManager[AsyncConnection]], newest: Select[Any]
    ) -> int | None:
        """H once it reaches the id ``newest`` selects (the newest committed event the read
        will see), or whatever it is after :data:`SETTLE_WAIT`: a page read just after its
        caller's own write waits the milliseconds that write takes to settle instead of
        leaving it out. Each look is a short read of its own: no connection is held waiting."""
        if not self._postgres:
            return None
        deadline = asyncio.get_running_loop().time() + SETTLE_WAIT
        pause = SETTLE_STEP
        while True:
            async with read() as conn:
                target = (await conn.execute(newest)).scalar() or 0
                horizon = await self.settled(conn)
            assert horizon is not None
            left = deadline - asyncio.get_running_loop().time()
            if horizon >= target or left <= 0:
                return horizon
            await asyncio.sleep(min(pause, left))
            pause *= 2


def settled_rows(rows: Sequence[R], horizon: int | None) -> tuple[list[R], bool]:
    """The leading rows (ordered by id) at or below ``horizon``, and whether any row was held
    back above it (then read again after :data:`SETTLE_POLL`)."""
    if horizon is None:
        return list(rows), False
    kept = [row for row in rows if _id(row) <= horizon]
    return kept, len(kept) < len(rows)


def _id(row: Any) -> int:
    return int(row.id)
