"""Running out of descriptors is logged once per burst, not once per refused accept: asyncio's
own exception handler and a real logger, with the filter's clock moved by the test."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Iterator

import pytest

from cloud_api import accept_log
from cloud_api.accept_log import MESSAGE, AcceptExhaustionFilter


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def asyncio_log() -> Iterator[tuple[logging.Logger, Records]]:
    """asyncio's logger with only the filter a test adds (others restored afterwards)."""
    logger = logging.getLogger("asyncio")
    saved = logger.filters[:]
    logger.filters.clear()
    records = Records()
    logger.addHandler(records)
    try:
        yield logger, records
    finally:
        logger.removeHandler(records)
        logger.filters[:] = saved


def refused_accept(loop: asyncio.AbstractEventLoop, listener: socket.socket) -> None:
    """What asyncio's selector loop reports when accept() fails with EMFILE."""
    loop.call_exception_handler(
        {
            "message": MESSAGE,
            "exception": OSError(errno.EMFILE, "Too many open files"),
            "socket": listener,
        }
    )


def test_a_burst_of_refused_accepts_is_one_line(
    asyncio_log: tuple[logging.Logger, Records],
) -> None:
    logger, records = asyncio_log
    now = [0.0]
    logger.addFilter(AcceptExhaustionFilter(quiet=60, clock=lambda: now[0]))
    loop = asyncio.new_event_loop()
    with socket.socket() as listener:
        try:
            for _ in range(500):
                refused_accept(loop, listener)
                now[0] += 0.01
            assert len(records.messages) == 1 and records.messages[0].startswith(MESSAGE)
            # Other asyncio errors are not affected.
            loop.call_exception_handler({"message": "something else"})
            assert records.messages[-1] == "something else"
            # The next burst, a minute later, logs once again and says how many were dropped.
            now[0] += 60
            for _ in range(3):
                refused_accept(loop, listener)
        finally:
            loop.close()
    exhaustion = [m for m in records.messages if m.startswith(MESSAGE)]
    assert len(exhaustion) == 2
    assert "499 more since the last one not logged" in exhaustion[1]


def test_install_adds_the_filter_once(asyncio_log: tuple[logging.Logger, Records]) -> None:
    logger, _ = asyncio_log
    first = accept_log.install()
    assert accept_log.install() is first
    assert logger.filters == [first]
