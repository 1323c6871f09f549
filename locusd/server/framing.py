"""LSP base-protocol framing (``Content-Length`` headers around JSON bodies), done here rather
than by pygls.

pygls 2.1.1's reader wants exactly ``Content-Length: N\\r\\n``: a header in another case, a
wrong length or a malformed line silently loses that message *and the next one*, a huge length
raises OverflowError/MemoryError, and invalid JSON gets no answer at all. A daemon shared by
every editor and CLI of the user cannot afford any of that, so this reader is strict about what
it must be strict about (a length that is a plain decimal within :data:`MAX_BODY`, a blank line
ending the headers) and lenient about the rest (header names in any case, ``Content-Type``
optional, unknown headers ignored), and it says what was wrong. The writer counts the length
in bytes of the UTF-8 body, which is what every client (pygls, vscode-jsonrpc, Neovim) expects.

This module has no pygls dependency so that the CLI and the docs generator can share it.
"""

from __future__ import annotations

import asyncio
import json
import re
from enum import IntEnum
from typing import Any

#: The largest body accepted (and sent): a diff of a big change fits, a runaway client does not.
MAX_BODY = 16 * 1024 * 1024
#: The longest header line and the most header lines in one frame.
MAX_HEADER_LINE = 8 * 1024
MAX_HEADERS = 32
#: JSON deeper than this is refused before it can exhaust the parser's recursion.
MAX_DEPTH = 256

_LENGTH = re.compile(r"[0-9]{1,10}")
_CHARSET = re.compile(r"charset\s*=\s*\"?([A-Za-z0-9_-]+)\"?", re.IGNORECASE)


class RpcCode(IntEnum):
    """The JSON-RPC and LSP error codes the server itself answers with (the Locus codes of the
    handlers are :class:`locusd.protocol.errors.Code`)."""

    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    SERVER_NOT_INITIALIZED = -32002
    REQUEST_CANCELLED = -32800


class FrameError(Exception):
    """The byte stream is not a valid frame: the connection cannot be resynchronised, so the
    server answers once (id null, :attr:`RpcCode.PARSE_ERROR`) and closes it."""


class BodyError(Exception):
    """The frame was fine but its body is not JSON: answered with -32700, the connection goes
    on (the next frame starts at a known offset)."""


async def read_frame(reader: asyncio.StreamReader, max_body: int = MAX_BODY) -> bytes | None:
    """The next frame's body, or None at a clean end of stream (EOF before a header, or in the
    middle of a frame: the client went away and there is nobody to answer).

    Raises :class:`FrameError` for a header that cannot be trusted to find the next frame.
    """
    length: int | None = None
    count = 0
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError:
            raise FrameError(f"a header line is longer than {MAX_HEADER_LINE} bytes") from None
        if len(line) > MAX_HEADER_LINE:
            raise FrameError(f"a header line is longer than {MAX_HEADER_LINE} bytes")
        text = line.rstrip(b"\r\n")
        if not text:
            if length is None:
                if count == 0:
                    raise FrameError(
                        "a frame starts with a blank line: expected 'Content-Length: N' first"
                    )
                raise FrameError("the headers have no Content-Length: send 'Content-Length: N'")
            break
        count += 1
        if count > MAX_HEADERS:
            raise FrameError(f"more than {MAX_HEADERS} header lines in one frame")
        length = _header(text, length, max_body)
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        return None


def _header(text: bytes, length: int | None, max_body: int) -> int | None:
    """Parse one header line; returns the Content-Length so far."""
    try:
        decoded = text.decode("ascii")
    except UnicodeDecodeError:
        raise FrameError(f"a header line is not ASCII: {text[:80]!r}") from None
    name, sep, value = decoded.partition(":")
    if not sep or not name.strip():
        raise FrameError(f"malformed header line {decoded[:80]!r}: expected 'Name: value'")
    key, value = name.strip().lower(), value.strip()
    if key == "content-length":
        if not _LENGTH.fullmatch(value):
            raise FrameError(
                f"Content-Length {value[:40]!r} is not a non-negative decimal number of bytes"
            )
        new = int(value)
        if new > max_body:
            raise FrameError(f"Content-Length {new} exceeds the limit of {max_body} bytes")
        if length is not None and length != new:
            raise FrameError(f"two different Content-Length headers ({length} and {new})")
        return new
    if key == "content-type":
        charset = _CHARSET.search(value)
        if charset and charset.group(1).lower().replace("_", "-") not in ("utf-8", "utf8"):
            raise FrameError(f"charset {charset.group(1)!r} is not supported: send UTF-8")
    return length


def parse_body(body: bytes) -> Any:
    """The JSON value of a body; :class:`BodyError` naming the problem otherwise."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(f"the body is not valid UTF-8 (at byte {exc.start})") from None
    if not text.strip():
        raise BodyError("the body is empty: expected a JSON-RPC message object")
    if _too_deep(text):
        raise BodyError(f"the JSON is nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise BodyError(
            f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise BodyError(f"invalid JSON: {exc}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (use null or a string)")


def _too_deep(text: str) -> bool:
    """A cheap upper bound on the nesting depth (brackets inside strings count too, which only
    errs on the side of refusing absurd input)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif char in "]}":
            depth -= 1
    return False


def encode_frame(message: Any, default: Any = None) -> bytes:
    """One frame: the body is ASCII-only JSON (``ensure_ascii``: any text, even a lone
    surrogate, survives), so its length in bytes is unambiguous for every client."""
    body = json.dumps(message, default=default, separators=(",", ":"), allow_nan=False).encode(
        "ascii"
    )
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def error_message(
    msg_id: int | str | None, code: int, message: str, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A JSON-RPC error response; ``data`` defaults to ``{kind, retryable: false}`` with the
    kind derived from a standard code, so every error a client sees has the same shape."""
    if data is None:
        kind = RpcCode(code).name.lower() if code in RpcCode._value2member_map_ else "error"
        data = {"kind": kind, "retryable": False}
    return {
        "jsonrpc": "2.0",
        "id": msg_id,
        "error": {"code": int(code), "message": message, "data": data},
    }
