"""Bad input never takes the daemon down (docs/protocol.md: every error names what was
wrong): random JSON-RPC messages, random bodies and random header bytes, each followed by a
check that the daemon still answers a valid request."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from locusd.protocol import METHODS
from tests.locusd.server.support import RawClient, ThreadedDaemon, frame
from tests.support.shortpath import short_tmp

pytestmark = pytest.mark.timeout(120)
FUZZ = settings(
    max_examples=int(os.environ.get("LOCUS_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=False,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
# every Locus method, some LSP ones, random names; not shutdown/exit (they end the session)
methods = st.sampled_from(
    [
        *METHODS,
        "initialize",
        "initialized",
        "$/cancelRequest",
        "$/setTrace",
        "textDocument/didOpen",
        "workspace/executeCommand",
        "window/workDoneProgress/cancel",
        "locus/approval",
    ]
) | st.text(max_size=30).filter(lambda m: m not in ("shutdown", "exit"))
ids = st.none() | st.integers() | st.text(max_size=10) | st.floats() | st.booleans()
fields = {
    "jsonrpc": st.sampled_from(["2.0", "2.0", "2.0", "1.0", 2]),
    "id": ids,
    "method": methods | json_values,
    "params": json_values,
    "result": json_values,
    "error": json_values,
}


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    chosen = draw(st.sets(st.sampled_from(sorted(fields)), max_size=len(fields)))
    message = {name: draw(fields[name]) for name in sorted(chosen)}
    if draw(st.booleans()):  # mostly well-formed envelopes, so the handlers are reached
        message["jsonrpc"] = "2.0"
        message["method"] = draw(methods)
        if draw(st.booleans()):
            message["params"] = draw(_locus_params())
    return message


def _locus_params() -> st.SearchStrategy[dict[str, Any]]:
    keys = st.sampled_from(["runId", "repo", "task", "after", "projectId", "title", "agents"])
    return st.dictionaries(keys, json_values, max_size=4)


@pytest.fixture(scope="module")
def daemon() -> Iterator[ThreadedDaemon]:
    with short_tmp() as tmp, ThreadedDaemon(tmp / "run" / "locusd.sock") as running:
        assert running.core is not None
        running.loop.call_soon_threadsafe(running.core.slow_release.set)  # no parked handlers
        yield running


def _check_well_formed(message: dict[str, Any]) -> None:
    assert message.get("jsonrpc") == "2.0", message
    if "method" in message:  # a notification or request from the daemon
        assert isinstance(message["method"], str)
        return
    assert ("result" in message) != ("error" in message), message
    if "error" in message:
        error = message["error"]
        assert isinstance(error["code"], int) and not isinstance(error["code"], bool)
        assert isinstance(error["message"], str) and error["message"], message
        assert isinstance(error["data"]["kind"], str) and error["data"]["kind"], message
        assert isinstance(error["data"]["retryable"], bool), message


def _probe(raw: RawClient) -> list[dict[str, Any]]:
    """Send a valid request; return every message up to and including its answer."""
    raw.send({"jsonrpc": "2.0", "id": "probe", "method": "locus/daemon/status"})
    seen: list[dict[str, Any]] = []
    while True:
        message = raw.recv()
        assert message is not None, f"connection closed before the probe was answered: {seen}"
        _check_well_formed(message)
        seen.append(message)
        if message.get("id") == "probe" and "method" not in message:
            assert "result" in message, message
            return seen


def _still_serving(daemon: ThreadedDaemon) -> None:
    with RawClient(daemon.path) as raw:
        raw.initialize()
        assert "result" in raw.request("locus/daemon/status", {})


@FUZZ
@given(message=messages())
def test_fuzzed_messages(daemon: ThreadedDaemon, message: dict[str, Any]) -> None:
    with RawClient(daemon.path) as raw:
        raw.initialize()
        raw.send(message)
        seen = _probe(raw)
    msg_id = message.get("id")
    is_request = "method" in message and isinstance(msg_id, str | int) and msg_id != "probe"
    if is_request and not isinstance(msg_id, bool) and message.get("jsonrpc") == "2.0":
        # a request is answered, with its id (unless it is still running, e.g. an approval)
        answers = [m for m in seen if m.get("id") == msg_id and "method" not in m]
        slow = message.get("method") == "locus/runs/start"
        assert answers or slow, (message, seen)


@FUZZ
@given(body=st.binary(max_size=200) | json_values.map(lambda v: repr(v).encode()))
def test_fuzzed_bodies(daemon: ThreadedDaemon, body: bytes) -> None:
    with RawClient(daemon.path) as raw:
        raw.initialize()
        raw.send_bytes(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        _probe(raw)


header_lines = st.one_of(
    st.binary(max_size=40),
    st.builds(
        lambda name, value: name + b":" + value,
        st.sampled_from([b"Content-Length", b"content-length", b"Content-Type", b"X"]),
        st.binary(max_size=24),
    ),
)


@FUZZ
@given(
    lines=st.lists(header_lines, max_size=5),
    separator=st.sampled_from([b"\r\n", b"\n", b"\r", b""]),
)
def test_fuzzed_headers(daemon: ThreadedDaemon, lines: list[bytes], separator: bytes) -> None:
    with RawClient(daemon.path) as raw:
        raw.initialize()
        # the daemon may close the connection at the first bad byte, before we are done
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, OSError):
            raw.send_bytes(separator.join(lines) + separator)
            raw.send_bytes(
                frame({"jsonrpc": "2.0", "id": "probe", "method": "locus/daemon/status"})
            )
            raw.sock.shutdown(socket.SHUT_WR)  # a length that swallows the probe hits the EOF
        while (message := raw.recv()) is not None:
            _check_well_formed(message)
    _still_serving(daemon)
