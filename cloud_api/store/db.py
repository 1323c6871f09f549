"""The database handle: engines per backend, read/write transactions, post-commit wake-ups.

SQLite: one writer connection on its own thread (:mod:`cloud_api.store.sqlite_writer`) whose
transactions start with ``BEGIN IMMEDIATE`` (writes are serialised in-process instead of
fighting over the file lock), aiosqlite readers that WAL never blocks, and a busy timeout for
other processes. PostgreSQL: one pooled engine with
``pool_pre_ping`` so the pool survives a server restart.

Writers collect wake-up topics (``Tx.notify``); they are published only once the transaction
has committed — on PostgreSQL through ``pg_notify`` (delivered to every replica, this one
included, by :mod:`cloud_api.dispatch.wakeups`), on SQLite straight to the in-process hub.

A request can make all its writes one transaction (:meth:`Database.request_transaction`): the
``Idempotency-Key`` layer uses it to commit the key's stored answer together with the effect,
so a crash leaves both or neither. Inside it every ``write()`` block is a savepoint of that one
transaction, and the owner commits once the answer is known.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from cloud_api.store.sqlite_writer import SqliteWriter, ThreadConnection, configure_connection

T = TypeVar("T")
NOTIFY_CHANNEL = "locus_events"

Backend = Literal["sqlite", "postgresql"]


class UnsupportedDatabase(ValueError):
    pass


def normalise_url(url: str) -> str:
    """Accept plain ``sqlite:///PATH`` and ``postgresql://…`` URLs; pick the async drivers."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise UnsupportedDatabase(
        f"unsupported database URL scheme {parsed.drivername!r}: use sqlite:///PATH or "
        "postgresql://USER@HOST:PORT/DB"
    )


def backend_of(url: str) -> Backend:
    return "sqlite" if make_url(url).get_backend_name() == "sqlite" else "postgresql"


