"""``Idempotency-Key`` on POST: a retried request gets the first response, never a second effect.

Exactly once, across crashes: the request's writes and the key's stored answer are one
transaction (:meth:`Database.request_transaction`). The key row is inserted first in that
transaction and completed with the response just before it commits, so a crash — of the
process or of the database — leaves either the effect *and* its answer, or neither; there is
no "in progress" state for a retry to wait out. A retry of a request whose effect committed
replays the stored answer at once (header ``Idempotent-Replayed: true``); a retry racing the
first waits on the key row's lock only until the first commits, then replays it.

The same key with a different request is a 422. Answers of 5xx, 409 and 429 are not stored:
their writes are rolled back with them, and the client may retry. A response that holds a
secret shown once (a token) is stored without its body; a replay says so (409).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy import Row, delete, select, update

from cloud_api.api.context import Ctx
from cloud_api.api.errors import ApiError, problem_response
from cloud_api.crashpoints import crashpoint
from cloud_api.store.db import Backend, Tx
from cloud_api.store.tables import idempotency_keys as keys
from cloud_api.store.upsert import insert_for

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"


def _request_hash(request: web.Request, raw: bytes) -> str:
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path_qs.encode(), raw):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def _stored(status: int) -> bool:
    """Whether an answer is kept for replays (and its writes committed)."""
    return status < 500 and status not in (409, 429)


class KeyTaken(Exception):
    """A request with the same key committed first (it raced this one)."""

    def __init__(self, row: Row[Any]) -> None:
        super().__init__("idempotency key already used")
        self.row = row


@dataclass
class KeyRecord:
    """The key's row inside the request transaction (``Claim`` of :mod:`cloud_api.store.db`)."""

    token_id: int
    key: str
    method: str
    path: str
    request_hash: str
    backend: Backend
    row_id: int | None = None

    def _where(self) -> Any:
        return (keys.c.token_id == self.token_id) & (keys.c.key == self.key)

    async def claim(self, tx: Tx) -> None:
        """Insert the key first: a racing request with the same key waits on this row's
        lock (PostgreSQL) or the writer (SQLite) until this transaction ends."""
        inserted = (
            await tx.conn.execute(
                insert_for(self.backend, keys)
                .values(
                    token_id=self.token_id,
                    key=self.key,
                    method=self.method,
                    path=self.path,
                    request_hash=self.request_hash,
                    state="pending",  # never committed as such: completed in this transaction
                )
                .on_conflict_do_nothing()
                .returning(keys.c.id)
            )
        ).scalar()
        if inserted is not None:
            self.row_id = int(inserted)
            return
        row = (await tx.conn.execute(select(keys).where(self._where()))).one()
        if row.state != "pending":
            raise KeyTaken(row)
        # A reservation left by a version that committed it before its effect: take it over.
        await tx.conn.execute(
            update(keys).where(keys.c.id == row.id).values(request_hash=self.request_hash)
        )
        self.row_id = int(row.id)

    async def unclaim(self, tx: Tx) -> None:
        await tx.conn.execute(delete(keys).where(keys.c.id == self.row_id))
        self.row_id = None

    async def complete(self, tx: Tx, response: web.StreamResponse, secret: bool) -> None:
        body = None if secret else getattr(response, "body", None)
        await tx.conn.execute(
            update(keys)
            .where(keys.c.id == self.row_id)
            .values(
                state="done",
                status_code=response.status,
                content_type=response.content_type,
                response_body=bytes(body) if isinstance(body, bytes | bytearray) else None,
            )
        )


async def once(
    ctx: Ctx,
    secret_response: bool,
    key: str,
    raw: bytes,
    run: Callable[[], Awaitable[web.StreamResponse]],
) -> web.StreamResponse:
    db, request = ctx.services.db, ctx.request
    record = KeyRecord(
        ctx.me.token_id,
        key,
        request.method,
        request.path_qs[:2000],
        _request_hash(request, raw),
        db.backend,
    )
    async with db.read() as conn:
        earlier = (await conn.execute(select(keys).where(record._where()))).first()
    if earlier is not None and earlier.state == "done":
        return _answer(earlier, record.request_hash)
    try:
        async with db.request_transaction(record) as shared:
            try:
                response = await run()
            except ApiError as exc:
                response = problem_response(exc.problem, exc.headers.items())
            if not _stored(response.status):
                return response  # its writes roll back with the block
            tx = await shared.open()
            await record.complete(tx, response, secret_response)
            crashpoint("idempotency.answered")
            await shared.commit()
            crashpoint("idempotency.committed")
            return response
    except KeyTaken as taken:
        return _answer(taken.row, record.request_hash)


def _answer(row: Row[Any], request_hash: str) -> web.StreamResponse:
    """The stored answer to a key already used."""
    if row.request_hash != request_hash:
        raise ApiError(
            422,
            "Idempotency-Key reused",
            "this Idempotency-Key was already used for a different request; use a new key",
        )
    if row.response_body is None and row.status_code != 204:
        raise ApiError(
            409,
            "Already done",
            "this request was already processed; its response held a secret that is shown only "
            "once — list the resources to find what it created",
        )
    return web.Response(
        status=row.status_code,
        body=row.response_body,
        content_type=row.content_type or "application/json",
        headers={REPLAYED: "true"},
    )
