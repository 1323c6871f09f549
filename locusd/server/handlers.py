"""Which coroutine of the core answers which method, said where the coroutine is written.

A handler is decorated with the method it answers, ``@handles("locus/runs/start")``, so that
searching for a method's name finds its code (a name derived from the method, looked up with
``getattr``, found nothing and failed only when a client called it). When the server binds a
core (:func:`bind`, at start-up), every method of
:data:`~locusd.protocol.methods.METHODS` must have exactly one handler and every handler must
name a method of the table; otherwise the daemon refuses to start, naming each problem.

:func:`call` runs one handler for one request: params validated by the method's model, the
result checked against the method's result model, a ``LocusError`` turned into its error
answer. This module does not import pygls (the core imports it).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from locusd import __version__
from locusd.protocol import METHODS
from locusd.protocol.base import Wire
from locusd.protocol.errors import LocusError
from locusd.protocol.methods import Method
from locusd.server.framing import RpcCode
from locusd.server.gates import RpcError, clip, rpc_error
from locusd.server.params import validate_params
from locusd.server.peer import Peer

log = logging.getLogger("locusd.server")

#: A bound handler: ``await handler(params, peer)`` → the method's result model.
Handler = Callable[[Any, Peer], Awaitable[Any]]
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

_MARK = "__locus_methods__"


class HandlerBindingError(Exception):
    """The core's handlers do not match the method table (a programming error in the core)."""


class Unavailable(Exception):
    """Raised by a handler for a method its core deliberately does not serve (a test double,
    a core without a feature): the client gets METHOD_NOT_FOUND."""


def handles(*methods: str) -> Callable[[F], F]:
    """Mark a coroutine ``async def name(self, params, peer)`` of a core as the handler of
    ``methods`` (usually one). The function itself is returned unchanged."""
    if not methods:
        raise TypeError("@handles needs the name of the method, e.g. @handles('locus/runs/list')")

    def mark(function: F) -> F:
        asynchronous = inspect.iscoroutinefunction(function)  # (not narrowing ``function``)
        if not asynchronous:
            raise TypeError(f"@handles({', '.join(map(repr, methods))}): {function!r} is not async")
        setattr(function, _MARK, (*getattr(function, _MARK, ()), *methods))
        return function

    return mark


def handled_by(function: object) -> tuple[str, ...]:
    """The methods ``function`` was marked to handle."""
    marked = getattr(function, _MARK, ())
    return marked if isinstance(marked, tuple) else ()


def handler_table(core_class: type) -> dict[str, str]:
    """Method → the name of the ``core_class`` attribute that handles it;
    :class:`HandlerBindingError` naming every method without a handler, with more than one,
    and every handler of a method that does not exist."""
    owners: dict[str, list[str]] = {}
    seen: set[str] = set()
    for klass in core_class.__mro__:  # a subclass's attribute hides its base's
        for attribute, value in vars(klass).items():
            if attribute in seen:
                continue
            seen.add(attribute)
            for method in handled_by(value):
                owners.setdefault(method, []).append(attribute)
    name = core_class.__name__
    problems = [
        f"{name}.{attributes[0]} handles {method!r}, which is not a method of the protocol"
        " (locusd/protocol/methods.py): fix the name or add the method"
        for method, attributes in sorted(owners.items())
        if method not in METHODS
    ]
    for method in METHODS:
        attributes = owners.get(method, [])
        if not attributes:
            problems.append(
                f"{method} has no handler: decorate the {name} coroutine that answers it"
                f" with @handles({method!r})"
            )
        elif len(attributes) > 1:
            where = ", ".join(f"{name}.{attribute}" for attribute in attributes)
            problems.append(f"{method} has {len(attributes)} handlers ({where}): keep one")
    if problems:
        raise HandlerBindingError(f"{name} cannot serve the protocol: " + "; ".join(problems))
    return {method: attributes[0] for method, attributes in owners.items()}


def bind(core: object) -> dict[str, Handler]:
    """Each method's handler, bound to ``core`` (checked by :func:`handler_table`)."""
    return {
        method: getattr(core, attribute) for method, attribute in handler_table(type(core)).items()
    }


async def call(method: Method, handler: Handler, raw: Any, peer: Peer) -> dict[str, object]:
    """Answer one request: validate, call the core with the peer, turn the result or the
    error into the answer (an :class:`~locusd.server.gates.RpcError`)."""
    params = validate_params(method, raw)
    try:
        result = await handler(params, peer)
        if not isinstance(result, method.result):
            raise TypeError(
                f"{getattr(handler, '__name__', method.name)} returned"
                f" {type(result).__name__}, not {method.result.__name__}"
            )
        wire: dict[str, object] = result.wire() if isinstance(result, Wire) else {}
        return wire
    except Unavailable:
        raise rpc_error(
            RpcCode.METHOD_NOT_FOUND,
            f"{method.name} is not available in this daemon ({__version__})",
        ) from None
    except LocusError as exc:
        raise RpcError(int(exc.code), exc.message, exc.data.wire()) from None
    except Exception as exc:
        log.exception("client %d: %s failed", peer.id, method.name)
        raise rpc_error(
            RpcCode.INTERNAL_ERROR,
            f"{method.name} failed: {type(exc).__name__}: {clip(str(exc))}"
            " (the daemon's log has the details)",
        ) from None
