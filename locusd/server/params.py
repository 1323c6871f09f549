"""Params checked against the method's pydantic model, with errors a person can act on.

Params of the Locus methods stay plain JSON until here (pygls's namedtuple conversion would
rename keys, see :mod:`locusd.server.pygls_adapter`); each wrong field is named in an
InvalidParams error together with the shape the method expects. ``initialize`` is checked
here too: its ``initializationOptions.locus`` carries the protocol version handshake.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel, ValidationError

from locusd import __version__
from locusd.protocol import PROTOCOL_VERSION
from locusd.protocol.base import Wire
from locusd.protocol.errors import Code
from locusd.protocol.messages import LocusInitOptions
from locusd.protocol.methods import Method
from locusd.server.framing import RpcCode
from locusd.server.gates import RpcError, rpc_error, short


@functools.cache
def shape(model: type[BaseModel]) -> str:
    """``{runId: string, after?: integer}``: what a params object should look like, for the
    message of an invalid-params error."""
    schema = model.model_json_schema(by_alias=True)
    required = set(schema.get("required", ()))
    parts = []
    for name, prop in schema.get("properties", {}).items():
        parts.append(f"{name}{'' if name in required else '?'}: {_json_type(prop)}")
    return "{" + ", ".join(parts) + "}"


def _json_type(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return " | ".join(repr(v) for v in prop["enum"])
    if "const" in prop:
        return repr(prop["const"])
    if "anyOf" in prop:
        return " | ".join(_json_type(p) for p in prop["anyOf"])
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    kind = prop.get("type", "any")
    if kind == "array":
        return f"{_json_type(prop.get('items', {}))}[]"
    return str(kind)


def validate_params(method: Method, raw: Any) -> Wire:
    """The method's params model from the raw JSON params, or an InvalidParams error that
    names each wrong field and shows the expected shape."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise rpc_error(
            RpcCode.INVALID_PARAMS,
            f"{method.name}: params must be a JSON object {shape(method.params)},"
            f" not {type(raw).__name__}",
        )
    try:
        return method.params.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            where = ".".join(str(part) for part in error["loc"]) or "params"
            if error["type"] == "missing":
                problems.append(f"{where} is required")
            else:
                problems.append(f"{where}: {error['msg']} (got {short(error.get('input'))})")
        raise rpc_error(
            RpcCode.INVALID_PARAMS,
            f"{method.name}: {'; '.join(problems)}; expected params {shape(method.params)}",
        ) from None


def check_init_options(options: Any) -> LocusInitOptions:
    """``initializationOptions.locus``: a missing or other-major protocol version is
    UNSUPPORTED_PROTOCOL (the client must upgrade, or the daemon); other mistakes are
    InvalidParams."""
    locus = options.get("locus") if isinstance(options, dict) else None
    version = locus.get("protocolVersion") if isinstance(locus, dict) else None
    ours = PROTOCOL_VERSION.split(".")[0]
    data = {
        "kind": Code.UNSUPPORTED_PROTOCOL.name.lower(),
        "retryable": False,
        "daemonProtocolVersion": PROTOCOL_VERSION,
        "clientProtocolVersion": version if isinstance(version, str) else None,
    }
    if not isinstance(version, str):
        raise RpcError(
            Code.UNSUPPORTED_PROTOCOL,
            "initialize: initializationOptions.locus.protocolVersion is missing; this"
            f" daemon speaks Locus protocol {PROTOCOL_VERSION}: send initializationOptions"
            f' {{"locus": {{"protocolVersion": "{PROTOCOL_VERSION}", "client": {{"name": ...}}}}}}',
            data,
        )
    if version.split(".")[0] != ours:
        raise RpcError(
            Code.UNSUPPORTED_PROTOCOL,
            f"the client speaks Locus protocol {version} but this daemon"
            f" ({__version__}) speaks {PROTOCOL_VERSION}: the major versions must match;"
            " upgrade the older side",
            data,
        )
    try:
        return LocusInitOptions.model_validate(locus)
    except ValidationError as exc:
        problems = "; ".join(
            f"initializationOptions.locus.{'.'.join(map(str, e['loc']))}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise rpc_error(
            RpcCode.INVALID_PARAMS, f"{problems}; expected {shape(LocusInitOptions)}"
        ) from None
