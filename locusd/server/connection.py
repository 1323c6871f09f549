"""One client connection: a pygls protocol object of its own behind our framing, sharing the
daemon's :class:`~locusd.server.peer.Core`.

Why each piece is here (pygls 2.1.1, see the design brief §10):

* pygls reads and writes only through :class:`Connection`: frames are parsed by
  :mod:`locusd.server.framing` (its own reader loses messages on a bad header) and every
  message is checked for JSON-RPC shape before pygls sees it, so a malformed one gets a
  precise error instead of an exception inside pygls.
* ``exit`` closes this connection only (the stock handler calls ``sys.exit``, which would take
  every other client down with it).
* Params of the Locus methods stay plain dicts (a converter hook replaces pygls's namedtuple
  conversion, which renames keys) and are validated by the method's pydantic model.
* Handler errors are answered without pygls's traceback logging: a ``LocusError`` is an answer,
  not a server fault.
* The connection is the :class:`~locusd.server.peer.Peer` the core talks to: notifications,
  requests to the client with their own id space, and LSP work-done progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections.abc import Awaitable, Callable, Generator
from concurrent.futures import Future
from typing import Any, TypeVar, cast

import attrs
import cattrs
from lsprotocol import converters, types
from pydantic import BaseModel, ValidationError
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.protocol import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
    LanguageServerProtocol,
    lsp_method,
)

from locusd import __version__
from locusd.protocol import METHODS, PROTOCOL_VERSION
from locusd.protocol.base import Wire
from locusd.protocol.errors import Code, LocusError
from locusd.protocol.messages import ClientInfo, LocusInitOptions
from locusd.protocol.methods import Method
from locusd.server.framing import (
    MAX_BODY,
    BodyError,
    FrameError,
    RpcCode,
    encode_frame,
    error_message,
    parse_body,
    read_frame,
)
from locusd.server.peer import Core

log = logging.getLogger("locusd.server")
# pygls logs every message body at INFO (diffs, tokens, approvals): keep it to real problems.
logging.getLogger("pygls").setLevel(logging.WARNING)

W = TypeVar("W", bound=Wire)
MsgId = int | str

#: A client that stops reading while the daemon streams events to it is cut off at this much
#: unsent data, rather than letting the daemon's memory grow without bound.
MAX_WRITE_BUFFER = 4 * MAX_BODY

_LIFECYCLE = {"initialize", "shutdown", "exit", "initialized", "$/cancelRequest"}


class PeerRequestError(Exception):
    """The client answered a daemon → client request with an error, or with a result that does
    not validate."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.message = message


def rpc_error(code: int, message: str, kind: str | None = None) -> JsonRpcException:
    """A pygls exception carrying our ``{kind, retryable}`` data."""
    if kind is None:
        kind = RpcCode(code).name.lower() if code in RpcCode._value2member_map_ else "error"
    return JsonRpcException(code=code, message=message, data={"kind": kind, "retryable": False})


# --- params ------------------------------------------------------------------------------


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
                problems.append(f"{where}: {error['msg']} (got {_short(error.get('input'))})")
        raise rpc_error(
            RpcCode.INVALID_PARAMS,
            f"{method.name}: {'; '.join(problems)}; expected params {shape(method.params)}",
        ) from None


def _short(value: Any) -> str:
    return _clip(repr(value), 60)


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- pygls ---------------------------------------------------------------------------------


def _keep_raw(obj: dict[str, Any], cls: type[Any]) -> Any:
    """Build pygls's generic message classes without converting params/results to
    namedtuples (which rename keywords and ``-`` keys) and without choking on extra keys."""
    fields = {"id", "method", "jsonrpc", "params", "result"}
    return cls(**{k: obj.get(k) for k in fields if k in {a.name for a in cls.__attrs_attrs__}})


@functools.cache
def shared_converter() -> cattrs.Converter:
    """One lsprotocol converter for every connection (building one costs milliseconds)."""
    converter = converters.get_converter()
    for cls in (JsonRPCRequestMessage, JsonRPCNotification, JsonRPCResponseMessage):
        converter.register_structure_hook(cls, _keep_raw)
    return converter


