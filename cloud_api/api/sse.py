"""Server-sent events of the task timeline: replay from a cursor, then follow live.

A stream subscribes to its wake-up topic *before* reading, so no event slips between the read
and the wait; ``Last-Event-ID`` (or ``?after=``) resumes where a dropped connection stopped.
Streams of one topic share their reads (:meth:`Hub.shared`): 500 open boards cost one query
per change, not 500; an idle stream sends keepalives without querying. A stream ends when its
caller loses access or it reaches its maximum lifetime (:mod:`cloud_api.api.stream_guard`).
A stream hands out events only up to the settled horizon (:mod:`cloud_api.store.horizon`), so
its cursor never passes an event that may still commit; while it holds events back it reads
again shortly instead of waiting for the next change.
"""

from __future__ import annotations

import functools
import time

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.sql import ColumnElement

from cloud_api.api.context import Ctx
from cloud_api.api.stream_guard import StreamGuard
from cloud_api.schemas.common import parse_id
from cloud_api.schemas.tasks import EventOut
from cloud_api.store.horizon import SETTLE_POLL, settled_rows
from cloud_api.store.tables import task_events

BATCH = 500


def resume_point(ctx: Ctx, after: int) -> int:
    header = parse_id(ctx.request.headers.get("Last-Event-ID", ""))
    return after if header is None else max(after, header)


async def stream_events(
    ctx: Ctx, where: ColumnElement[bool], topic: str, after: int
) -> web.StreamResponse:
    """The route's policy let the caller in; its check runs again while the stream is open."""
    recheck = ctx.granted().recheck
    assert recheck is not None, "streams are routes with a declared policy"
    guard = StreamGuard(ctx, recheck)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(ctx.request)
    last = resume_point(ctx, after)
    services = ctx.services
    keepalive = services.settings.sse_keepalive_seconds

    async def frames_after(cursor: int) -> tuple[list[tuple[int, bytes]], bool]:
        """The frames after ``cursor``, and whether some were held back (not yet settled)."""
        async with ctx.db.read() as conn:
            horizon = await ctx.db.horizon.settled(conn)
            rows = (
                await conn.execute(
                    select(task_events)
                    .where(where, task_events.c.id > cursor)
                    .order_by(task_events.c.id)
                    .limit(BATCH)
                )
            ).all()
        settled, held = settled_rows(rows, horizon)
        out = []
        for row in settled:
            event = EventOut.model_validate(row._mapping)
            frame = f"id: {event.id}\nevent: {event.kind}\ndata: {event.model_dump_json()}\n\n"
            out.append((event.id, frame.encode()))
        return out, held

    with services.hub.subscribe([topic]) as sub:
        try:
            await response.write(b"retry: 2000\n\n")
            quiet_until = time.monotonic() + keepalive
            while await guard.allowed():
                # Every stream of the topic at the same point shares one query (a change wakes
                # them all at once).
                frames, held = await services.hub.shared(
                    topic, (topic, last), functools.partial(frames_after, last)
                )
                for event_id, frame in frames:
                    await response.write(frame)
                    last = event_id
                if frames:
                    quiet_until = time.monotonic() + keepalive
                if len(frames) == BATCH:
                    continue
                # Idle: a keepalive now and then, and no query until something is published
                # (or, with events held back, until they may have settled).
                wake_by = time.monotonic() + SETTLE_POLL if held else quiet_until
                while not await sub.wait(guard.sleep_at_most(min(quiet_until, wake_by))):
                    if ctx.gone() or not await guard.allowed():
                        return response
                    if time.monotonic() >= quiet_until:
                        await response.write(b": keepalive\n\n")
                        quiet_until = time.monotonic() + keepalive
                    if held:
                        break
                if ctx.gone():
                    return response
            return response  # access lost, or the stream's lifetime is over: clients reconnect
        except ConnectionResetError:  # the client hung up mid-write: a normal end, not a 500
            return response
