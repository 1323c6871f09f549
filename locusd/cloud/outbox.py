"""The durable outbox: every cloud write the daemon makes goes through here, so a crash or a
cloud outage loses nothing and duplicates nothing.

- ``enqueue`` commits the entry to the daemon's SQLite file (:mod:`locusd.localdb`) — inside the
  caller's transaction when there is one, so a state change and its report commit together —
  with a fresh ``Idempotency-Key`` that every retry reuses: a kill -9 after enqueue
  loses nothing, and a crash after the cloud applied a write but before it was marked sent makes
  the resend a replay, not a second effect.
- ``drain_forever`` sends entries in order *per task* (a task's entry waits until the earlier
  ones of that task are settled; other tasks go on), backs off exponentially with jitter on
  retryable errors, wakes at once on enqueue (an event, not a poll), and marks an entry ``dead``
  (logged, kept for inspection) when its error is not retryable, e.g. a 409 stale fence.

The outbox knows nothing about HTTP: ``sender`` raises :class:`CloudError`, whose
``retryable`` decides between retry and dead. Any other exception from it is treated as
retryable (and logged), so a bug never loses a write.

One connection (shared with the run store), used from the event loop's thread only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from sqlite3 import Row
from typing import Any, Literal

from locusd.backoff import Backoff as Backoff  # re-exported: the outbox's callers configure it
from locusd.cloud.errors import CloudError
from locusd.crashpoints import crashpoint
from locusd.localdb import Database

log = logging.getLogger("locusd.cloud.outbox")

State = Literal["pending", "sent", "dead"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,   -- the order of enqueueing
    kind TEXT NOT NULL,                     -- what the sender should do (e.g. status, log)
    task_id INTEGER,                        -- the ordering lane; NULL is one lane of its own
    payload TEXT NOT NULL,                  -- JSON, sent as is
    idempotency_key TEXT NOT NULL UNIQUE,   -- assigned once, reused on every retry
    run_id TEXT,                            -- the run the write is about, if any
    project_id INTEGER,                     -- the project, for a write about no task (graph)
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,    -- failed sends so far
    last_error TEXT,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead'))
);
CREATE INDEX IF NOT EXISTS outbox_lanes ON outbox (state, task_id, id);
"""

#: The earliest pending entry of each task: the only ones that may be sent now.
HEADS = """
SELECT o.* FROM outbox o
  JOIN (SELECT MIN(id) AS id FROM outbox WHERE state = 'pending' GROUP BY task_id) h
    ON o.id = h.id
 ORDER BY o.id
"""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    kind: str
    task_id: int | None
    payload: dict[str, Any]
    idempotency_key: str
    run_id: str | None
    project_id: int | None
    created_at: datetime
    attempts: int
    last_error: str | None
    state: State

    @classmethod
    def from_row(cls, row: Row) -> OutboxEntry:
        return cls(
            id=row["id"],
            kind=row["kind"],
            task_id=row["task_id"],
            payload=json.loads(row["payload"]),
            idempotency_key=row["idempotency_key"],
            run_id=row["run_id"],
            project_id=row["project_id"],
            created_at=datetime.fromisoformat(row["created_at"]),
            attempts=row["attempts"],
            last_error=row["last_error"],
            state=row["state"],
        )


Sender = Callable[[OutboxEntry], Awaitable[None]]


