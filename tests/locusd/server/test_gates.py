"""The protocol gates as plain functions: each rule a message must pass, with the exact answer,
and properties over random messages and connection states (hypothesis). The same gates run
behind the real socket in test_server.py and test_fuzz.py."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from locusd.protocol import METHODS
from locusd.server.framing import RpcCode
from locusd.server.gates import (
    Answer,
    Cancel,
    Deliver,
    Disposition,
    Drop,
    Exit,
    MsgId,
    Refuse,
    Session,
    gate,
    valid_id,
)
from tests.locusd.server.test_fuzz import json_values, messages

#: Whether each LSP method is a request (needs an id), as pygls's message types say.
LSP = {
    "initialize": True,
    "shutdown": True,
    "textDocument/hover": True,
    "initialized": False,
    "exit": False,
    "$/cancelRequest": False,
    "$/setTrace": False,
}
KNOWN = {*METHODS, *LSP}


def session(
    *, initialized: bool = True, shut_down: bool = False, in_progress: tuple[MsgId, ...] = ()
) -> Session:
    return Session(
        initialized=initialized,
        shut_down=shut_down,
        in_progress=set(in_progress),
        known=KNOWN,
        expects_id=LSP.get,
    )


def request(method: Any, msg_id: Any = 1, **extra: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "method": method, **extra}


def notification(method: Any, **extra: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, **extra}


INVALID_REQUEST = RpcCode.INVALID_REQUEST

EXAMPLES: list[tuple[str, Any, Session, Disposition]] = [
    (
        "batch",
        [request("locus/runs/list")],
        session(),
        Refuse(
            None,
            INVALID_REQUEST,
            "a batch (JSON array) is not supported: send one message per frame",
        ),
    ),
    (
        "not an object",
        3,
        session(),
        Refuse(None, INVALID_REQUEST, "expected a JSON-RPC message object, got int"),
    ),
    (
        "id of the wrong type",
        request("locus/runs/list", msg_id=True),
        session(),
        Refuse(None, INVALID_REQUEST, "id must be a string or an integer, not True"),
    ),
    (
        "not JSON-RPC 2.0",
        {"id": 4, "method": "locus/runs/list"},
        session(),
        Refuse(4, INVALID_REQUEST, 'jsonrpc must be "2.0"'),
    ),
    (
        "a response to the daemon's request",
        {"jsonrpc": "2.0", "id": "locusd-1", "result": {"decision": "allow"}},
        session(),
        Answer("locusd-1", {"jsonrpc": "2.0", "id": "locusd-1", "result": {"decision": "allow"}}),
    ),
    (
        "neither a request nor a response",
        {"jsonrpc": "2.0", "id": 4},
        session(),
        Refuse(
            4,
            INVALID_REQUEST,
            'a message needs "method" (a request or notification) or, with an "id", "result"'
            ' or "error" (a response)',
        ),
    ),
    (
        "empty method",
        request(""),
        session(),
        Refuse(1, INVALID_REQUEST, "method must be a non-empty string"),
    ),
    (
        "after shutdown",
        request("locus/runs/list"),
        session(shut_down=True),
        Refuse(
            1,
            INVALID_REQUEST,
            "locus/runs/list: the client sent shutdown; only exit is accepted now",
        ),
    ),
    (
        "before initialize",
        request("locus/runs/list"),
        session(initialized=False),
        Refuse(
            1,
            RpcCode.SERVER_NOT_INITIALIZED,
            "locus/runs/list before initialize: send initialize first",
        ),
    ),
    (
        "initialize twice",
        request("initialize"),
        session(),
        Refuse(1, INVALID_REQUEST, "initialize was already sent on this connection"),
    ),
    (
        "unknown Locus method",
        request("locus/nope"),
        session(),
        Refuse(1, RpcCode.METHOD_NOT_FOUND, "unknown method 'locus/nope' (see docs/protocol.md)"),
    ),
    (
        "unknown LSP method",
        request("textDocument/rename"),
        session(),
        Refuse(1, RpcCode.METHOD_NOT_FOUND, "unknown method 'textDocument/rename'"),
    ),
    (
        "id in use",
        request("locus/runs/list", msg_id="a"),
        session(in_progress=("a",)),
        Refuse("a", INVALID_REQUEST, "id 'a' is already used by a request in progress"),
    ),
    (
        "params not an object",
        request("locus/runs/list", params=3),
        session(),
        Refuse(1, RpcCode.INVALID_PARAMS, "locus/runs/list: params must be an object"),
    ),
    (
        "a notification sent as a request",
        request("initialized", params={}),
        session(),
        Refuse(1, INVALID_REQUEST, "initialized is a notification: send it without an id"),
    ),
    (
        "a request sent as a notification",
        notification("shutdown"),
        session(),
        Drop("dropped shutdown sent as a notification"),
    ),
    ("exit, whenever", notification("exit"), session(initialized=False), Exit()),
    (
        "cancel a request in progress",
        notification("$/cancelRequest", params={"id": 7}),
        session(in_progress=(7,)),
        Cancel(7),
    ),
    (
        "cancel what is not in progress",
        notification("$/cancelRequest", params={"id": 8}),
        session(in_progress=(7,)),
        Drop("$/cancelRequest for no request in progress (8)"),
    ),
    (
        "a Locus method without an id",
        notification("locus/runs/list"),
        session(),
        Drop("dropped notification locus/runs/list"),
    ),
    (
        "a notification before initialize",
        notification("initialized"),
        session(initialized=False),
        Drop("dropped notification initialized"),
    ),
    (
        "a notification after shutdown",
        notification("$/setTrace", params={"value": "off"}),
        session(shut_down=True),
        Drop("dropped notification $/setTrace"),
    ),
    (
        "a request that passes",
        request("locus/runs/list", params={}),
        session(),
        Deliver("locus/runs/list", 1, request("locus/runs/list", params={})),
    ),
    (
        "initialize that passes",
        request("initialize", msg_id="i"),
        session(initialized=False),
        Deliver("initialize", "i", request("initialize", msg_id="i")),
    ),
    (
        "a notification that passes",
        notification("$/setTrace", params={"value": "off"}),
        session(),
        Deliver("$/setTrace", None, notification("$/setTrace", params={"value": "off"})),
    ),
]


@pytest.mark.parametrize(
    ("data", "state", "expected"), [case[1:] for case in EXAMPLES], ids=[c[0] for c in EXAMPLES]
)
def test_each_rule(data: Any, state: Session, expected: Disposition) -> None:
    assert gate(data, state) == expected


sessions = st.builds(
    session,
    initialized=st.booleans(),
    shut_down=st.booleans(),
    in_progress=st.lists(st.integers(0, 3) | st.sampled_from(["a", "b"]), max_size=3).map(tuple),
)


@given(messages() | json_values, sessions)
def test_every_message_gets_a_disposition_and_errors_carry_its_id(
    data: Any, state: Session
) -> None:
    """Total (never raises), and an error answer quotes the message's id when it has a valid
    one (else null), so the client can match it."""
    disposition = gate(data, state)
    if isinstance(disposition, Refuse):
        has_id = isinstance(data, dict) and valid_id(data.get("id"))
        assert disposition.id == (data["id"] if has_id else None)
        assert disposition.message


@given(messages(), sessions)
def test_only_what_the_lifecycle_allows_reaches_a_handler(data: Any, state: Session) -> None:
    disposition = gate(data, state)
    if isinstance(disposition, Deliver):
        assert not state.shut_down
        assert state.initialized != (disposition.method == "initialize")
        assert disposition.method in KNOWN
        assert disposition.id not in state.in_progress
        if disposition.id is None:  # the Locus methods are requests only
            assert disposition.method not in METHODS
        expects_id = LSP.get(disposition.method)
        assert expects_id is None or expects_id == (disposition.id is not None)
