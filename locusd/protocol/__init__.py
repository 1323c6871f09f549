"""The daemon's JSON-RPC protocol (LSP-framed): pydantic models of every message and the
method table. Single source of truth for the server, the CLI and the generated docs."""

from locusd.protocol.methods import METHODS, NOTIFICATIONS, PROTOCOL_VERSION, SERVER_REQUESTS

__all__ = ["METHODS", "NOTIFICATIONS", "PROTOCOL_VERSION", "SERVER_REQUESTS"]
