"""The framing layer, alone and through a real daemon with a raw byte-level client: what
pygls's own reader gets wrong (docs/protocol.md, Framing) is answered and, where the stream
cannot be trusted any more, the connection is closed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from locusd.server.framing import (
    MAX_BODY,
    BodyError,
    FrameError,
    encode_frame,
    parse_body,
    read_frame,
)
from tests.locusd.server.support import RawClient, ThreadedDaemon, frame
from tests.support.shortpath import short_tmp

pytestmark = pytest.mark.timeout(60)


async def _read(data: bytes, max_body: int = MAX_BODY) -> bytes | None:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return await read_frame(reader, max_body)


@pytest.mark.parametrize(
    "head",
    [
        b"Content-Length: 2\r\n\r\n",
        b"content-length: 2\r\n\r\n",
        b"CONTENT-LENGTH:2\r\n\r\n",
        b"Content-Length: 2\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n",
        b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n",
        b"Content-Length: 2\r\nX-Whatever: 1\r\n\r\n",
        b"Content-Length: 2\n\n",  # bare LF, as some hand-written clients send
    ],
)
async def test_headers_accepted(head: bytes) -> None:
    assert await _read(head + b"{}") == b"{}"


@pytest.mark.parametrize(
    ("head", "says"),
    [
        (b"Content-Length: abc\r\n\r\n", "not a non-negative decimal"),
        (b"Content-Length: -1\r\n\r\n", "not a non-negative decimal"),
        (b"Content-Length: 99999999999999999999999\r\n\r\n", "not a non-negative decimal"),
        (b"Content-Length: %d\r\n\r\n" % (MAX_BODY + 1), "exceeds the limit"),
        (b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n", "two different"),
        (b"Content-Type: application/json\r\n\r\n", "no Content-Length"),
        (b"\r\n", "blank line"),
        (b"Content-Length 2\r\n\r\n", "malformed header"),
        (b"Content-Length: 2\r\nContent-Type: text/x; charset=latin-1\r\n\r\n", "latin-1"),
        (b"Content-Length: \xff\r\n\r\n", "not ASCII"),
        (b"X: " + b"a" * 10_000 + b"\r\n\r\n", "longer than"),
    ],
)
async def test_bad_headers_are_named(head: bytes, says: str) -> None:
    with pytest.raises(FrameError, match=says):
        await _read(head + b"{}")


async def test_end_of_stream() -> None:
    assert await _read(b"") is None
    assert await _read(b"Content-Length: 10\r\n\r\n{}") is None  # cut short: the client left


def test_body_errors() -> None:
    assert parse_body(b'{"a": 1}') == {"a": 1}
    for body, says in [
        (b"{", "invalid JSON"),
        (b"", "empty"),
        (b"\xff\xfe", "UTF-8"),
        (b"NaN", "NaN is not JSON"),
        (b"[" * 100_000, "nested deeper"),
    ]:
        with pytest.raises(BodyError, match=says):
            parse_body(body)


def test_encode_counts_bytes() -> None:
    message = {"text": "héllo ✓ \ud800"}  # non-ASCII and a lone surrogate
    encoded = encode_frame(message)
    head, _, body = encoded.partition(b"\r\n\r\n")
    assert head == b"Content-Length: %d" % len(body)
    assert json.loads(body) == message


# --- through a daemon ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def daemon() -> Iterator[ThreadedDaemon]:
    with short_tmp() as tmp, ThreadedDaemon(tmp / "run" / "locusd.sock") as running:
        yield running


def test_invalid_json_is_answered_and_the_connection_goes_on(daemon: ThreadedDaemon) -> None:
    with RawClient(daemon.path) as raw:
        raw.initialize()
        raw.send_bytes(b"Content-Length: 9\r\n\r\n{not json")
        reply = raw.recv()
        assert reply is not None and reply["id"] is None
        assert reply["error"]["code"] == -32700 and "invalid JSON" in reply["error"]["message"]
        assert raw.request("locus/daemon/status", {})["result"]["clients"] >= 1


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        ([1, 2], -32600, "batch"),
        ("hello", -32600, "message object"),
        ({"jsonrpc": "1.0", "id": 1, "method": "x"}, -32600, '"2.0"'),
        ({"jsonrpc": "2.0", "id": 1.5, "method": "x"}, -32600, "id must be"),
        ({"jsonrpc": "2.0", "id": 1}, -32600, '"method"'),
        ({"jsonrpc": "2.0", "id": 1, "method": 7}, -32600, "method must be"),
        ({"jsonrpc": "2.0", "id": 1, "method": "locus/runs/show", "params": 3}, -32602, "object"),
        ({"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": {}}, -32600, "already"),
    ],
)
def test_invalid_messages_are_answered(
    daemon: ThreadedDaemon, body: object, code: int, says: str
) -> None:
    with RawClient(daemon.path) as raw:
        raw.initialize()
        raw.send(body)
        reply = raw.recv()
        assert reply is not None and "error" in reply, reply
        assert reply["error"]["code"] == code and says in reply["error"]["message"]
        assert raw.request("locus/daemon/status", {})["result"]["version"] == "0.0-demo"


def test_quiet_cases_get_no_answer(daemon: ThreadedDaemon) -> None:
    """Notifications (known or not) and stray responses are not answered (JSON-RPC); the next
    request's answer is the next message."""
    with RawClient(daemon.path) as raw:
        raw.initialize()
        raw.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        raw.send({"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration", "params": {}})
        raw.send({"jsonrpc": "2.0", "method": "locus/runs/show", "params": {}})
        raw.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 12345}})
        raw.send({"jsonrpc": "2.0", "id": "locusd-99", "result": {}})
        raw.send({"jsonrpc": "2.0", "id": 5, "error": {"code": 1, "message": "x"}})
        raw.send({"jsonrpc": "2.0", "id": 6, "method": "locus/daemon/status"})
        reply = raw.recv()
        assert reply is not None and reply["id"] == 6 and "result" in reply


