"""The daemon's one SQLite file (``locusd.sqlite``): runs, their events, attempts, review
decisions, the outbox and the audit log share it, so that a state change and the cloud writes it
implies commit in **one transaction** — a kill -9 leaves both or neither (two files cannot give
that: SQLite's WAL commits are atomic per file only).

WAL with ``synchronous=FULL``: a committed transaction survives a power loss too. One connection,
used from the event loop's thread only; the writes are small.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Database:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA busy_timeout=5000")
        path.chmod(0o600)  # claim tokens, agent output, summaries
        self._depth = 0
        self._owner: asyncio.Task[object] | None = None

    def execute(self, sql: str, args: tuple[object, ...] = ()) -> sqlite3.Cursor:
        if self._depth and _task() is not self._owner:
            raise RuntimeError(
                "a write from another task inside a transaction: a transaction must not await"
            )
        return self.db.execute(sql, args)

    def rows(self, sql: str, args: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        """Rows addressable by column name (the connection's default stays plain tuples)."""
        cursor = self.db.cursor()
        cursor.row_factory = sqlite3.Row
        return list(cursor.execute(sql, args))

    def script(self, sql: str) -> None:
        self.db.executescript(sql)

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together (nested uses join the outer transaction). Nothing
        inside may await: another task's writes would land in this transaction."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        self._owner = _task()
        try:
            yield
        except BaseException:
            self._depth = 0
            self.db.execute("ROLLBACK")
            raise
        self._depth = 0
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()


def _task() -> asyncio.Task[object] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no event loop in this thread
        return None
