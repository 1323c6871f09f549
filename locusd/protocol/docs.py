"""Generate the protocol reference from the models: ``docs/protocol.md`` (for people) and
``docs/protocol.schema.json`` (JSON Schema of every message, for clients in other languages).

The models in :mod:`locusd.protocol` are the contract; these files are generated so they cannot
drift from it silently: ``python -m locusd.protocol.docs --check`` (run by the tests) fails when
the committed copies differ from what the models say. Regenerate with
``python -m locusd.protocol.docs``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from locusd.protocol.base import Wire
from locusd.protocol.errors import RETRYABLE, Code, ErrorData
from locusd.protocol.messages import ClientInfo, LocusCapabilities, LocusInitOptions
from locusd.protocol.methods import METHODS, NOTIFICATIONS, PROTOCOL_VERSION, SERVER_REQUESTS
from locusd.server.framing import MAX_BODY, MAX_DEPTH, MAX_HEADER_LINE, MAX_HEADERS, RpcCode
from locusd.server.paths import SOCKET_NAME

DOCS = Path(__file__).resolve().parents[2] / "docs"
MARKDOWN = "protocol.md"
SCHEMA = "protocol.schema.json"

#: What each Locus error code means; a new code without an entry fails generation (and so the
#: drift test) until it is described here.
CODE_DOCS: dict[Code, str] = {
    Code.AUTH_REQUIRED: "The daemon has no cloud session: run `locus login`.",
    Code.AUTH_EXPIRED: "The cloud session expired or was revoked: log in again.",
    Code.RUN_NOT_FOUND: "No run with that id.",
    Code.INVALID_RUN_STATE: "The run is not in a state that allows this (e.g. cancel a"
    " finished run).",
    Code.REVIEW_STALE: "The review changed since the client read it: fetch it again.",
    Code.UNSUPPORTED_PROTOCOL: "`initialize` without `initializationOptions.locus."
    "protocolVersion`, or with another major version. `data` also carries"
    " `daemonProtocolVersion` and `clientProtocolVersion`.",
    Code.TASK_NOT_FOUND: "No cloud task with that id (or not visible to this user).",
    Code.CLOUD_UNAVAILABLE: "The cloud could not be reached; writes are kept in the outbox"
    " and sent later.",
    Code.INVALID_ARGUMENT: "Params that validate but make no sense here (e.g. a path that is"
    " not a git checkout); the message says which.",
    Code.INVALID_TASK_STATE: "A task move its status does not allow (the cloud's state table):"
    " the message says from which status to which, and which moves apply to it.",
}

#: The JSON-RPC / LSP codes the server answers with itself, with their ``data.kind``.
RPC_DOCS: list[tuple[int, str, str]] = [
    (RpcCode.PARSE_ERROR, "parse_error", "The body is not JSON (the connection goes on)."),
    (
        RpcCode.PARSE_ERROR,
        "bad_frame",
        "The frame header is malformed or over the limit; sent with `id: null`, then the"
        " connection is closed (the stream cannot be resynchronised).",
    ),
    (
        RpcCode.INVALID_REQUEST,
        "invalid_request",
        "Not a JSON-RPC 2.0 message (a batch, no `method`, a bad `id`), a second `initialize`,"
        " a request after `shutdown`, a notification method sent with an id, or an id already"
        " in use by a request in progress.",
    ),
    (RpcCode.METHOD_NOT_FOUND, "method_not_found", "Unknown method, or not in this daemon."),
    (
        RpcCode.INVALID_PARAMS,
        "invalid_params",
        "Params do not match the method's model; the message names each field and shows the"
        " expected shape.",
    ),
    (
        RpcCode.INTERNAL_ERROR,
        "internal_error",
        "A bug in the daemon; the message is short, the daemon's log has the traceback. The"
        " daemon keeps serving.",
    ),
    (
        RpcCode.SERVER_NOT_INITIALIZED,
        "server_not_initialized",
        "A request before `initialize` (LSP).",
    ),
    (RpcCode.REQUEST_CANCELLED, "request_cancelled", "The client sent `$/cancelRequest`."),
]


# --- models --------------------------------------------------------------------------------


def _handshake_models() -> list[type[Wire]]:
    return [LocusInitOptions, ClientInfo, LocusCapabilities, ErrorData]


def all_models() -> list[type[Wire]]:
    """Every model of the protocol, once, in a stable order."""
    seen: dict[str, type[Wire]] = {}
    candidates: list[type[Wire]] = [*_handshake_models()]
    for method in METHODS.values():
        candidates += [method.params, method.result]
    for params, _doc in NOTIFICATIONS.values():
        candidates.append(params)
    for params, result, _doc in SERVER_REQUESTS.values():
        candidates += [params, result]
    for model in candidates:
        seen.setdefault(model.__name__, model)
    return list(seen.values())


def json_schema() -> dict[str, Any]:
    """One JSON Schema document: every model under ``$defs``, and the method tables pointing
    at them."""
    _, top = models_json_schema(
        [(model, "serialization") for model in all_models()],
        ref_template="#/$defs/{model}",
        by_alias=True,
    )
    defs = top.get("$defs", {})

    def ref(model: type[Wire]) -> dict[str, str]:
        return {"$ref": f"#/$defs/{model.__name__}"}

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Locus daemon protocol",
        "description": "JSON-RPC 2.0 over LSP framing on the locusd Unix socket; generated from"
        " locusd/protocol by `python -m locusd.protocol.docs`.",
        "protocolVersion": PROTOCOL_VERSION,
        "initializationOptions": {"locus": ref(LocusInitOptions)},
        "capabilities": {"experimental": {"locus": ref(LocusCapabilities)}},
        "methods": {
            name: {"description": m.doc, "params": ref(m.params), "result": ref(m.result)}
            for name, m in METHODS.items()
        },
        "notifications": {
            name: {"description": doc, "params": ref(params)}
            for name, (params, doc) in NOTIFICATIONS.items()
        },
        "serverRequests": {
            name: {"description": doc, "params": ref(params), "result": ref(result)}
            for name, (params, result, doc) in SERVER_REQUESTS.items()
        },
        "errors": {
            str(int(code)): {
                "kind": code.name.lower(),
                "retryable": code in RETRYABLE,
                "description": _code_doc(code),
            }
            for code in Code
        },
        "errorData": ref(ErrorData),
        "$defs": defs,
    }


def _code_doc(code: Code) -> str:
    try:
        return CODE_DOCS[code]
    except KeyError:
        raise KeyError(f"describe {code!r} in CODE_DOCS (locusd/protocol/docs.py)") from None


# --- markdown ------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _anchor(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to dashes."""
    kept = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        name = str(prop["$ref"]).rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(name)})"
    if "enum" in prop:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "anyOf" in prop:
        return " \\| ".join(_type(p) for p in prop["anyOf"])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"array of {_type(prop.get('items', {}))}"
    if kind == "object" and "additionalProperties" in prop:
        extra = prop["additionalProperties"]
        return f"object of {_type(extra)}" if isinstance(extra, dict) else "object"
    return str(kind)


