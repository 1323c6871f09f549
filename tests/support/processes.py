"""Finding processes by a marker in their command line, and waiting for a condition, for tests
about killing process trees (the marker survives PID namespaces, where a PID would not)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path


def processes_named(marker: str) -> list[int]:
    """PIDs (as this process sees them) whose command line contains ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if marker.encode() in cmdline:
            found.append(int(entry.name))
    return found


async def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait for ``condition`` (polled: a process appearing has no event to wait on)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.01)


def parent_of(pid: int) -> int:
    """The parent PID (0 once it has gone); from /proc, after the command name's ")"."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def ancestor_under(pid: int, parent: int) -> int:
    """The ancestor of ``pid`` (or itself) whose parent is ``parent``: which of ``parent``'s
    children a process descends from."""
    while (above := parent_of(pid)) not in (parent, 0):
        pid = above
    if above == 0:
        raise LookupError(f"process {pid} does not descend from {parent}")
    return pid


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
