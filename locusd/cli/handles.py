"""Run handles a person can type: ``locus review 4f2``, ``locus logs latest``, ``locus cancel 12``.

A handle names one run of the daemon's list, tried in this order:

- the whole run id;
- ``latest`` or ``@``: the run started last;
- a task number (digits only): the latest run of that cloud task;
- a unique prefix of a run id (an ambiguous one is an error listing the candidates).

Pure: :func:`resolve` takes the runs as listed; the commands fetch the list first
(:func:`resolved`), then speak the whole id to the daemon, so editors and the protocol keep
exact ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # `locus status` imports this module through common.py: keep it light
    from locusd.cli.rpc import DaemonClient
    from locusd.protocol.messages import Run

LATEST = ("latest", "@")
SHOWN = 5


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
    matches = sorted(run_id for run_id in ids if run_id.startswith(handle))
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


async def resolved(client: DaemonClient, handle: str | None) -> str:
    """The whole run id for ``handle`` (None: the run awaiting review)."""
    from locusd.protocol.base import Empty
    from locusd.protocol.messages import RunList

    runs = (await client.call("locus/runs/list", Empty(), RunList)).runs
    return pending_review(runs) if handle is None else resolve(handle, runs)
