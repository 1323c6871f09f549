"""Predicted footprints of tasks and their overlaps, for conflict-aware dispatch. PURE: no IO.

A task's footprint is the set of files it will likely touch, ranked by the daemon's own file
ranker (:func:`locusd.graph.rank.rank`, imported without the daemon's git layer) from the
task's title and description against the project's merged knowledge graph: the ``file`` nodes
are the candidate paths, each ``task`` node is an earlier task whose text (from the tasks
table) touched its files, and each ``co_change`` edge counts files that changed together.
See docs/dispatch.md, "Conflict-aware dispatch".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from locusd.graph.rank import HistoryIndex, rank
from locusd.graph.records import Commit


class OverlapPolicy(StrEnum):
    """What a claim does with a queued task whose footprint overlaps a held task's."""

    AVOID = "avoid"  # pass over it; it stays queued until the overlap is gone
    WARN = "warn"  # hand it out, and record the overlap as a task event
    IGNORE = "ignore"  # do not look (dispatch as before)


#: Files kept per footprint at most (the hints' k).
K = 10
#: A file enters a footprint only above this score. The ranker's signals are weighted path
#: 0.35, similar 1.0, named 1.0, co-change 0.3, prior 0.15 (locusd.graph.rank.Weights). With no
#: word of the task matching, only the prior can score (≤ 0.15), and co-change ≤ 0.3 comes only
#: from files the text matched: 0.5 is above both together, so every file in a footprint owes
#: its place to the task's text, and a task whose text matches nothing has an EMPTY footprint
#: (never "the most changed files", which would make every task overlap every other). A path
#: word alone (≤ 0.35) is not enough either: a word such as "test" or "src" matches half a
#: tree; it takes an earlier similar task, the file's name, or a path match corroborated by
#: co-change or history.
FLOOR = 0.5
#: And at least this share of the best file's score: the signals are each scaled to [0, 1], so
#: a weak word shared by many paths ("py" in "tidy app.py") plus co-change and prior can pass
#: the floor; a file far below the task's best match rides on such a word, not on the task.
RELATIVE = 0.5
#: Files named per overlap in an event or on a card.
SHOWN = 5

Footprint = frozenset[str]


@dataclass(frozen=True)
class EarlierTask:
    """A ``task`` node of the graph: the text of the task (empty if unknown) and the files
    its accepted patch touched; ``time`` in seconds (newer tasks weigh more)."""

    key: str
    text: str
    touched: tuple[str, ...]
    time: int = 0


@dataclass(frozen=True)
class Model:
    """What the ranker needs of a project's graph, built once per graph version."""

    paths: tuple[str, ...]
    history: HistoryIndex


def model(
    files: Iterable[str], earlier: Sequence[EarlierTask], co_change: Iterable[tuple[str, str, int]]
) -> Model:
    """The ranking model of a graph: its file paths (sorted), its earlier tasks oldest first
    as history records, and its co-change counts."""
    paths = tuple(sorted(set(files)))
    records = [
        Commit(sha=task.key, time=task.time, message=task.text, paths=tuple(sorted(task.touched)))
        for task in sorted(earlier, key=lambda t: (t.time, t.key))
    ]
    history = HistoryIndex(records)
    for a, b, count in co_change:
        history.add_together(a, b, count)
    return Model(paths, history)


def footprint(graph: Model, title: str, description: str) -> Footprint:
    """The files the task will likely touch: the ranker's top :data:`K` above :data:`FLOOR`
    and within :data:`RELATIVE` of the best."""
    if not graph.paths:
        return frozenset()
    hints = rank(graph.paths, graph.history, title, description, k=K)
    cut = max(FLOOR, RELATIVE * max((hint.score for hint in hints), default=0.0))
    return frozenset(hint.path for hint in hints if hint.score > FLOOR and hint.score >= cut)


def overlaps(mine: Footprint, others: Mapping[int, Footprint]) -> dict[int, tuple[str, ...]]:
    """Task id → the files ``mine`` shares with it (sorted, at most :data:`SHOWN`), for each
    of ``others`` it shares any with."""
    shared = {task: sorted(mine & theirs) for task, theirs in others.items()}
    return {task: tuple(files[:SHOWN]) for task, files in sorted(shared.items()) if files}


def overlap_event(found: Mapping[int, Sequence[str]]) -> dict[str, object]:
    """The ``data`` of an ``overlap`` task event: the other tasks and the files shared."""
    return {"overlaps": [{"task_id": task, "files": list(files)} for task, files in found.items()]}


def may_overlap(task_id: object, files: Sequence[str]) -> str:
    """What a card and a timeline say of one overlap: ``may overlap #12: src/parser.py``
    (plain text: the file names are a worker's upload, the template escapes them)."""
    return f"may overlap #{task_id}: {', '.join(files)}"


def pairwise(found: Mapping[int, Footprint]) -> dict[int, dict[int, tuple[str, ...]]]:
    """Task id → the other tasks of ``found`` it overlaps, with the shared files."""
    result = {}
    for task, mine in found.items():
        shared = overlaps(mine, {other: f for other, f in found.items() if other != task})
        if shared:
            result[task] = shared
    return result
