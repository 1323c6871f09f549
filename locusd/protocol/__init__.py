"""The daemon's JSON-RPC protocol (LSP-framed): pydantic models of every message and the
method table. Single source of truth for the server, the CLI and the generated docs.

The method table (and with it pydantic and every model) is imported on first use of
``METHODS``, ``NOTIFICATIONS`` or ``SERVER_REQUESTS``: a client that only needs
``PROTOCOL_VERSION`` or :mod:`locusd.protocol.codes` (``locus status``) starts without them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

#: 'MAJOR.MINOR': a client and the daemon must agree on the major.
PROTOCOL_VERSION = "1.0"

if TYPE_CHECKING:
    from locusd.protocol.methods import METHODS, NOTIFICATIONS, SERVER_REQUESTS

__all__ = ["METHODS", "NOTIFICATIONS", "PROTOCOL_VERSION", "SERVER_REQUESTS"]


def __getattr__(name: str) -> Any:
    if name in ("METHODS", "NOTIFICATIONS", "SERVER_REQUESTS"):
        from locusd.protocol import methods  # deferred on purpose (see the docstring)

        return getattr(methods, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
