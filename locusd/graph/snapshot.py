"""One checkout's whole upload, as ``locus graph show`` prints it and the daemon sends it: the
structural index (:mod:`locusd.graph.index`), the history (:mod:`locusd.graph.history`, at most
:data:`~locusd.graph.history.MAX_COMMITS` newest commits, as the hints read it) and the finished
tasks' files, cut to size by :func:`~locusd.graph.payload.build_payload`.

Everything here is read from the repository's committed state and the state dir, so the CLI
(no daemon) and the daemon build the same bytes from the same checkout."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from locusd.git.repo import Repository
from locusd.graph.history import MAX_COMMITS, read_history, read_task_files
from locusd.graph.index import Indexed, index_checkout
from locusd.graph.payload import Payload, build_payload
from locusd.graph.rank import HistoryIndex
from locusd.graph.stats import history_stats


@dataclass(frozen=True)
class Snapshot:
    indexed: Indexed
    payload: Payload


def snapshot(checkout: Path, state_dir: Path, *, save: bool = True) -> Snapshot:
    """The upload for ``checkout`` as it is committed now; ``save=False`` leaves the saved
    index state as it was."""
    indexed = index_checkout(checkout, state_dir, save=save)
    repo = Repository(checkout)
    if indexed.head is None:
        return Snapshot(indexed, build_payload(indexed.structure))
    history = HistoryIndex(read_history(repo, limit=MAX_COMMITS))
    stats = history_stats(history, read_task_files(repo))
    return Snapshot(indexed, build_payload(indexed.structure, stats))


def fingerprint(checkout: Path) -> str:
    """What an upload of ``checkout`` depends on besides the state dir: ``HEAD`` and the tips
    of the ``locus/`` branches (accepted changes). The same fingerprint, the same upload."""
    repo = Repository(checkout)
    tips = repo.output("for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/locus/")
    return f"{repo.resolve('HEAD')}\n{tips}"
