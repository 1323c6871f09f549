"""Run handles a person can type: ``locus review kqtwbza``, ``locus logs latest``, ``locus
cancel 12``. The daemon resolves them (``locus/runs/resolve``), so the CLI and editors accept
the same ones.

Every run has a short id: seven letters derived from its run id (stable, the same on every
machine and after every restart; letters only, so it never reads as a task number or ``@``,
and no ``i``, ``l`` or ``o`` to misread). A handle names one run, tried in this order:

- the whole run id;
- ``latest`` or ``@``: the run started last;
- a task number (digits only): the latest run of that cloud task;
- the short id, or a unique prefix of it or of a run id (an ambiguous one is an error listing
  the candidates).

Pure: :func:`resolve` takes the runs as listed; stdlib only (the protocol's models import
:func:`short_id`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from locusd.protocol.messages import Run

LATEST = ("latest", "@")
SHOWN = 5
ALPHABET = "abcdefghjkmnpqrstuvwxyz"  # no i, l, o
SHORT = 7  # 23**7: 3.4 billion


def short_id(run_id: str) -> str:
    """The run's short id: seven letters of the SHA-256 of its id."""
    number = int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:8], "big")
    letters = []
    for _ in range(SHORT):
        number, digit = divmod(number, len(ALPHABET))
        letters.append(ALPHABET[digit])
    return "".join(letters)


class HandleError(Exception):
    """The handle names no run, or several."""


def _newest(runs: Sequence[Run]) -> Run:
    return max(runs, key=lambda run: (run.started_at, run.run_id))


def resolve(handle: str, runs: Sequence[Run]) -> str:
    """The run id ``handle`` names among ``runs``; raises HandleError saying why not."""
    if not handle:
        raise HandleError("name a run: its id, a prefix of it, a task number or 'latest'")
    ids = {run.run_id for run in runs}
    if handle in ids:
        return handle
    if handle in LATEST:
        if not runs:
            raise HandleError("there are no runs yet: start one with 'locus run'")
        return _newest(runs).run_id
    if handle.isdigit():
        of_task = [run for run in runs if run.task_id == int(handle)]
        if of_task:
            return _newest(of_task).run_id
    matches = sorted(
        {run_id for run_id in ids if run_id.startswith(handle)}
        | {run.run_id for run in runs if short_id(run.run_id).startswith(handle)}
    )
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise HandleError(f"no run matches {handle!r}: see 'locus runs'")
    shown = ", ".join(matches[:SHOWN]) + (" …" if len(matches) > SHOWN else "")
    raise HandleError(f"{handle!r} matches {len(matches)} runs ({shown}): type more of the id")


def pending_review(runs: Sequence[Run]) -> str:
    """``locus review`` without a handle: the one run awaiting review, else why not."""
    waiting = sorted(run.run_id for run in runs if run.state == "awaiting_review")
    if len(waiting) == 1:
        return waiting[0]
    if not waiting:
        raise HandleError("no run is awaiting review: see 'locus runs'")
    shown = ", ".join(waiting[:SHOWN]) + (" …" if len(waiting) > SHOWN else "")
    raise HandleError(f"{len(waiting)} runs await review ({shown}): name one")
