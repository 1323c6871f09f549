"""The protocol gates: what happens to one decoded message, given what is known of its
connection. Pure functions over a small :class:`Session` (no pygls, no sockets), so that every
rule a client can run into is a plain function call in a unit test.

A message is checked for JSON-RPC shape (an object, a valid id, ``jsonrpc: "2.0"``, a method or
a response) and for the LSP lifecycle (initialize first and once, nothing but ``exit`` after
``shutdown``), a known method, an id not already in use, params that are an object or array,
and a request/notification sent as such, *before* pygls sees it: pygls would raise, log a
traceback, or answer nothing useful, where the client deserves a precise error. The disposition is
one of :data:`Disposition`; :mod:`locusd.server.connection` acts on it.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any, TypeGuard

from locusd.protocol import METHODS
from locusd.server.framing import RpcCode

MsgId = int | str


class RpcError(Exception):
    """A JSON-RPC error answer raised by a gate or a handler: ``code``, ``message`` and the
    ``data`` object (``{kind, retryable, ...}``)."""

    def __init__(self, code: int, message: str, data: dict[str, Any]) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def rpc_error(code: int, message: str, kind: str | None = None) -> RpcError:
    """An error with our ``{kind, retryable}`` data (the kind named after the code)."""
    if kind is None:
        kind = RpcCode(code).name.lower() if code in RpcCode._value2member_map_ else "error"
    return RpcError(code, message, {"kind": kind, "retryable": False})


def valid_id(value: Any) -> TypeGuard[MsgId]:
    """A JSON-RPC id the daemon accepts: a string or an integer (not a bool, not null)."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short(value: Any) -> str:
    """A value quoted in an error message, clipped."""
    return clip(repr(value), 60)


# --- the state and the dispositions ----------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """What the gates need to know of one connection at the moment a message arrives."""

    #: ``initialize`` was answered with the Locus handshake.
    initialized: bool
    #: The client sent ``shutdown``.
    shut_down: bool
    #: Ids of the client's requests still being handled.
    in_progress: Container[MsgId]
    #: Methods the connection has a handler for (LSP built-ins and the Locus methods).
    known: Container[str]
    #: For a method with an LSP message type: True if it is a request (it needs an id), False
    #: if a notification; None where either is fine (the Locus methods, unknown ones).
    expects_id: Callable[[str], bool | None]


@dataclass(frozen=True)
class Refuse:
    """Answer this error (``id`` None: the message's id is unknown or invalid)."""

    id: MsgId | None
    code: int
    message: str


@dataclass(frozen=True)
class Drop:
    """Ignore the message (a notification nobody can be told about); ``reason`` is logged."""

    reason: str


@dataclass(frozen=True)
class Deliver:
    """Hand the request (``id`` set) or notification to pygls."""

    method: str
    id: MsgId | None
    data: dict[str, Any]


@dataclass(frozen=True)
class Answer:
    """The client's response to a request the daemon sent."""

    id: MsgId
    data: dict[str, Any]


@dataclass(frozen=True)
class Cancel:
    """``$/cancelRequest`` for a request in progress."""

    id: MsgId


@dataclass(frozen=True)
class Exit:
    """``exit``: close this connection (only)."""


Disposition = Refuse | Drop | Deliver | Answer | Cancel | Exit


# --- the gates -------------------------------------------------------------------------------


def gate(data: Any, session: Session) -> Disposition:
    """The disposition of one decoded message body."""
    if not isinstance(data, dict):
        what = (
            "a batch (JSON array) is not supported: send one message per frame"
            if isinstance(data, list)
            else f"expected a JSON-RPC message object, got {type(data).__name__}"
        )
        return Refuse(None, RpcCode.INVALID_REQUEST, what)
    has_id = "id" in data
    msg_id = data.get("id")
    if has_id and not valid_id(msg_id):
        return Refuse(
            None, RpcCode.INVALID_REQUEST, f"id must be a string or an integer, not {short(msg_id)}"
        )
    reply_id = msg_id if has_id else None
    if data.get("jsonrpc") != "2.0":
        return Refuse(reply_id, RpcCode.INVALID_REQUEST, 'jsonrpc must be "2.0"')
    method = data.get("method")
    if "method" not in data:
        if has_id and ("result" in data or "error" in data):
            assert msg_id is not None
            return Answer(msg_id, data)
        return Refuse(
            reply_id,
            RpcCode.INVALID_REQUEST,
            'a message needs "method" (a request or notification) or, with an "id",'
            ' "result" or "error" (a response)',
        )
    if not isinstance(method, str) or not method:
        return Refuse(reply_id, RpcCode.INVALID_REQUEST, "method must be a non-empty string")
    if has_id:
        assert msg_id is not None
        return request_gate(msg_id, method, data, session)
    return notification_gate(method, data, session)


def request_gate(msg_id: MsgId, method: str, data: dict[str, Any], session: Session) -> Disposition:
    """A message with a method and a valid id."""
    if session.shut_down:
        return Refuse(
            msg_id,
            RpcCode.INVALID_REQUEST,
            f"{method}: the client sent shutdown; only exit is accepted now",
        )
    if not session.initialized and method != "initialize":
        return Refuse(
            msg_id,
            RpcCode.SERVER_NOT_INITIALIZED,
            f"{method} before initialize: send initialize first",
        )
    if session.initialized and method == "initialize":
        return Refuse(
            msg_id, RpcCode.INVALID_REQUEST, "initialize was already sent on this connection"
        )
    if method not in session.known:
        hint = " (see docs/protocol.md)" if method.startswith("locus/") else ""
        return Refuse(msg_id, RpcCode.METHOD_NOT_FOUND, f"unknown method {method!r}{hint}")
    if msg_id in session.in_progress:
        return Refuse(
            msg_id,
            RpcCode.INVALID_REQUEST,
            f"id {msg_id!r} is already used by a request in progress",
        )
    params = data.get("params")
    if params is not None and not isinstance(params, dict | list):
        return Refuse(msg_id, RpcCode.INVALID_PARAMS, f"{method}: params must be an object")
    return kind_gate(method, msg_id, data, session)


def notification_gate(method: str, data: dict[str, Any], session: Session) -> Disposition:
    """A message with a method and no id. A notification gets no answer, so every refusal is
    a :class:`Drop`."""
    if method == "exit":
        return Exit()
    if method == "$/cancelRequest":
        params = data.get("params")
        target = params.get("id") if isinstance(params, dict) else None
        if valid_id(target) and target in session.in_progress:
            return Cancel(target)
        return Drop(f"$/cancelRequest for no request in progress ({short(target)})")
    if (
        not session.initialized
        or session.shut_down
        or method in METHODS  # requests only: a method run without an answer helps nobody
        or method not in session.known
    ):
        return Drop(f"dropped notification {method}")
    return kind_gate(method, None, data, session)


def kind_gate(
    method: str, msg_id: MsgId | None, data: dict[str, Any], session: Session
) -> Disposition:
    """An LSP request sent without an id, or a notification with one, would reach the wrong
    kind of handler."""
    expects_id = session.expects_id(method)
    if expects_id is None or expects_id == (msg_id is not None):
        return Deliver(method, msg_id, data)
    if msg_id is not None:
        return Refuse(
            msg_id, RpcCode.INVALID_REQUEST, f"{method} is a notification: send it without an id"
        )
    return Drop(f"dropped {method} sent as a notification")
