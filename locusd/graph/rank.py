"""File hints for a task: the top-k files it will likely touch, each with why. PURE: no IO.

Signals (docs/graph.md, "Hints"): the task's words against each path's words (BM25 over path
tokens), against earlier commits' and tasks' text (BM25 over messages; the files the most
similar ones touched, time-decayed), co-change with the best of those files, and a small
decayed-frequency prior. Each signal is scaled to [0, 1] over the candidates, then weighted.
Commit messages stay in this process: nothing here is uploaded.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from locusd.graph.records import Commit, follow_renames

# Camel humps, words, digits. Each alternative consumes what it starts on and none backtracks
# more than its own run, so a 1 MB task text is read in linear time (a run of digits matched
# by its own alternative, not retried from each of its positions).
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]++[A-Za-z]*+")
_STOP_WORDS = (
    "a an and are as at be by can do for from has have if in into is it its not of on or so "
    "that the this to was we were when which will with use used using should now also more "
    "no all only add adds added make makes new fix fixes fixed update updates updated change "
    "changes changed remove removes removed bump bumps signed off co authored https www "
    "com github pull issue issues pr closes close ref refs see"
)
_STOP = frozenset(_STOP_WORDS.split())
_NOT_IN_NAME = re.compile(r"[^\w.\-]+")  # what separates file names in text
_SUFFIXES = ("ing", "ies", "es", "ed", "s")
_DAY_S = 86400.0


def _stem(word: str) -> str:
    """A crude suffix strip, so "parsing" and "parser's" meet "parse"/"parser" halfway."""
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def words(text: str) -> list[str]:
    """Lower-cased, stemmed words of ``text``: split on anything not a letter or digit and on
    camelCase humps; stop words, one-letter words and bare numbers dropped."""
    found = (match.lower() for match in _WORD.findall(text))
    kept = (word for word in found if len(word) > 1 and not word.isdigit() and word not in _STOP)
    return [_stem(word) for word in kept]


def path_words(path: str) -> list[str]:
    """A path's words: its directories, its name and extension (``/ _ - .`` and camelCase)."""
    return list(_path_words(path))


@functools.lru_cache(maxsize=1 << 16)
def _path_words(path: str) -> tuple[str, ...]:
    """Cached: every ranking splits every candidate path again, and splitting was most of a
    ranking's time over a few thousand paths (the cloud ranks each queued task's footprint)."""
    return tuple(words(path.replace("/", " ").replace(".", " ")))


class Bm25:
    """Okapi BM25 over documents added one by one (k1 1.2, b 0.75). Short and incremental:
    the packaged ones rebuild their whole index when a document is added."""

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self.lengths: list[int] = []

    def add(self, tokens: Iterable[str]) -> int:
        """Adds a document; returns its number."""
        doc = len(self.lengths)
        counts = Counter(tokens)
        for token, count in counts.items():
            self.postings[token].append((doc, count))
        self.lengths.append(sum(counts.values()))
        return doc

    def scores(self, query: Iterable[str]) -> dict[int, float]:
        """Document number → BM25 score, for the documents sharing a word with ``query``."""
        total = len(self.lengths)
        average = sum(self.lengths) / total if total else 1.0
        found: dict[int, float] = defaultdict(float)
        for token in set(query):
            posting = self.postings.get(token, [])
            idf = math.log(1 + (total - len(posting) + 0.5) / (len(posting) + 0.5))
            for doc, count in posting:
                norm = self.k1 * (1 - self.b + self.b * self.lengths[doc] / average)
                found[doc] += idf * count * (self.k1 + 1) / (count + norm)
        return found


@dataclass(frozen=True)
class Weights:
    """How the signals combine; tuned on pallets/flask (docs/benchmarks.md, "File hints")."""

    path: float = 0.35
    similar: float = 1.0
    named: float = 1.0  # the task names the file ("fix doc.go", "Update index.rst")
    cochange: float = 0.3
    prior: float = 0.15
    similar_k: int = 25  # earlier commits/tasks whose files count
    seeds: int = 5  # best files whose co-changed files are pulled in
    half_life_days: float = 365.0


@dataclass(frozen=True)
class Hint:
    path: str
    score: float
    why: tuple[str, ...]


class HistoryIndex:
    """Earlier commits and finished tasks (text → files touched, time), indexed for
    :func:`rank`. In memory only; ``add`` keeps it current commit by commit."""

    def __init__(self, records: Sequence[Commit] = ()) -> None:
        self._empty()
        self.add(records)

    def _empty(self) -> None:
        self.records: list[Commit] = []
        self.text = Bm25()
        self.touches: dict[str, list[int]] = defaultdict(list)
        self.together: dict[str, Counter[str]] = defaultdict(Counter)
        self.latest = 0.0

    def add(self, records: Sequence[Commit]) -> None:
        """Appends newer records (oldest first); a rename among them re-reads every record
        under the newest names, so a moved file keeps its history."""
        if any(record.renames for record in records):
            everything = follow_renames([*self.records, *records])
            self._empty()
            records = everything
        for record in records:
            number = self.text.add(words(record.message))
            self.records.append(record)
            self.latest = max(self.latest, float(record.time))
            for path in record.paths:
                self.touches[path].append(number)
                self.together[path].update(other for other in record.paths if other != path)

    def add_together(self, a: str, b: str, count: int) -> None:
        """Co-change counted elsewhere (the cloud's ``co_change`` graph edges, which carry a
        count, not the commits): ``a`` and ``b`` changed together ``count`` more times."""
        if a != b and count > 0:
            self.together[a][b] += count
            self.together[b][a] += count

    def decay(self, number: int, half_life_days: float) -> float:
        """A record's weight: halved every ``half_life_days`` before the newest record (not
        the clock, so ranking stays a function of its arguments)."""
        age = self.latest - self.records[number].time
        return float(0.5 ** (age / (half_life_days * _DAY_S)))


