"""The error a daemon handler raises, and the ``error.data`` it becomes on the wire
(``{kind, retryable}``); the codes themselves are in :mod:`locusd.protocol.codes`."""

from __future__ import annotations

from locusd.protocol.base import Wire
from locusd.protocol.codes import RETRYABLE, Code

__all__ = ["RETRYABLE", "Code", "ErrorData", "LocusError"]


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