def _constraints(prop: dict[str, Any]) -> list[str]:
    notes = []
    for key, text in (
        ("minimum", "≥ {}"),
        ("maximum", "≤ {}"),
        ("exclusiveMinimum", "> {}"),
        ("exclusiveMaximum", "< {}"),
        ("minLength", "at least {} characters"),
        ("maxLength", "at most {} characters"),
    ):
        if key in prop:
            notes.append(text.format(prop[key]))
    if prop.get("default") is not None:
        notes.append(f"default `{json.dumps(prop['default'], ensure_ascii=False)}`")
    return notes


def _nullable(prop: dict[str, Any]) -> bool:
    return any(p.get("type") == "null" for p in prop.get("anyOf", ()))


def _table(schema: dict[str, Any], *, result: bool) -> list[str]:
    properties: dict[str, dict[str, Any]] = schema.get("properties", {})
    if not properties:
        return ["No fields: send `{}` (or omit `params`)." if not result else "`{}`"]
    required = set(schema.get("required", ()))
    head = "always sent" if result else "required"
    lines = [f"| field | type | {head} | description |", "| --- | --- | --- | --- |"]
    for name, prop in properties.items():
        if result:
            flag = "no (omitted when null)" if _nullable(prop) else "yes"
        else:
            flag = "yes" if name in required else "no"
        description = "; ".join(
            part for part in [prop.get("description", ""), *_constraints(prop)] if part
        )
        lines.append(f"| `{name}` | {_type(prop)} | {flag} | {_cell(description)} |")
    return lines