class LocusLanguageServer(LanguageServer):
    """pygls's server object for one connection (it owns the feature table and the
    protocol)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        super().__init__(
            "locusd",
            __version__,
            protocol_cls=LocusProtocol,
            converter_factory=shared_converter,
        )

    def report_server_error(self, error: Exception, source: Any) -> None:
        """pygls would show a window/showMessage to the user for every internal hiccup; the
        log is the place for those."""
        log.warning("client %d: %s: %s", self.connection.id, source.__name__, error)


class LocusProtocol(LanguageServerProtocol):
    """pygls's LSP protocol with the Locus handshake, a per-connection ``exit``, and our
    framing and error answers."""

    _server: LocusLanguageServer

    def __init__(self, server: LocusLanguageServer, converter: cattrs.Converter) -> None:
        super().__init__(server, converter)
        self.locus_ready = False

    @property
    def connection(self) -> Connection:
        return self._server.connection

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(
        self, params: types.InitializeParams
    ) -> Generator[Any, Any, types.InitializeResult]:
        """The stock initialize (workspace, capabilities), after the Locus version check, with
        the daemon's capabilities under ``capabilities.experimental.locus``."""
        options = check_init_options(params.initialization_options)
        result: types.InitializeResult = yield from super().lsp_initialize(params)
        experimental = result.capabilities.experimental
        extra = dict(experimental) if isinstance(experimental, dict) else {}
        extra["locus"] = self.connection.core.capabilities().wire()
        result.capabilities.experimental = extra
        self.connection.client = options.client
        self.locus_ready = True
        return result

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args: Any) -> Generator[Any, Any, None]:
        """Close this connection only; the daemon serves everyone else. (A generator like the
        stock handler it replaces, which would call ``sys.exit``.)"""
        self.connection.close()
        yield from ()

    def _send_data(self, data: Any) -> None:
        """Everything pygls sends goes through the connection's byte-exact framing."""
        self.connection.send(data, default=self._serialize_message)

    def _send_handler_result(self, future: Future[Any], *, msg_id: MsgId) -> None:
        """Answer a request from its handler's future. Unlike pygls, an expected error (a
        ``JsonRpcException``, e.g. a ``LocusError`` turned into one) is not logged with a
        traceback, and an unexpected one is answered with a short message (no traceback in
        the reply) while the traceback goes to the daemon's log."""
        self._request_futures.pop(msg_id, None)
        if future.cancelled():
            self.connection.send(
                error_message(msg_id, RpcCode.REQUEST_CANCELLED, f"request {msg_id!r} cancelled")
            )
            return
        exc = future.exception()
        if exc is None:
            self._send_response(msg_id, result=future.result())
        elif isinstance(exc, JsonRpcException):
            data = exc.data if isinstance(exc.data, dict) else None
            self.connection.send(error_message(msg_id, exc.code, exc.message, data))
        else:
            log.error("client %d: request %r failed", self.connection.id, msg_id, exc_info=exc)
            self.connection.send(
                error_message(
                    msg_id,
                    RpcCode.INTERNAL_ERROR,
                    f"internal error: {type(exc).__name__}: {_clip(str(exc))}"
                    " (the daemon's log has the details)",
                )
            )


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
        raise JsonRpcException(
            code=Code.UNSUPPORTED_PROTOCOL,
            message="initialize: initializationOptions.locus.protocolVersion is missing; this"
            f" daemon speaks Locus protocol {PROTOCOL_VERSION}: send initializationOptions"
            f' {{"locus": {{"protocolVersion": "{PROTOCOL_VERSION}", "client": {{"name": ...}}}}}}',
            data=data,
        )
    if version.split(".")[0] != ours:
        raise JsonRpcException(
            code=Code.UNSUPPORTED_PROTOCOL,
            message=f"the client speaks Locus protocol {version} but this daemon"
            f" ({__version__}) speaks {PROTOCOL_VERSION}: the major versions must match;"
            " upgrade the older side",
            data=data,
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


# --- the connection ------------------------------------------------------------------------


class Connection:
    """One connected client: reads frames, gates and routes messages into its pygls
    protocol, and is the core's :class:`~locusd.server.peer.Peer` for that client."""

    _ids = itertools.count(1)

    def __init__(
        self,
        core: Core,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        max_body: int = MAX_BODY,
    ) -> None:
        self.id: int = next(self._ids)
        self.core = core
        self.reader = reader
        self.writer = writer
        self.max_body = max_body
        self.server = LocusLanguageServer(self)
        self.protocol = cast(LocusProtocol, self.server.protocol)
        self.client: ClientInfo | None = None
        self.closing = False
        self.finished = asyncio.Event()
        self._connected = False
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._request_ids = itertools.count(1)
        self._progress_tokens: set[str] = set()
        for method in METHODS.values():
            self.server.feature(method.name)(self._handler(method))

    def __repr__(self) -> str:
        name = self.client.name if self.client else "?"
        return f"<Connection {self.id} {name}>"

    # --- reading -------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the client until it exits, disconnects or sends a frame that cannot be
        trusted; then tell the core it is gone."""
        try:
            while not self.closing:
                try:
                    body = await read_frame(self.reader, self.max_body)
                except FrameError as exc:
                    log.warning("client %d: bad frame, closing: %s", self.id, exc)
                    self.send(
                        error_message(
                            None,
                            RpcCode.PARSE_ERROR,
                            f"bad frame: {exc}; closing the connection",
                            {"kind": "bad_frame", "retryable": False},
                        )
                    )
                    break
                except OSError as exc:
                    log.info("client %d: read failed: %s", self.id, exc)
                    break
                if body is None:
                    break
                self.receive(body)
        finally:
            await self._finish()

    def receive(self, body: bytes) -> None:
        """Handle one frame's body (never raises: a bad message gets an error answer)."""
        try:
            data = parse_body(body)
        except BodyError as exc:
            self.send(error_message(None, RpcCode.PARSE_ERROR, f"parse error: {exc}"))
            return
        try:
            self._dispatch(data)
        except Exception:  # a bug here must not take the daemon (or this client) down
            log.exception("client %d: failed to handle a message", self.id)
            msg_id = data.get("id") if isinstance(data, dict) else None
            if _valid_id(msg_id) and "method" in data:
                self.send(error_message(msg_id, RpcCode.INTERNAL_ERROR, "internal error (see log)"))

    def _dispatch(self, data: Any) -> None:
        if not isinstance(data, dict):
            what = (
                "a batch (JSON array) is not supported: send one message per frame"
                if isinstance(data, list)
                else f"expected a JSON-RPC message object, got {type(data).__name__}"
            )
            self.send(error_message(None, RpcCode.INVALID_REQUEST, what))
            return
        has_id = "id" in data
        msg_id = data.get("id")
        if has_id and not _valid_id(msg_id):
            self.send(
                error_message(
                    None,
                    RpcCode.INVALID_REQUEST,
                    f"id must be a string or an integer, not {_short(msg_id)}",
                )
            )
            return
        reply_id = msg_id if has_id else None
        if data.get("jsonrpc") != "2.0":
            self.send(error_message(reply_id, RpcCode.INVALID_REQUEST, 'jsonrpc must be "2.0"'))
            return
        method = data.get("method")
        if "method" not in data:
            if has_id and ("result" in data or "error" in data):
                self._response(msg_id, data)
                return
            self.send(
                error_message(
                    reply_id,
                    RpcCode.INVALID_REQUEST,
                    'a message needs "method" (a request or notification) or, with an "id",'
                    ' "result" or "error" (a response)',
                )
            )
            return
        if not isinstance(method, str) or not method:
            self.send(
                error_message(
                    reply_id, RpcCode.INVALID_REQUEST, "method must be a non-empty string"
                )
            )
            return
        if has_id:
            assert msg_id is not None
            self._request(msg_id, method, data)
        else:
            self._notification(method, data)

    def _known(self, method: str) -> bool:
        fm = self.protocol.fm
        return method in fm.builtin_features or method in fm.features

    def _request(self, msg_id: MsgId, method: str, data: dict[str, Any]) -> None:
        proto = self.protocol
        if proto._shutdown:
            self._error(
                msg_id,
                RpcCode.INVALID_REQUEST,
                f"{method}: the client sent shutdown; only exit is accepted now",
            )
        elif not proto.locus_ready and method != "initialize":
            self._error(
                msg_id,
                RpcCode.SERVER_NOT_INITIALIZED,
                f"{method} before initialize: send initialize first",
            )
        elif proto.locus_ready and method == "initialize":
            self._error(
                msg_id, RpcCode.INVALID_REQUEST, "initialize was already sent on this connection"
            )
        elif not self._known(method):
            hint = " (see docs/protocol.md)" if method.startswith("locus/") else ""
            self._error(msg_id, RpcCode.METHOD_NOT_FOUND, f"unknown method {method!r}{hint}")
        elif msg_id in proto._request_futures:
            self._error(
                msg_id,
                RpcCode.INVALID_REQUEST,
                f"id {msg_id!r} is already used by a request in progress",
            )
        else:
            params = data.get("params")
            if params is not None and not isinstance(params, dict | list):
                self._error(msg_id, RpcCode.INVALID_PARAMS, f"{method}: params must be an object")
                return
            self._to_pygls(data, msg_id)
            if method == "initialize" and proto.locus_ready and not self._connected:
                self._connected = True
                self.core.connected(self)

    def _notification(self, method: str, data: dict[str, Any]) -> None:
        if method == "exit":
            self.close()
        elif method == "$/cancelRequest":
            params = data.get("params")
            target = params.get("id") if isinstance(params, dict) else None
            future = self.protocol._request_futures.get(target) if _valid_id(target) else None  # type: ignore[arg-type]  # checked by _valid_id
            if future is not None:
                future.cancel()
        elif (
            not self.protocol.locus_ready
            or self.protocol._shutdown
            or method in METHODS  # requests only: a method run without an answer helps nobody
            or not self._known(method)
        ):
            log.debug("client %d: dropped notification %s", self.id, method)
        else:
            self._to_pygls(data, None)

    def _to_pygls(self, data: dict[str, Any], msg_id: MsgId | None) -> None:
        """Structure the message as pygls would (lsprotocol types for LSP methods, generic
        messages with raw params for ours), but answer a structuring failure ourselves:
        pygls would log a traceback at ERROR and answer nothing useful."""
        method = data["method"]
        kind = self.protocol.get_message_type(method) or (
            JsonRPCRequestMessage if msg_id is not None else JsonRPCNotification
        )
        is_request = "id" in attrs.fields_dict(kind)
        if is_request != (msg_id is not None):
            if msg_id is not None:
                self._error(
                    msg_id,
                    RpcCode.INVALID_REQUEST,
                    f"{method} is a notification: send it without an id",
                )
            else:
                log.debug("client %d: dropped %s sent as a notification", self.id, method)
            return
        try:
            message = self.protocol._converter.structure(data, kind)
        except Exception as exc:
            if msg_id is not None:
                self._error(msg_id, RpcCode.INVALID_PARAMS, f"{method}: {_cattrs_problem(exc)}")
            else:
                log.debug("client %d: dropped malformed %s: %s", self.id, method, exc)
            return
        self.protocol.handle_message(message)

    def _error(self, msg_id: MsgId, code: int, message: str) -> None:
        self.send(error_message(msg_id, code, message))

    def _handler(self, method: Method) -> Callable[[Any], Awaitable[dict[str, object]]]:
        """The pygls feature for one Locus method: validate, call the core with this peer,
        turn the result or the LocusError into the answer."""

        async def handle(raw: Any) -> dict[str, object]:
            params = validate_params(method, raw)
            function = getattr(self.core, method.handler, None)
            if function is None:
                raise rpc_error(
                    RpcCode.METHOD_NOT_FOUND,
                    f"{method.name} is not available in this daemon ({__version__})",
                )
            try:
                result = await function(params, self)
                if not isinstance(result, method.result):
                    raise TypeError(
                        f"{method.handler} returned {type(result).__name__},"
                        f" not {method.result.__name__}"
                    )
                return result.wire()
            except LocusError as exc:
                raise JsonRpcException(
                    code=int(exc.code), message=exc.message, data=exc.data.wire()
                ) from None
            except Exception as exc:
                log.exception("client %d: %s failed", self.id, method.name)
                raise rpc_error(
                    RpcCode.INTERNAL_ERROR,
                    f"{method.name} failed: {type(exc).__name__}: {_clip(str(exc))}"
                    " (the daemon's log has the details)",
                ) from None

        handle.__name__ = method.handler
        return handle

    # --- responses to our requests -----------------------------------------------------------

    def _response(self, msg_id: Any, data: dict[str, Any]) -> None:
        future = self._pending.get(msg_id) if isinstance(msg_id, str) else None
        if future is None or future.done():
            log.debug("client %d: response to unknown id %r dropped", self.id, msg_id)
            return
        error = data.get("error")
        if error is not None:
            code = error.get("code") if isinstance(error, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            future.set_exception(
                PeerRequestError(
                    code if isinstance(code, int) else RpcCode.INTERNAL_ERROR,
                    message if isinstance(message, str) else "the client answered an error",
                )
            )
        else:
            future.set_result(data.get("result"))

    # --- Peer ---------------------------------------------------------------------------------

    def notify(self, method: str, params: Wire) -> None:
        """Send a notification; dropped once the connection is closing."""
        self.send({"jsonrpc": "2.0", "method": method, "params": params.wire()})

    async def request(self, method: str, params: Wire, result: type[W]) -> W:
        """Ask the client; ConnectionError if it goes away first, PeerRequestError if it
        answers an error or something that is not a ``result``."""
        raw = await self._request_raw(method, params.wire())
        try:
            return result.model_validate(raw)
        except ValidationError as exc:
            raise PeerRequestError(
                RpcCode.INVALID_PARAMS,
                f"the client's answer to {method} is not {shape(result)}: {exc.errors(include_url=False)[0]['msg']}",
            ) from None

    async def create_progress(self, token: str) -> None:
        """``window/workDoneProgress/create``, if the client declared
        ``window.workDoneProgress`` (LSP forbids it otherwise; progress is then not sent)."""
        if not self._supports_progress():
            return
        await self._request_raw("window/workDoneProgress/create", {"token": token})
        self._progress_tokens.add(token)

    def progress(self, token: str, value: dict[str, Any]) -> None:
        """``$/progress`` for a token created with :meth:`create_progress`."""
        if token not in self._progress_tokens:
            return
        self.send(
            {"jsonrpc": "2.0", "method": "$/progress", "params": {"token": token, "value": value}}
        )
        if value.get("kind") == "end":
            self._progress_tokens.discard(token)

    def _supports_progress(self) -> bool:
        capabilities = getattr(self.protocol, "client_capabilities", None)
        window = getattr(capabilities, "window", None)
        return bool(getattr(window, "work_done_progress", False))

    async def _request_raw(self, method: str, params: Any) -> Any:
        if self.closing:
            raise ConnectionError(f"client {self.id} has disconnected")
        # Our ids are strings with a prefix, so they never collide with the client's (pygls
        # keeps both kinds in one table, and a clash would resolve the wrong future).
        msg_id = f"locusd-{next(self._request_ids)}"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        try:
            return await future
        except asyncio.CancelledError:
            if not self.closing:  # tell the client to withdraw its prompt
                self.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": msg_id}})
            raise
        finally:
            self._pending.pop(msg_id, None)

    # --- writing and closing ----------------------------------------------------------------

    def send(self, message: Any, default: Callable[[Any], Any] | None = None) -> None:
        """Frame and write one message; a closed or closing connection drops it. An answer
        that cannot be serialised or exceeds the frame limit becomes an error answer."""
        if self.closing or self.writer.is_closing():
            return
        try:
            frame = encode_frame(message, default)
            if len(frame) - 64 > self.max_body:
                raise ValueError(f"{len(frame)} bytes exceed the frame limit of {self.max_body}")
        except (TypeError, ValueError) as exc:
            log.error("client %d: cannot send %s: %s", self.id, _describe(message), exc)
            msg_id = _response_id(message)
            if msg_id is None:
                return
            frame = encode_frame(
                error_message(msg_id, RpcCode.INTERNAL_ERROR, f"the answer cannot be sent: {exc}")
            )
        self.writer.write(frame)
        buffered = self.writer.transport.get_write_buffer_size()
        if buffered > MAX_WRITE_BUFFER:
            log.warning("client %d: %d bytes unread, closing the connection", self.id, buffered)
            self.closing = True
            self.writer.transport.abort()

    def close(self) -> None:
        """Close after what is already written has been flushed (exit, daemon stop)."""
        if not self.closing:
            self.closing = True
            self.writer.close()

    async def _finish(self) -> None:
        self.closing = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError(f"client {self.id} disconnected"))
        if self._connected:
            try:
                self.core.disconnected(self)
            except Exception:
                log.exception("client %d: core.disconnected failed", self.id)
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()
        self.finished.set()
        log.info("client %d (%s) disconnected", self.id, self.client.name if self.client else "?")


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _response_id(message: Any) -> MsgId | None:
    """The id of a response we are sending (dict or pygls message object), else None."""
    if isinstance(message, dict):
        if "method" in message:
            return None
        value = message.get("id")
    else:
        if getattr(message, "method", None) is not None:
            return None
        value = getattr(message, "id", None)
    return value if _valid_id(value) else None


def _describe(message: Any) -> str:
    if isinstance(message, dict):
        return str(message.get("method") or f"answer to {message.get('id')!r}")
    return type(message).__name__


def _cattrs_problem(exc: Exception) -> str:
    """``processId: invalid value for type, expected Optional`` from a cattrs error (paths in
    the wire's camelCase, not lsprotocol's snake_case attribute names)."""
    if not isinstance(exc, cattrs.BaseValidationError):
        return _clip(f"{type(exc).__name__}: {exc}")
    problems = []
    for line in cattrs.transform_error(exc):
        text, _, where = line.rpartition(" @ ")
        path = ".".join(_camel(part) for part in where.split(".")[2:]) or "params"
        problems.append(f"{path}: {text}")
    return _clip("; ".join(problems), 500)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
