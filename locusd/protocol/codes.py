"""Locus error codes, in the JSON-RPC server-error range -32000 to -32099, each with a kind and
whether a retry can help; sent as ``error.data = {kind, retryable}``.

Plain numbers, apart from :mod:`locusd.protocol.errors` (the exception and its pydantic data
model), so a client can read an error without importing pydantic."""

from __future__ import annotations

from enum import IntEnum


class Code(IntEnum):
    # From -32020: below that, LSP already uses -32001 (unknown) and -32002 (not initialized).
    # A number, once published, is never reused: -32025 and -32030 were codes nothing raised.
    AUTH_REQUIRED = -32020
    AUTH_EXPIRED = -32021
    RUN_NOT_FOUND = -32022
    INVALID_RUN_STATE = -32023
    REVIEW_STALE = -32024
    UNSUPPORTED_PROTOCOL = -32026
    TASK_NOT_FOUND = -32027
    CLOUD_UNAVAILABLE = -32028
    INVALID_ARGUMENT = -32029  # params that validate but make no sense (e.g. not a git repo)
    INVALID_TASK_STATE = -32031  # a task action its status does not allow (the cloud's 409)


#: Codes where trying again later can succeed without the user changing anything.
RETRYABLE = {Code.CLOUD_UNAVAILABLE}