def _scaled(scores: dict[str, float]) -> dict[str, float]:
    top = max(scores.values(), default=0.0)
    return {path: score / top for path, score in scores.items()} if top > 0 else {}


def path_scores(paths: Sequence[str], query: Sequence[str]) -> dict[str, float]:
    """BM25 of the query over each path's words (also the "paths alone" baseline)."""
    index = Bm25()
    for path in paths:
        index.add(path_words(path))
    return {paths[doc]: score for doc, score in index.scores(query).items()}


def named(paths: Sequence[str], text: str) -> list[str]:
    """The paths whose file name (with its extension, e.g. ``doc.go``) the text mentions as a
    word of its own: the strongest hint a task can give."""
    mentioned = {word.strip(".-") for word in _NOT_IN_NAME.split(text.lower()) if "." in word}
    return [path for path in paths if path.rsplit("/", 1)[-1].lower() in mentioned]


def frequency(history: HistoryIndex, paths: Iterable[str]) -> dict[str, int]:
    """How many earlier commits touched each path (the most-frequently-changed baseline)."""
    return {path: len(history.touches[path]) for path in paths if history.touches.get(path)}


def rank(
    paths: Sequence[str],
    history: HistoryIndex,
    title: str,
    description: str = "",
    k: int = 10,
    weights: Weights = Weights(),
) -> list[Hint]:
    """The ``k`` files of ``paths`` the task most likely touches, best first, ties by path."""
    existing = set(paths)
    text = f"{title}\n{description}"
    query = words(text)
    why: dict[str, list[str]] = defaultdict(list)
    base: dict[str, float] = defaultdict(float)
    for path, score in _scaled(path_scores(paths, query)).items():
        base[path] += weights.path * score
        matched = sorted(set(query) & set(path_words(path)))[:3]
        why[path].append(f"path matches {', '.join(repr(word) for word in matched)}")
    for path, (score, count) in _similar(history, existing, query, weights).items():
        base[path] += weights.similar * score
        why[path].append(f"touched by {count} similar earlier commit{'s' * (count > 1)}/tasks")
    for path in named(paths, text):
        base[path] += weights.named
        why[path].insert(0, "named in the task")
    seeds = sorted(base, key=lambda p: (-base[p], p))[: weights.seeds]
    for path, (score, count, seed) in _cochanged(history, existing, base, seeds).items():
        base[path] += weights.cochange * score
        why[path].append(f"changed with {seed} in {count} commit{'s' * (count > 1)}")
    for path, score in _prior(history, existing, weights).items():
        base[path] += weights.prior * score
        if path not in why or not query:
            why[path].append(f"changed in {len(history.touches[path])} earlier commits")
    chosen = sorted(base, key=lambda p: (-base[p], p))[: max(k, 0)]
    return [Hint(path, round(base[path], 6), tuple(why[path])) for path in chosen]


def _similar(
    history: HistoryIndex, existing: set[str], query: list[str], weights: Weights
) -> dict[str, tuple[float, int]]:
    """Path → (scaled score, how many of the best-matching earlier records touched it): each
    of the ``similar_k`` best gives its BM25 score, decayed, shared by the files it touched."""
    scores = history.text.scores(query)
    best = sorted(scores, key=lambda n: (-scores[n], -n))[: weights.similar_k]
    summed: dict[str, float] = defaultdict(float)
    counts: Counter[str] = Counter()
    for number in best:
        touched = [path for path in history.records[number].paths if path in existing]
        share = scores[number] * history.decay(number, weights.half_life_days)
        for path in touched:
            summed[path] += share / math.sqrt(len(touched))
            counts[path] += 1
    return {path: (score, counts[path]) for path, score in _scaled(summed).items()}


def _cochanged(
    history: HistoryIndex, existing: set[str], base: dict[str, float], seeds: list[str]
) -> dict[str, tuple[float, int, str]]:
    """Path → (scaled score, commits shared with its strongest partner, that partner): each
    seed passes its score on in proportion to how often the path changed with it."""
    summed: dict[str, float] = defaultdict(float)
    partner: dict[str, tuple[int, str]] = {}
    for seed in seeds:
        changes = len(history.touches.get(seed, ())) or 1
        for path, count in history.together.get(seed, Counter()).items():
            if path in existing and path != seed:
                summed[path] += base[seed] * count / changes
                partner[path] = max(partner.get(path, (0, "")), (count, seed))
    return {path: (score, *partner[path]) for path, score in _scaled(summed).items()}


def _prior(history: HistoryIndex, existing: set[str], weights: Weights) -> dict[str, float]:
    """Path → scaled ``log(1 + Σ decay)`` over the records that touched it."""
    decayed = {
        path: sum(history.decay(number, weights.half_life_days) for number in numbers)
        for path, numbers in history.touches.items()
        if path in existing and numbers
    }
    return _scaled({path: math.log1p(score) for path, score in decayed.items()})
