"""Named points between side effects where a fault test kills the process (SIGKILL), to prove
that what was done there is kept or undone as a whole.

``LOCUS_CRASH_AT=<point>`` in a process's environment makes it SIGKILL itself the first time
it reaches that point (``<point>#2``: the second time). Unset — always, outside those tests —
a point costs one comparison. The cloud's points are :data:`POINTS`; the daemon has its own
table built on the same :class:`CrashPoints` (:mod:`locusd.crashpoints`).
"""

from __future__ import annotations

import os
import signal


class CrashPoints:
    """A table of named points (name → what recovery does after a kill there)."""

    def __init__(self, points: dict[str, str], owner: str) -> None:
        self.points = points
        self._owner = owner
        self._name, _, nth = os.environ.get("LOCUS_CRASH_AT", "").partition("#")
        self._nth = int(nth or 1)
        self._hits: dict[str, int] = {}

    def __call__(self, name: str) -> None:
        """SIGKILL this process here if ``LOCUS_CRASH_AT`` names this point (n-th time)."""
        if not self._name:
            return
        if name not in self.points:
            raise ValueError(f"unknown crash point {name!r}: add it to {self._owner}")
        if name != self._name:
            return
        self._hits[name] = self._hits.get(name, 0) + 1
        if self._hits[name] == self._nth:
            os.kill(os.getpid(), signal.SIGKILL)

    def markdown(self, point: str, what: str) -> str:
        """The points as a docs table with these column headings (a test keeps the page in
        step)."""
        lines = [f"| {point} | {what} |", "| --- | --- |"]
        lines += [f"| `{name}` | {what} |" for name, what in self.points.items()]
        return "\n".join(lines) + "\n"


POINTS: dict[str, str] = {
    "idempotency.answered": "the effect and the key's stored answer are written but not"
    " committed: both roll back, and a retry with the key runs the request once",
    "idempotency.committed": "the effect and its stored answer committed, the answer was never"
    " sent: a retry with the key replays it at once",
}

crashpoint = CrashPoints(POINTS, "cloud_api.crashpoints.POINTS")
