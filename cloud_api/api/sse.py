"""Server-sent events of the task timeline: replay from a cursor, then follow live.

A stream subscribes to its wake-up topic *before* reading, so no event slips between the read
and the wait; ``Last-Event-ID`` (or ``?after=``) resumes where a dropped connection stopped.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.sql import ColumnElement

from cloud_api.api.context import Ctx
from cloud_api.schemas.common import MAX_INT
from cloud_api.schemas.tasks import EventOut
from cloud_api.store.tables import task_events

BATCH = 500


def resume_point(ctx: Ctx, after: int) -> int:
    header = ctx.request.headers.get("Last-Event-ID", "")
    if header.isascii() and header.isdigit() and int(header) <= MAX_INT:
        return max(after, int(header))
    return after


async def stream_events(
    ctx: Ctx, where: ColumnElement[bool], topic: str, after: int
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(ctx.request)
    last = resume_point(ctx, after)
    keepalive = ctx.services.settings.sse_keepalive_seconds
    with ctx.services.hub.subscribe([topic]) as sub:
        try:
            await response.write(b"retry: 2000\n\n")
            while True:
                async with ctx.db.read() as conn:
                    rows = (
                        await conn.execute(
                            select(task_events)
                            .where(where, task_events.c.id > last)
                            .order_by(task_events.c.id)
                            .limit(BATCH)
                        )
                    ).all()
                for row in rows:
                    event = EventOut.model_validate(row._mapping)
                    frame = (
                        f"id: {event.id}\nevent: {event.kind}\ndata: {event.model_dump_json()}\n\n"
                    )
                    await response.write(frame.encode())
                    last = event.id
                if len(rows) == BATCH:
                    continue
                if not await sub.wait(keepalive):
                    await response.write(b": keepalive\n\n")
                if ctx.gone():
                    return response
        except ConnectionResetError:  # the client hung up mid-write: a normal end, not a 500
            return response