class Outbox:
    """A durable, ordered-per-task queue of cloud writes in one SQLite file."""

    def __init__(
        self,
        db: Database | Path,
        *,
        backoff: Backoff | None = None,
        concurrency: int = 4,
        keep_sent: timedelta = timedelta(days=1),
    ) -> None:
        self.db = db if isinstance(db, Database) else Database(db)
        self.backoff = backoff or Backoff()
        self.concurrency = concurrency
        self.db.script(SCHEMA)
        columns = {row["name"] for row in self.db.rows("PRAGMA table_info(outbox)")}
        if "run_id" not in columns:  # an outbox written before entries named their run
            self.db.execute("ALTER TABLE outbox ADD COLUMN run_id TEXT")
        if "project_id" not in columns:  # … or their project
            self.db.execute("ALTER TABLE outbox ADD COLUMN project_id INTEGER")
        cutoff = (_now() - keep_sent).isoformat()
        self.db.execute("DELETE FROM outbox WHERE state = 'sent' AND updated_at < ?", (cutoff,))
        #: Called inside the transaction that settles an entry (sent, or dead with the error):
        #: whatever the owner of the entry records about it commits with the settlement.
        self.on_settled: Callable[[OutboxEntry, State, str | None], None] = lambda *_: None
        self._wake = asyncio.Event()  # set by enqueue: the drainer looks again at once
        self._empty = asyncio.Event()  # set while nothing is pending
        self._draining = False
        self._refresh_empty()

    def adopt(self, path: Path) -> None:
        """The separate outbox file of an older daemon: its unsent (and dead) entries move in,
        keys and order kept, and the file is kept as ``*.imported``."""
        if not path.exists():
            return
        self.db.execute("ATTACH DATABASE ? AS old", (str(path),))
        try:
            with self.db.transaction():
                self.db.execute(
                    "INSERT OR IGNORE INTO outbox (kind, task_id, payload, idempotency_key,"
                    " created_at, updated_at, attempts, last_error, state)"
                    " SELECT kind, task_id, payload, idempotency_key, created_at, updated_at,"
                    " attempts, last_error, state FROM old.outbox WHERE state != 'sent'"
                    " ORDER BY id"
                )
        finally:
            self.db.execute("DETACH DATABASE old")
        path.rename(path.with_name(path.name + ".imported"))
        self._refresh_empty()

    # --- writing ---------------------------------------------------------------------------

    def enqueue(
        self,
        kind: str,
        task_id: int | None,
        payload: Mapping[str, Any],
        *,
        run_id: str | None = None,
        project_id: int | None = None,
    ) -> int:
        """Store a write to send; it is durable when this returns (or, inside a
        :meth:`Database.transaction`, when that commits). Returns the entry's id."""
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        stamp = _now().isoformat()
        cursor = self.db.execute(
            "INSERT INTO outbox (kind, task_id, payload, idempotency_key, created_at, updated_at,"
            " run_id, project_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (kind, task_id, body, str(uuid.uuid4()), stamp, stamp, run_id, project_id),
        )
        entry_id = cursor.lastrowid
        assert entry_id is not None
        self._empty.clear()
        self._wake.set()
        return entry_id

    def withdraw(self, kind: str, project_id: int) -> int:
        """Drop the pending ``kind`` writes about no task of ``project_id``: for a write that
        replaces the previous one whole (a graph upload), an older one not yet sent is
        superseded, not lost. Returns how many were dropped."""
        cursor = self.db.execute(
            "DELETE FROM outbox WHERE state = 'pending' AND kind = ? AND project_id = ?"
            " AND task_id IS NULL",
            (kind, project_id),
        )
        self._refresh_empty()
        return cursor.rowcount

    # --- reading ---------------------------------------------------------------------------

    def pending(self) -> list[OutboxEntry]:
        """Entries not yet sent, in enqueue order."""
        return self._select("state = 'pending'")

    def dead(self) -> list[OutboxEntry]:
        """Entries the cloud refused for good, with the error, in enqueue order."""
        return self._select("state = 'dead'")

    def get(self, entry_id: int) -> OutboxEntry | None:
        found = self._select("id = ?", (entry_id,))
        return found[0] if found else None

    def pending_count(self) -> int:
        row = self.db.execute("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").fetchone()
        return int(row[0])

    async def wait_empty(self) -> None:
        """Return once nothing is pending (sent or dead); wrap in asyncio.timeout to bound it."""
        await self._empty.wait()

    def dead_count(self) -> int:
        row = self.db.execute("SELECT COUNT(*) FROM outbox WHERE state = 'dead'").fetchone()
        return int(row[0])

    def _select(self, where: str, args: tuple[Any, ...] = ()) -> list[OutboxEntry]:
        rows = self.db.rows(f"SELECT * FROM outbox WHERE {where} ORDER BY id", args)  # noqa: S608
        return [OutboxEntry.from_row(row) for row in rows]

    def _refresh_empty(self) -> None:
        if self.db.execute("SELECT 1 FROM outbox WHERE state = 'pending' LIMIT 1").fetchone():
            self._empty.clear()
        else:
            self._empty.set()

    # --- draining --------------------------------------------------------------------------

    async def drain_forever(self, sender: Sender, stop: asyncio.Event) -> None:
        """Send pending entries until ``stop`` is set; then cancel sends in flight (they stay
        pending and are resent, as replays, next time)."""
        if self._draining:
            raise RuntimeError("this outbox is already being drained")
        self._draining = True
        loop = asyncio.get_running_loop()
        in_flight: dict[int | None, asyncio.Task[float | None]] = {}
        retry_at: dict[int | None, float] = {}
        stopped = asyncio.ensure_future(stop.wait())
        woken: asyncio.Future[Any] | None = None
        try:
            while not stop.is_set():
                self._wake.clear()  # before looking, so an enqueue from now on wakes us again
                now = loop.time()
                for entry in self._heads():
                    lane = entry.task_id
                    if len(in_flight) >= self.concurrency:
                        break
                    if lane in in_flight or retry_at.get(lane, now) > now:
                        continue
                    in_flight[lane] = asyncio.create_task(self._send(sender, entry))
                if woken is None or woken.done():
                    woken = asyncio.ensure_future(self._wake.wait())
                waits = [t - now for lane, t in retry_at.items() if lane not in in_flight]
                await asyncio.wait(
                    [stopped, woken, *in_flight.values()],
                    timeout=max(0.0, min(waits)) if waits else None,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for lane, task in list(in_flight.items()):
                    if task.done():
                        del in_flight[lane]
                        delay = task.result()
                        if delay is None:
                            retry_at.pop(lane, None)
                        else:
                            retry_at[lane] = loop.time() + delay
                now = loop.time()
                retry_at = {lane: t for lane, t in retry_at.items() if t > now or lane in in_flight}
        finally:
            self._draining = False
            pending = [stopped, *in_flight.values(), *([woken] if woken else [])]
            for future in pending:
                future.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _heads(self) -> list[OutboxEntry]:
        return [OutboxEntry.from_row(row) for row in self.db.rows(HEADS)]

    async def _send(self, sender: Sender, entry: OutboxEntry) -> float | None:
        """Send one entry and record the outcome; returns the backoff delay, or None when the
        entry is settled (sent or dead)."""
        try:
            await sender(entry)
        except CloudError as exc:
            if not exc.retryable:
                log.warning(
                    "outbox: dropping %s #%d (task %s), refused for good: %s",
                    entry.kind,
                    entry.id,
                    entry.task_id,
                    exc,
                )
                self._settle(entry, "dead", str(exc))
                return None
            return self._failed(entry, str(exc), exc.retry_after)
        except Exception as exc:
            log.exception("outbox: sending %s #%d failed unexpectedly", entry.kind, entry.id)
            return self._failed(entry, f"{type(exc).__name__}: {exc}", None)
        if entry.task_id is not None:  # a task's write (the point's count is of those only)
            crashpoint("outbox.acknowledged")  # the cloud has it; this daemon has not noted it
        self._settle(entry, "sent", None)
        return None

    def _failed(self, entry: OutboxEntry, error: str, retry_after: float | None) -> float:
        attempts = entry.attempts + 1
        self.db.execute(
            "UPDATE outbox SET attempts = ?, last_error = ?, updated_at = ? WHERE id = ?",
            (attempts, error, _now().isoformat(), entry.id),
        )
        delay = self.backoff.delay(attempts, retry_after)
        log.info(
            "outbox: %s #%d (task %s) failed (attempt %d), retrying in %.2fs: %s",
            entry.kind,
            entry.id,
            entry.task_id,
            attempts,
            delay,
            error,
        )
        return delay

    def _settle(self, entry: OutboxEntry, state: State, error: str | None) -> None:
        """Sent, or dead with the error that killed it (which counts as an attempt); in the same
        transaction, whatever :attr:`on_settled` records about it."""
        with self.db.transaction():
            self.db.execute(
                "UPDATE outbox SET state = ?, last_error = COALESCE(?, last_error),"
                " updated_at = ?, attempts = attempts + ? WHERE id = ?",
                (state, error, _now().isoformat(), int(error is not None), entry.id),
            )
            self.on_settled(entry, state, error)
        self._refresh_empty()
