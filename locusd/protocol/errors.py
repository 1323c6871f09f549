"""Locus error codes, in the JSON-RPC server-error range -32000 to -32099, each with a kind and
whether a retry can help; sent as ``error.data = {kind, retryable}``."""

from __future__ import annotations

from enum import IntEnum

from locusd.protocol.base import Wire


class Code(IntEnum):
    AUTH_REQUIRED = -32001
    AUTH_EXPIRED = -32002
    RUN_NOT_FOUND = -32003
    INVALID_RUN_STATE = -32004
    REVIEW_STALE = -32005
    MERGE_CONFLICT = -32006
    UNSUPPORTED_PROTOCOL = -32007
    TASK_NOT_FOUND = -32008
    CLOUD_UNAVAILABLE = -32009
    INVALID_REQUEST = -32010  # params that validate but make no sense (e.g. not a git repo)
    APPROVAL_NOT_FOUND = -32011


#: Codes where trying again later can succeed without the user changing anything.
RETRYABLE = {Code.CLOUD_UNAVAILABLE}


class ErrorData(Wire):
    kind: str
    retryable: bool


class LocusError(Exception):
    """Raised by a handler; the server turns it into a JSON-RPC error response."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def data(self) -> ErrorData:
        return ErrorData(kind=self.code.name.lower(), retryable=self.code in RETRYABLE)