def test_initialize_params_checked_by_lsprotocol(daemon: ThreadedDaemon) -> None:
    with RawClient(daemon.path) as raw:
        reply = raw.request("initialize", {"processId": "x", "capabilities": {}})
        assert reply["error"]["code"] == -32602, reply
        assert "processId" in reply["error"]["message"]


def test_duplicate_request_id_in_flight(daemon: ThreadedDaemon) -> None:
    assert daemon.core is not None
    with RawClient(daemon.path) as raw:
        raw.initialize()
        raw.send(
            {"jsonrpc": "2.0", "id": 9, "method": "locus/runs/logs", "params": {"runId": "slow"}}
        )
        raw.send({"jsonrpc": "2.0", "id": 9, "method": "locus/daemon/status"})
        reply = raw.recv()
        assert reply is not None and reply["error"]["code"] == -32600
        assert "already used" in reply["error"]["message"]
        daemon.loop.call_soon_threadsafe(daemon.core.slow_release.set)
        assert "result" in raw.response(9)


@pytest.mark.parametrize(
    "head",
    [
        b"Content-Length: 1e3\r\n\r\n",
        b"Content-Length: %d\r\n\r\n" % (MAX_BODY + 1),
        b"Content-Length: 99999999999999999999999999999\r\n\r\n",
        b"\r\n",
        b"garbage\r\n\r\n",
    ],
)
def test_bad_frames_are_answered_then_closed(daemon: ThreadedDaemon, head: bytes) -> None:
    with RawClient(daemon.path) as raw:
        raw.initialize()
        raw.send_bytes(head + frame({"jsonrpc": "2.0", "id": 1, "method": "shutdown"}))
        reply = raw.recv()
        assert reply is not None and reply["id"] is None
        assert reply["error"]["code"] == -32700 and "bad frame" in reply["error"]["message"]
        assert reply["error"]["data"] == {"kind": "bad_frame", "retryable": False}
        assert raw.at_eof()
    with RawClient(daemon.path) as again:
        again.initialize()


def test_exit_before_initialize_closes(daemon: ThreadedDaemon) -> None:
    with RawClient(daemon.path) as raw:
        raw.send({"jsonrpc": "2.0", "method": "exit"})
        assert raw.at_eof()
