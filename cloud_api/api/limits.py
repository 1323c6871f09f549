"""Connection-level limits: how long a request body may take, and how large headers may be.

aiohttp bounds a body's size (``client_max_size``) but not how long it takes to arrive, so a
client trickling one byte every few seconds held a handler (and a descriptor) for minutes
without authenticating. Header sizes are aiohttp's parser limits, stated here so that they are
documented and tested (docs/operations.md); a header that is still arriving has no deadline in
aiohttp, which is one reason to put a reverse proxy in front.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from cloud_api.api.errors import problem_response
from cloud_api.schemas.common import Problem
from cloud_api.services import SETTINGS

#: The longest request line, header line and header count accepted (else a 400).
MAX_LINE_BYTES = 8190
MAX_FIELD_BYTES = 8190
MAX_HEADERS = 64
#: An idle keep-alive connection is closed after this (a proxy's should be shorter).
KEEPALIVE_SECONDS = 75.0

HANDLER_ARGS: dict[str, Any] = {
    "max_line_size": MAX_LINE_BYTES,
    "max_field_size": MAX_FIELD_BYTES,
    "max_headers": MAX_HEADERS,
    "keepalive_timeout": KEEPALIVE_SECONDS,
}


def _late(seconds: float) -> web.Response:
    response = problem_response(
        Problem(
            type="urn:locus:problem:408",
            title="Request Timeout",
            status=408,
            detail=f"the request body did not arrive within {seconds:g} s: "
            "send it at once, or a smaller one",
        )
    )
    response.force_close()  # it is mid-request
    return response


@web.middleware
async def body_deadline(request: web.Request, handler: Any) -> web.StreamResponse:
    """Reads the whole body up front, within ``body_read_seconds``; later reads use the copy
    aiohttp keeps. A late body is a 408 and the connection is closed. A multipart body (the
    dashboard's forms) is read by the handler from the stream itself — aiohttp's form parser
    does not use the copy — so for those the deadline covers the handler, which is quick."""
    if not request.body_exists:
        result: web.StreamResponse = await handler(request)
        return result
    seconds = request.app[SETTINGS].body_read_seconds
    if request.content_type == "multipart/form-data":
        try:
            async with asyncio.timeout(seconds):
                result = await handler(request)
        except TimeoutError:
            return _late(seconds)
        return result
    try:
        async with asyncio.timeout(seconds):
            await request.read()
    except TimeoutError:
        return _late(seconds)
    result = await handler(request)
    return result