def asyncpg_dsn(url: str) -> str:
    """The URL as asyncpg itself wants it (for the LISTEN connection)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class Tx:
    """A write transaction: the connection plus the wake-up topics to publish on commit.
    ``conn`` is an AsyncConnection on PostgreSQL and the writer thread's on SQLite; both
    offer ``await conn.execute(statement, params)``."""

    conn: AsyncConnection | ThreadConnection
    topics: set[str] = field(default_factory=set)

    def notify(self, *topics: str) -> None:
        self.topics.update(topics)


class Claim(Protocol):
    """What a request transaction runs first and, for an attempt that is not the answer, last
    (the Idempotency-Key record: :mod:`cloud_api.api.idempotency`)."""

    async def claim(self, tx: Tx) -> None: ...

    async def unclaim(self, tx: Tx) -> None: ...


class RequestTransaction:
    """One request's writes as one transaction, opened at its first write and committed by
    its owner once the answer is known (see :meth:`Database.request_transaction`)."""

    def __init__(self, db: Database, claim: Claim) -> None:
        self.db = db
        self._claim = claim
        self._stack: AsyncExitStack | None = None
        self.tx: Tx | None = None

    async def open(self) -> Tx:
        """The transaction, begun (and claimed) on first use."""
        if self.tx is not None:
            return self.tx
        stack = AsyncExitStack()
        tx = await stack.enter_async_context(self.db._transaction())
        self._stack, self.tx = stack, tx
        try:
            await self._claim.claim(tx)
        except BaseException:
            await self.rollback()
            raise
        return tx

    async def commit(self) -> None:
        stack, self._stack, self.tx = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def rollback(self) -> None:
        stack, self._stack, self.tx = self._stack, None, None
        if stack is not None:
            # Shielded: a cancelled request must not leave its transaction open.
            await asyncio.shield(stack.__aexit__(_RolledBack, _RolledBack(), None))

    async def checkpoint(self) -> None:
        """Commit what was written so far *without* the claim: an attempt that produced no
        answer (a long-poll about to wait) must not hold the transaction while it waits."""
        if self.tx is not None:
            await self._claim.unclaim(self.tx)
            await self.commit()


class _RolledBack(Exception):
    """Thrown into a request transaction to roll it back."""


_REQUEST_TX: ContextVar[RequestTransaction | None] = ContextVar("request_tx", default=None)


def _sqlite_reader(url: str) -> AsyncEngine:
    engine = create_async_engine(url, pool_size=4, max_overflow=0, pool_timeout=120)
    event.listen(
        engine.sync_engine, "connect", lambda dbapi_conn, _record: configure_connection(dbapi_conn)
    )
    event.listen(engine.sync_engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
    return engine


class Database:
    """Use :meth:`read` and :meth:`write` for transactions; :meth:`close` at shutdown."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.backend: Backend = backend_of(self.url)
        self._publish: Callable[[set[str]], None] | None = None
        self._sqlite: SqliteWriter | None = None
        if self.backend == "sqlite":
            self.engine = _sqlite_reader(self.url)
            self._sqlite = SqliteWriter(
                make_url(self.url).set(drivername="sqlite").render_as_string()
            )
        else:
            self.engine = create_async_engine(
                self.url, pool_size=20, max_overflow=20, pool_pre_ping=True, pool_timeout=120
            )

    def on_commit(self, publish: Callable[[set[str]], None]) -> None:
        """Where SQLite commits deliver their wake-up topics (the in-process hub)."""
        self._publish = publish

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads. On PostgreSQL it runs in autocommit: under READ COMMITTED
        every statement takes its own snapshot anyway, so a BEGIN … ROLLBACK around reads
        would only add two round trips to each request."""
        async with self.engine.connect() as conn:
            if self.backend == "postgresql":
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    def _request_tx(self) -> RequestTransaction | None:
        shared = _REQUEST_TX.get()
        return shared if shared is not None and shared.db is self else None

    @asynccontextmanager
    async def request_transaction(self, claim: Claim) -> AsyncIterator[RequestTransaction]:
        """Make every ``write()`` (and PostgreSQL ``autocommit()``) in this block part of one
        transaction, begun at the first of them by ``claim.claim(tx)``. The owner calls
        :meth:`RequestTransaction.commit`; whatever is still open when the block ends is
        rolled back."""
        shared = RequestTransaction(self, claim)
        token = _REQUEST_TX.set(shared)
        try:
            yield shared
        finally:
            _REQUEST_TX.reset(token)
            await shared.rollback()

    async def checkpoint(self) -> None:
        """In a request transaction, commit what the request wrote so far as *not* its
        answer (see :meth:`RequestTransaction.checkpoint`); elsewhere nothing to do."""
        shared = self._request_tx()
        if shared is not None:
            await shared.checkpoint()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        """One write transaction, committed when the block ends (rolled back if it raises).
        Inside a request transaction: a savepoint of it, committed with it."""
        shared = self._request_tx()
        if shared is None:
            async with self._transaction() as tx:
                yield tx
            return
        if shared.tx is None:
            # The block that opens the transaction needs no savepoint: if it raises, the
            # whole transaction (only the key's claim so far) rolls back, and is opened
            # afresh if the request still has an answer to store.
            tx = await shared.open()
            try:
                yield tx
            except BaseException:
                await shared.rollback()
                raise
            return
        tx = shared.tx
        async with tx.conn.begin_nested():
            yield tx

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Tx]:
        if self._sqlite is not None:
            async with self._sqlite.transaction() as thread_conn:
                tx = Tx(thread_conn)
                yield tx
            if tx.topics and self._publish is not None:
                self._publish(tx.topics)
            return
        async with self.engine.connect() as conn:
            tx = Tx(conn)
            async with conn.begin():
                yield tx
                if tx.topics and self.backend == "postgresql":
                    await conn.execute(
                        text("SELECT pg_notify(:channel, :payload)"),
                        {"channel": NOTIFY_CHANNEL, "payload": "\n".join(sorted(tx.topics))},
                    )

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """PostgreSQL: a connection where each statement commits by itself (for hot paths
        that fit in one statement; see dispatch.claims). Inside a request transaction the
        statement runs in it instead, so it commits with the request's answer."""
        shared = self._request_tx()
        if shared is not None:
            conn = (await shared.open()).conn
            assert isinstance(conn, AsyncConnection), "autocommit() is for PostgreSQL"
            yield conn
            return
        async with self.engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    async def run_sync_write(self, fn: Callable[[Connection], T]) -> T:
        """Run a synchronous function in one write transaction (Alembic migrations)."""
        if self._sqlite is not None:
            return await self._sqlite.run_sync(fn)
        async with self.engine.begin() as conn:
            return await conn.run_sync(fn)

    async def close(self) -> None:
        await self.engine.dispose()
        if self._sqlite is not None:
            await self._sqlite.close()
