"""``Idempotency-Key`` on POST: a retried request gets the first response, never a second effect.

The key is reserved (a *pending* row, unique per token) before the handler runs, and the
response is stored once it has. A retry with the same key and body replays the stored
response; the same key with a different body is a 422; a retry while the first is still in
flight is a 409 with ``Retry-After``. Responses of 5xx and 409 are not stored (the client may
retry them), and a pending reservation older than ``pending_idempotency_seconds`` — the
request's process died — may be taken over.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from cloud_api.api.context import Ctx
from cloud_api.api.errors import ApiError, problem_response
from cloud_api.store.tables import idempotency_keys as keys
from cloud_api.store.types import db_now

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"


def _request_hash(request: web.Request, raw: bytes) -> str:
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path_qs.encode(), raw):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


async def once(
    ctx: Ctx,
    secret_response: bool,
    key: str,
    raw: bytes,
    run: Callable[[], Awaitable[web.StreamResponse]],
) -> web.StreamResponse:
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise ApiError(400, "Bad Idempotency-Key", "use 1 to 255 printable characters, e.g. a UUID")
    db = ctx.services.db
    req_hash = _request_hash(ctx.request, raw)
    stale_after = ctx.services.settings.pending_idempotency_seconds
    row_id = await _reserve(ctx, key, req_hash, stale_after)
    if isinstance(row_id, web.StreamResponse):
        return row_id
    try:
        response = await run()
    except ApiError as exc:
        response = problem_response(exc.problem, exc.headers.items())
    except BaseException:
        async with db.write() as tx:
            await tx.conn.execute(delete(keys).where(keys.c.id == row_id))
        raise
    status = response.status
    async with db.write() as tx:
        if status >= 500 or status in (409, 429):
            await tx.conn.execute(delete(keys).where(keys.c.id == row_id))
        else:
            body = None if secret_response else getattr(response, "body", None)
            await tx.conn.execute(
                update(keys)
                .where(keys.c.id == row_id)
                .values(
                    state="done",
                    status_code=status,
                    content_type=response.content_type,
                    response_body=bytes(body) if isinstance(body, bytes | bytearray) else None,
                )
            )
    return response


async def _reserve(
    ctx: Ctx, key: str, req_hash: str, stale_after: float
) -> int | web.StreamResponse:
    """Insert the pending row, or answer from the existing one."""
    db, me, request = ctx.services.db, ctx.me, ctx.request
    try:
        async with db.write() as tx:
            result = await tx.conn.execute(
                keys.insert()
                .values(
                    token_id=me.token_id,
                    key=key,
                    method=request.method,
                    path=request.path_qs[:2000],
                    request_hash=req_hash,
                    state="pending",
                )
                .returning(keys.c.id)
            )
            return int(result.scalar_one())
    except IntegrityError:
        pass
    async with db.write() as tx:
        row = (
            await tx.conn.execute(
                select(keys, (keys.c.created_at < db_now(-stale_after)).label("stale")).where(
                    keys.c.token_id == me.token_id, keys.c.key == key
                )
            )
        ).first()
        if row is None:  # deleted meanwhile (the first attempt failed): just try again
            raise ApiError(
                409,
                "Retry",
                "the first request with this key failed; retry it",
                headers={"Retry-After": "1"},
            )
        if row.request_hash != req_hash:
            raise ApiError(
                422,
                "Idempotency-Key reused",
                "this Idempotency-Key was already used for a different request; use a new key",
            )
        if row.state == "pending":
            if not row.stale:
                raise ApiError(
                    409,
                    "Request in progress",
                    "a request with this Idempotency-Key is still being processed; retry later",
                    headers={"Retry-After": "1"},
                )
            await tx.conn.execute(
                update(keys).where(keys.c.id == row.id).values(created_at=db_now())
            )
            return int(row.id)
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
