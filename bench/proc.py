"""A process as ``/proc`` shows it (Linux): its status fields and the CPU time it has used."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def status(path: Path) -> dict[str, str]:
    """A ``/proc/<pid>/status`` (or ``/proc/<pid>/task/<tid>/status``) file as its fields:
    ``VmRSS`` → ``"70912 kB"``, ``Threads`` → ``"2"``."""
    fields: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid``, every thread, so far (utime + stime)."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / TICKS
