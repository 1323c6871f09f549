"""The history part of an upload (:class:`~locusd.graph.payload.HistoryStats`) from the history
the hints already read: per path how often and when it changed, which files change together,
and per finished task the files its accepted commit touched. Pure: no IO.

Counts, times and paths only — the messages the history holds never reach it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from locusd.graph.payload import HistoryStats, PathHistory
from locusd.graph.rank import HistoryIndex

#: A pair of files changed together fewer times than this is left out: once is chance, and a
#: repository has far more such pairs than the upload has room for.
MIN_TOGETHER = 2


def history_stats(
    history: HistoryIndex,
    tasks: Mapping[int, Sequence[str]] | None = None,
    *,
    min_together: int = MIN_TOGETHER,
) -> HistoryStats:
    """What ``history`` says about each path, with ``tasks`` (task id → files touched)."""
    paths = {
        path: PathHistory(
            len(numbers),
            datetime.fromtimestamp(max(history.records[n].time for n in numbers), UTC),
        )
        for path, numbers in history.touches.items()
        if numbers
    }
    co_change = {
        (a, b): count
        for a, others in history.together.items()
        for b, count in others.items()
        if a < b and count >= min_together
    }
    return HistoryStats(co_change=co_change, paths=paths, tasks=dict(tasks or {}))
