"""SQLite writes on one dedicated thread.

SQLite allows one writer at a time, so every write transaction of the process runs on one
thread, one after another (FIFO). Why not aiosqlite here: it hops to its thread three or four
times per statement (cursor, execute, fetch, close), and the write lock is held across every
hop while the event loop serves other requests, which capped claims near 300/s. Here a
statement is one hop (``BEGIN IMMEDIATE`` rides along with the first one) and the commit is
one more. Reads stay on aiosqlite connections, which WAL lets run beside the writer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, NestedTransaction, RootTransaction, create_engine, event
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql import Executable

T = TypeVar("T")
#: One row's parameters, or a list of them (executemany), as SQLAlchemy takes them.
Params = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


def configure_connection(dbapi_conn: Any) -> None:
    """Pragmas for every SQLite connection, reader or writer."""
    # Let SQLAlchemy's "begin" event emit BEGIN itself (the documented pysqlite recipe).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "busy_timeout=30000",
        "foreign_keys=ON",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _buffered(result: CursorResult[Any]) -> Result[Any]:
    """Fetch everything on the writer thread; the caller reads it on the event loop."""
    if result.returns_rows:
        return result.freeze()()
    return IteratorResult(SimpleResultMetaData([]), iter([]))


class ThreadConnection:
    """What a write transaction's ``Tx.conn`` is on SQLite: ``await conn.execute(...)`` like an
    AsyncConnection, run on the writer thread, with a fully buffered result."""

    def __init__(self, writer: SqliteWriter) -> None:
        self._writer = writer
        self._conn: Connection | None = None
        self._trans: RootTransaction | None = None

    async def execute(self, statement: Executable, parameters: Params = None) -> Result[Any]:
        return await self._writer.call(self._execute, statement, parameters)

    @asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[None]:
        """A savepoint, as ``AsyncConnection.begin_nested()``: rolled back if the block
        raises, the outer transaction going on."""
        nested = await self._writer.call(self._savepoint)
        try:
            yield
        except BaseException:
            await asyncio.shield(self._writer.call(nested.rollback))
            raise
        await self._writer.call(nested.commit)

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self._writer.engine.connect()
            self._trans = self._conn.begin()  # BEGIN IMMEDIATE (see SqliteWriter)
        return self._conn

    def _savepoint(self) -> NestedTransaction:
        return self._connection().begin_nested()

    def _execute(self, statement: Executable, parameters: Params) -> Result[Any]:
        return _buffered(self._connection().execute(statement, parameters))

    def finish(self, commit: bool) -> None:
        if self._conn is None:
            return
        try:
            assert self._trans is not None
            if commit:
                self._trans.commit()
            else:
                self._trans.rollback()
        finally:
            self._conn.close()
            self._conn = self._trans = None


class SqliteWriter:
    def __init__(self, sync_url: str) -> None:
        self.engine = create_engine(
            sync_url,
            poolclass=StaticPool,  # one connection, used only by the writer thread
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        event.listen(
            self.engine, "connect", lambda dbapi_conn, _record: configure_connection(dbapi_conn)
        )
        event.listen(self.engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="locus-sqlite-writer")
        self._lock: asyncio.Lock | None = None

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[ThreadConnection]:
        """One write transaction at a time: their statements must not interleave on the one
        connection. Committed when the block ends, rolled back if it raises."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            conn = ThreadConnection(self)
            try:
                yield conn
            except BaseException:
                # Shielded: even a cancelled caller must not leave the transaction open. The
                # thread is FIFO, so the next transaction starts after this rollback.
                await asyncio.shield(self.call(conn.finish, False))
                raise
            await self.call(conn.finish, True)

    async def run_sync(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one transaction on the writer thread (e.g. Alembic migrations)."""

        def run() -> T:
            with self.engine.begin() as conn:
                return fn(conn)

        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            return await self.call(run)

    async def close(self) -> None:
        await self.call(self.engine.dispose)
        self._thread.shutdown(wait=True)