def _model_doc(schema: dict[str, Any]) -> list[str]:
    description = schema.get("description")
    return [" ".join(description.split()), ""] if description else []


def _referenced(defs: dict[str, dict[str, Any]], roots: Iterable[str]) -> list[str]:
    """Model names reachable through fields from ``roots`` (not the roots themselves)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            target = node.get("$ref")
            if isinstance(target, str):
                name = target.rsplit("/", 1)[-1]
                if name not in found:
                    found.append(name)
                    walk(defs.get(name, {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for root in roots:
        walk(defs.get(root, {}).get("properties", {}))
    return found


def markdown(schema: dict[str, Any]) -> str:
    defs: dict[str, dict[str, Any]] = schema["$defs"]
    out: list[str] = []
    add = out.append

    add(f"# Locus daemon protocol {PROTOCOL_VERSION}")
    add("")
    add(
        "<!-- Generated by `python -m locusd.protocol.docs` from `locusd/protocol`; do not edit."
        " The tests fail when this file and the models differ. -->"
    )
    add("")
    add(
        "`locusd`, the per-user daemon, speaks JSON-RPC 2.0 with LSP framing: editors (VS Code,"
        " Neovim), the `locus` CLI and scripts are all clients of the same daemon. The JSON Schema"
        f" of every message is in [`{SCHEMA}`]({SCHEMA})."
    )
    add("")
    add("Contents: [Connecting](#connecting) · [Framing](#framing) · [Lifecycle](#lifecycle) ·")
    add(
        "[Methods](#methods) · [Notifications](#notifications-daemon--client) ·"
        " [Requests to the client](#requests-daemon--client) · [Errors](#errors) ·"
        " [Types](#types)"
    )
    add("")

    # --- connecting
    add("## Connecting")
    add("")
    add("One daemon per user listens on a Unix socket:")
    add("")
    add("| where | when |")
    add("| --- | --- |")
    add("| `$LOCUS_SOCKET` | if set (tests, a second daemon) |")
    add(
        f"| `$XDG_RUNTIME_DIR/locus/{SOCKET_NAME}` | if `XDG_RUNTIME_DIR` is set (Linux sessions) |"
    )
    add(f"| `$TMPDIR/locus-<uid>/{SOCKET_NAME}` (else `/tmp/…`) | otherwise (macOS, containers) |")
    add("")
    add(
        "- The directory is created with mode 0700. If it exists and is not a directory owned by"
        " the user with no group/other permissions (a symlink, another owner, mode 0755…), the"
        " daemon and the clients refuse to use it and say why: in a shared temp dir another user"
        " could have created it to intercept the socket."
    )
    add("- The socket file is mode 0600.")
    add(
        "- The daemon reads the peer's uid (`SO_PEERCRED`, `LOCAL_PEERCRED` on macOS) on every"
        " connection and closes one from another uid at once (and logs it); clients check the"
        " daemon's uid the same way."
    )
    add(
        "- `locusd.lock` in the same directory (flock, holding the daemon's pid) makes a second"
        " `locusd serve` exit with an error instead of stealing the socket; a socket file nobody"
        " listens on (a killed daemon) is replaced."
    )
    add("")
    add(
        "`locusd serve` runs the daemon in the foreground (systemd, launchd, a terminal) until"
        " `locus/daemon/shutdown`, SIGTERM or SIGINT. `locusd --stdio` is for clients that can"
        ' only spawn a process (an editor\'s "language server command"): it connects to the'
        " socket, starting the daemon if none runs, and forwards bytes between its"
        " stdin/stdout and the socket unchanged. It starts the daemon detached (its own session,"
        " output appended to `<state dir>/locus/locusd.log`, 0600; the state dir is"
        " `$XDG_STATE_HOME` or `~/.local/state` on Linux), with `$LOCUSD_SERVE_COMMAND` if set,"
        " under `start.lock` so that clients racing to start it start one."
    )
    add("")

    # --- framing
    add("## Framing")
    add("")
    add("Each message is a frame, as in LSP's base protocol:")
    add("")
    add("```")
    add("Content-Length: <bytes of the body>\\r\\n")
    add("\\r\\n")
    add('{"jsonrpc":"2.0","id":1,"method":"locus/daemon/status","params":{}}')
    add("```")
    add("")
    add(
        "- Header names are case-insensitive; `Content-Type` is optional (a charset other than"
        " UTF-8 is refused); unknown headers are ignored; lines may end in `\\r\\n` or `\\n`."
    )
    add(
        f"- `Content-Length` counts bytes of the UTF-8 body, at most {MAX_BODY} ({MAX_BODY >> 20}"
        f" MiB), in both directions. At most {MAX_HEADERS} header lines of {MAX_HEADER_LINE}"
        f" bytes. JSON nested deeper than {MAX_DEPTH} levels is refused."
    )
    add(
        "- A malformed header, a missing/invalid/over-limit length: the daemon answers a `-32700`"
        ' error with `id: null` and `data.kind = "bad_frame"`, then closes the connection.'
    )
    add(
        "- A body that is not JSON: a `-32700` error with `id: null`; the connection goes on."
        " Batches (JSON arrays) are not supported (`-32600`)."
    )
    add(
        "- The daemon's bodies are ASCII JSON (non-ASCII characters escaped), so byte and"
        " character counts agree for every client."
    )
    add("")

    # --- lifecycle
    add("## Lifecycle")
    add("")
    add(
        "Each connection is an LSP session of its own: `initialize` → (`initialized`) →"
        " requests and notifications → `shutdown` → `exit`."
    )
    add("")
    add(
        "**`initialize`** takes LSP's `InitializeParams` (`processId` and `capabilities` are"
        " required by LSP) with `initializationOptions.locus`:"
    )
    add("")
    out += _model_doc(defs["LocusInitOptions"])
    out += _table(defs["LocusInitOptions"], result=False)
    add("")
    add(
        f"The daemon speaks protocol {PROTOCOL_VERSION}. A missing `protocolVersion`, or one with"
        " another major version, is answered with error"
        f" `{int(Code.UNSUPPORTED_PROTOCOL)}` (`unsupported_protocol`) naming both versions; the"
        " client may send `initialize` again. Minor versions only add: unknown fields and"
        " enum values must be tolerated by both sides, and the daemon ignores unknown fields."
    )
    add("")
    add(
        "The result is LSP's `InitializeResult` (`serverInfo.name` is `locusd`) with"
        " `capabilities.experimental.locus`:"
    )
    add("")
    out += _table(defs["LocusCapabilities"], result=True)
    add("")
    add(
        "- A request before `initialize` is answered with `-32002` (`server_not_initialized`);"
        " notifications before it are dropped, except `exit`."
    )
    add(
        "- `shutdown` cancels this connection's requests in progress; afterwards requests get"
        " `-32600`. `exit` closes **this connection only**; the daemon goes on serving the"
        " others (to stop the daemon: `locus/daemon/shutdown`)."
    )
    add(
        "- `$/cancelRequest {id}` cancels a request in progress (answered with `-32800`)."
        " Requests run concurrently, so answers may come in any order."
    )
    add(
        "- A client that disconnects does not cancel its requests in progress (a `runs/start`"
        " still starts the run); their answers are dropped."
    )
    add(
        "- The `locus/…` methods are requests: sent as notifications (without an id) they are"
        " ignored."
    )
    add("")

    # --- methods
    add("## Methods")
    add("")
    add("| method | params | result | what it does |")
    add("| --- | --- | --- | --- |")
    for name, method in METHODS.items():
        add(
            f"| [`{name}`](#{_anchor(name)}) | {_link(method.params.__name__)} |"
            f" {_link(method.result.__name__)} | {_cell(method.doc)} |"
        )
    add("")
    for name, method in METHODS.items():
        add(f"### {name}")
        add("")
        add(_cell(method.doc))
        add("")
        add(f"Params: `{method.params.__name__}`")
        add("")
        out += _table(defs[method.params.__name__], result=False)
        add("")
        add(f"Result: `{method.result.__name__}`")
        add("")
        out += _model_doc(defs[method.result.__name__])
        out += _table(defs[method.result.__name__], result=True)
        add("")

    # --- notifications
    add("## Notifications (daemon → client)")
    add("")
    for name, (params, doc) in NOTIFICATIONS.items():
        add(f"### {name}")
        add("")
        add(_cell(doc))
        add("")
        out += _model_doc(defs[params.__name__])
        out += _table(defs[params.__name__], result=True)
        add("")
    add("### $/progress")
    add("")
    add(
        "LSP work-done progress (`{token, value}` with a `WorkDoneProgressBegin`, `Report` or"
        " `End` value), after `window/workDoneProgress/create`. Sent only to clients that"
        " declared `capabilities.window.workDoneProgress`."
    )
    add("")

    # --- server requests
    add("## Requests (daemon → client)")
    add("")
    add(
        "The daemon's request ids are strings starting with `locusd-`. When the answer is no"
        " longer needed (another client answered first) the daemon sends `$/cancelRequest`."
        " A client that cannot answer should reply with an error (e.g. `-32601`)."
    )
    add("")
    for name, (params, result, doc) in SERVER_REQUESTS.items():
        add(f"### {name}")
        add("")
        add(_cell(doc))
        add("")
        add(f"Params: `{params.__name__}`")
        add("")
        out += _model_doc(defs[params.__name__])
        out += _table(defs[params.__name__], result=True)
        add("")
        add(f"Result: `{result.__name__}`")
        add("")
        out += _table(defs[result.__name__], result=False)
        add("")
    add("### window/workDoneProgress/create")
    add("")
    add("LSP: create a progress token before `$/progress` (only if the client declared support).")
    add("")

    # --- errors
    add("## Errors")
    add("")
    add(
        "Every error response has `error.data = {kind, retryable}`: `kind` is a stable"
        " snake_case name to branch on, `retryable` says whether the same request can succeed"
        " later without the user changing anything. The message is for people: it names what"
        " was wrong and what to do."
    )
    add("")
    add("| code | kind | retryable | meaning |")
    add("| --- | --- | --- | --- |")
    for code, kind, doc in RPC_DOCS:
        add(f"| {int(code)} | `{kind}` | no | {_cell(doc)} |")
    for code in Code:
        retry = "yes" if code in RETRYABLE else "no"
        add(f"| {int(code)} | `{code.name.lower()}` | {retry} | {_cell(_code_doc(code))} |")
    add("")

    # --- types
    add("## Types")
    add("")
    roots = [m.__name__ for m in all_models()]
    for name in sorted(set(_referenced(defs, roots)) | {"ClientInfo", "ErrorData"}):
        add(f"### {name}")
        add("")
        out += _model_doc(defs[name])
        out += _table(defs[name], result=True)
        add("")
    return "\n".join(out).rstrip() + "\n"


def _link(name: str) -> str:
    return "—" if name == "Empty" else f"`{name}`"


# --- entry point -----------------------------------------------------------------------------


def render() -> dict[str, str]:
    """File name → content of every generated file."""
    schema = json_schema()
    return {
        MARKDOWN: markdown(schema),
        SCHEMA: json.dumps(schema, indent=2, ensure_ascii=False) + "\n",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m locusd.protocol.docs",
        description=f"Write {MARKDOWN} and {SCHEMA} from locusd/protocol.",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the files differ instead of writing"
    )
    parser.add_argument("--out", type=Path, default=DOCS, help=f"directory (default {DOCS})")
    args = parser.parse_args(argv)
    stale = []
    for name, content in render().items():
        path = args.out / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == content:
            continue
        if args.check:
            stale.append(path)
        else:
            path.write_text(content, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        for path in stale:
            print(f"{path} is out of date with locusd/protocol", file=sys.stderr)
        print("regenerate with: python -m locusd.protocol.docs", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
