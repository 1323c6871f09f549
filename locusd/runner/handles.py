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
#: The most characters of a title shown to tell runs apart.
TITLE = 40
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
        (r for r in runs if r.run_id.startswith(handle) or short_id(r.run_id).startswith(handle)),
        key=lambda run: run.run_id,
    )
    if len(matches) == 1:
        return matches[0].run_id
    if not matches:
        raise HandleError(f"no run matches {handle!r}: see 'locus runs'")
    raise HandleError(f"{handle!r} matches {len(matches)} runs ({_listed(matches)}): type more")


def _listed(runs: Sequence[Run]) -> str:
    """Runs as a person can tell them apart and type them: short id, then the title."""
    shown = [f"{short_id(run.run_id)} {run.title[:TITLE]!r}" for run in runs[:SHOWN]]
    return ", ".join(shown) + (" …" if len(runs) > SHOWN else "")


def pending_review(runs: Sequence[Run]) -> str:
    """``locus review`` without a handle: the one run awaiting review, else why not."""
    waiting = sorted(
        (run for run in runs if run.state == "awaiting_review"), key=lambda run: run.run_id
    )
    if len(waiting) == 1:
        return waiting[0].run_id
    if not waiting:
        raise HandleError("no run is awaiting review: see 'locus runs'")
    example = short_id(waiting[0].run_id)
    raise HandleError(
        f"{len(waiting)} runs await review ({_listed(waiting)}): name one, e.g."
        f" 'locus review {example}'"
    )
