"""The ranking is a pure function of its arguments: properties over generated histories
(deterministic, k respected, only existing paths, an empty query ranks by how often a file
changed, an index kept incrementally ranks as one built whole) and the signals' "why"."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from locusd.graph.history import Commit
from locusd.graph.rank import HistoryIndex, path_words, rank, words

UNIVERSE = ["src/app.py", "src/parser.py", "src/httpClient.ts", "docs/guide.md", "old/gone.c"]
VOCABULARY = ["parser", "guide", "client", "http", "retry", "colour", "the", "app", "docs"]

paths_now = st.lists(st.sampled_from(UNIVERSE[:4]), min_size=1, unique=True)
commits = st.lists(
    st.builds(
        Commit,
        sha=st.uuids().map(str),
        time=st.integers(0, 10**9),
        message=st.lists(st.sampled_from(VOCABULARY), max_size=6).map(" ".join),
        paths=st.lists(st.sampled_from(UNIVERSE), unique=True).map(lambda p: tuple(sorted(p))),
    ),
    max_size=25,
)
queries = st.lists(st.sampled_from(VOCABULARY), max_size=5).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(paths_now, commits, queries, st.integers(0, 6))
def test_deterministic_k_respected_and_only_existing_paths(
    paths: list[str], history: list[Commit], query: str, k: int
) -> None:
    first = rank(paths, HistoryIndex(history), query, k=k)
    again = rank(list(reversed(paths)), HistoryIndex(history), query, k=k)
    assert first == again
    chosen = [hint.path for hint in first]
    assert len(chosen) <= k and len(set(chosen)) == len(chosen)
    assert set(chosen) <= set(paths)
    assert all(hint.why for hint in first)


@settings(max_examples=150, deadline=None)
@given(paths_now, commits)
def test_an_empty_query_ranks_by_how_often_each_file_changed(
    paths: list[str], history: list[Commit]
) -> None:
    same_time = [Commit(c.sha, 0, c.message, c.paths) for c in history]
    counts = {p: sum(p in c.paths for c in same_time) for p in paths}
    expected = sorted((p for p in paths if counts[p]), key=lambda p: (-counts[p], p))
    assert [hint.path for hint in rank(paths, HistoryIndex(same_time), "", k=10)] == expected


@settings(max_examples=100, deadline=None)
@given(paths_now, commits, commits, queries)
def test_an_index_kept_incrementally_ranks_as_one_built_whole(
    paths: list[str], older: list[Commit], newer: list[Commit], query: str
) -> None:
    kept = HistoryIndex(older)
    kept.add(newer)
    assert rank(paths, kept, query) == rank(paths, HistoryIndex([*older, *newer]), query)


def test_words_split_paths_and_camel_case_and_drop_noise() -> None:
    assert path_words("src/httpClient/URLParser_v2.ts") == [
        *("src", "http", "client", "url", "parser", "ts"),
    ]
    assert words("Fix the bug in #1234 (closes 99)") == ["bug"]


def test_each_signal_says_why() -> None:
    history = HistoryIndex(
        [
            Commit("1", 100, "Retry flaky downloads", ("src/net.py", "tests/test_net.py")),
            Commit("2", 200, "Backoff for retry of downloads", ("src/net.py", "src/wait.py")),
            Commit("3", 300, "Guide wording", ("docs/guide.md",)),
        ]
    )
    paths = ["src/net.py", "src/wait.py", "tests/test_net.py", "docs/guide.md", "src/parser.py"]
    hints = {h.path: h for h in rank(paths, history, "Downloads need a retry", "parser too")}
    assert next(iter(hints)) == "src/net.py"
    named = rank(paths, history, "Downloads need a retry", "see wait.py, not net.pyc")
    assert (named[0].path, named[0].why[0]) == ("src/wait.py", "named in the task")
    assert "touched by 2 similar earlier commits/tasks" in hints["src/net.py"].why
    assert "path matches 'parser'" in hints["src/parser.py"].why
    assert "changed with src/net.py in 1 commit" in hints["tests/test_net.py"].why
    assert "docs/guide.md" in hints and hints["docs/guide.md"].why == (
        "changed in 1 earlier commits",
    )


def test_a_rename_added_later_carries_the_history_to_the_new_name() -> None:
    index = HistoryIndex([Commit("1", 0, "Tune the retry loop", ("src/old.py",))])
    index.add([Commit("2", 1, "Move it", ("src/new.py",), renames=(("src/old.py", "src/new.py"),))])
    hints = rank(["src/new.py"], index, "retry loop")
    assert [(h.path, h.why[0]) for h in hints] == [
        ("src/new.py", "touched by 1 similar earlier commit/tasks")
    ]


@pytest.mark.timeout(60)  # not a speed bar: a quadratic scan of these texts takes hours
@pytest.mark.parametrize("unit", ["1", "a.", "Ab", "x1", "A"])
def test_a_megabyte_of_hostile_task_text_is_read_in_linear_time(unit: str) -> None:
    text = unit * (1_000_000 // len(unit))
    hints = rank(["src/a.py"], HistoryIndex([Commit("1", 0, text, ("src/a.py",))]), text)
    assert [hint.path for hint in hints] == ["src/a.py"]


def test_no_message_text_reaches_a_hint() -> None:
    """A hint's why is paths, counts and words the task shares with a path: what an earlier
    commit's message says never leaves in it, however similar the task is."""
    canary = "Quokkacanary"
    history = HistoryIndex(
        [Commit(str(n), n, f"{canary} secret body {n}", ("src/a.py", "src/b.py")) for n in range(5)]
    )
    hints = rank(["src/a.py", "src/b.py", "docs/c.md"], history, f"{canary} secret", "src")
    assert hints and all(canary.lower() not in repr(hint).lower() for hint in hints)
    assert all("secret" not in repr(hint) for hint in hints)
