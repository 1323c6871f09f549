"""Every use of pygls (2.1.1) and of its private internals, in one file: upgrading pygls means
auditing this module (``tests/locusd/server/test_layers.py`` fails if pygls is used elsewhere).

Each connection has a pygls server and protocol object of its own, sharing the daemon's
:class:`~locusd.server.peer.Core`; :class:`PyglsSession` is all the connection sees of them.
Why each piece is here (what a client sees of it is specified in docs/protocol.md):

* pygls reads and writes only through the :class:`~locusd.server.connection.Connection`:
  frames are parsed by :mod:`locusd.server.framing` (pygls's own reader loses messages on a bad
  header), every message goes through :mod:`locusd.server.gates` before pygls sees it, and
  ``_send_data`` is overridden so that everything pygls sends uses our byte-exact framing.
* ``exit`` closes this connection only (the stock handler calls ``sys.exit``, which would take
  every other client down with it).
* Params of the Locus methods stay plain dicts (a converter hook replaces pygls's namedtuple
  conversion, which renames keys) and are validated by the method's pydantic model
  (:mod:`locusd.server.params`).
* Handler errors are answered without pygls's traceback logging (``_send_handler_result`` is
  overridden): a ``LocusError`` is an answer, not a server fault.
* The gates read pygls's private state: the handshake flag, ``_shutdown``,
  ``_request_futures`` (requests in progress: duplicate ids, ``$/cancelRequest``),
  ``fm.builtin_features`` (known methods) and ``get_message_type`` (request or notification).
* Structuring a message uses pygls's private ``_converter``, but a failure is answered here
  (pygls would log a traceback at ERROR and answer nothing useful).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Generator, Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, cast

import attrs
import cattrs
from lsprotocol import converters, types
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
from locusd.protocol import METHODS
from locusd.server.framing import RpcCode, error_message
from locusd.server.gates import Deliver, Drop, MsgId, Refuse, RpcError, Session, clip
from locusd.server.handlers import Handler, call
from locusd.server.params import check_init_options

if TYPE_CHECKING:
    from locusd.server.connection import Connection

log = logging.getLogger("locusd.server")
# pygls logs every message body at INFO (diffs, tokens, approvals): keep it to real problems.
logging.getLogger("pygls").setLevel(logging.WARNING)


# --- converting messages ---------------------------------------------------------------------


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


def _cattrs_problem(exc: Exception) -> str:
    """``processId: invalid value for type, expected Optional`` from a cattrs error (paths in
    the wire's camelCase, not lsprotocol's snake_case attribute names)."""
    if not isinstance(exc, cattrs.BaseValidationError):
        return clip(f"{type(exc).__name__}: {exc}")
    problems = []
    for line in cattrs.transform_error(exc):
        text, _, where = line.rpartition(" @ ")
        path = ".".join(_camel(part) for part in where.split(".")[2:]) or "params"
        problems.append(f"{path}: {text}")
    return clip("; ".join(problems), 500)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# --- pygls's server and protocol -------------------------------------------------------------


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
        """Answer a request from its handler's future. Unlike pygls, an expected error (an
        :class:`~locusd.server.gates.RpcError`, e.g. from a ``LocusError``, or pygls's own
        ``JsonRpcException``) is not logged with a traceback, and an unexpected one is
        answered with a short message (no traceback in the reply) while the traceback goes
        to the daemon's log."""
        self._request_futures.pop(msg_id, None)
        if future.cancelled():
            self.connection.send(
                error_message(msg_id, RpcCode.REQUEST_CANCELLED, f"request {msg_id!r} cancelled")
            )
            return
        exc = future.exception()
        if exc is None:
            self._send_response(msg_id, result=future.result())
        elif isinstance(exc, RpcError):
            self.connection.send(error_message(msg_id, exc.code, exc.message, exc.data))
        elif isinstance(exc, JsonRpcException):
            data = exc.data if isinstance(exc.data, dict) else None
            self.connection.send(error_message(msg_id, exc.code, exc.message, data))
        else:
            log.error("client %d: request %r failed", self.connection.id, msg_id, exc_info=exc)
            self.connection.send(
                error_message(
                    msg_id,
                    RpcCode.INTERNAL_ERROR,
                    f"internal error: {type(exc).__name__}: {clip(str(exc))}"
                    " (the daemon's log has the details)",
                )
            )


# --- what the connection sees ----------------------------------------------------------------


class _KnownMethods:
    """The methods pygls has a handler for: its built-in LSP features and ours."""

    def __init__(self, protocol: LocusProtocol) -> None:
        self.fm = protocol.fm

    def __contains__(self, method: object) -> bool:
        return method in self.fm.builtin_features or method in self.fm.features


class PyglsSession:
    """One connection's pygls server and protocol, behind the few operations the connection
    needs: the gates' view of its state, delivering a message, cancelling a request."""

    def __init__(self, connection: Connection, handlers: Mapping[str, Handler]) -> None:
        self.connection = connection
        self.server = LocusLanguageServer(connection)
        self.protocol = cast(LocusProtocol, self.server.protocol)
        self._known = _KnownMethods(self.protocol)
        for name, handler in handlers.items():
            self.server.feature(name)(_feature(connection, name, handler))

    @property
    def initialized(self) -> bool:
        return self.protocol.locus_ready

    def session(self) -> Session:
        """The state the gates decide on, read from pygls now."""
        return Session(
            initialized=self.protocol.locus_ready,
            shut_down=self.protocol._shutdown,
            in_progress=self.protocol._request_futures,
            known=self._known,
            expects_id=self._expects_id,
        )

    def _expects_id(self, method: str) -> bool | None:
        kind = self.protocol.get_message_type(method)
        return None if kind is None else "id" in attrs.fields_dict(kind)

    def deliver(self, message: Deliver) -> Refuse | Drop | None:
        """Structure the message as pygls would (lsprotocol types for LSP methods, generic
        messages with raw params for ours) and hand it to pygls; a structuring failure is
        refused here."""
        kind = self.protocol.get_message_type(message.method) or (
            JsonRPCRequestMessage if message.id is not None else JsonRPCNotification
        )
        try:
            structured = self.protocol._converter.structure(message.data, kind)
        except Exception as exc:
            if message.id is not None:
                return Refuse(
                    message.id, RpcCode.INVALID_PARAMS, f"{message.method}: {_cattrs_problem(exc)}"
                )
            return Drop(f"dropped malformed {message.method}: {exc}")
        self.protocol.handle_message(structured)
        return None

    def cancel(self, msg_id: MsgId) -> None:
        """Cancel the client's request in progress (its answer is then REQUEST_CANCELLED)."""
        future = self.protocol._request_futures.get(msg_id)
        if future is not None:
            future.cancel()

    def supports_progress(self) -> bool:
        """The client declared ``window.workDoneProgress`` in initialize."""
        capabilities = getattr(self.protocol, "client_capabilities", None)
        window = getattr(capabilities, "window", None)
        return bool(getattr(window, "work_done_progress", False))


def _feature(
    connection: Connection, name: str, handler: Handler
) -> Callable[[Any], Awaitable[dict[str, object]]]:
    """The pygls feature for one Locus method: :func:`locusd.server.handlers.call` with this
    connection as the peer."""
    method = METHODS[name]

    async def handle(raw: Any) -> dict[str, object]:
        return await call(method, handler, raw, connection)

    handle.__name__ = getattr(handler, "__name__", name)
    return handle
