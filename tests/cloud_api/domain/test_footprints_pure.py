"""Predicted footprints and overlaps (``cloud_api/domain/footprints.py``), pure: no database."""

from __future__ import annotations

import subprocess
import sys

from cloud_api.domain.footprints import (
    FLOOR,
    SHOWN,
    EarlierTask,
    footprint,
    model,
    overlap_event,
    overlaps,
)

FILES = ["src/parser.py", "src/lexer.py", "docs/index.md", "README.md", "src/app.py"]
EARLIER = [
    EarlierTask("1", "parser crashes on an empty file", ("src/parser.py", "src/lexer.py"), 10),
    EarlierTask("2", "docs: rebuild the index page", ("docs/index.md",), 20),
]
GRAPH = model(FILES, EARLIER, [("src/parser.py", "src/lexer.py", 4)])


def test_similar_tasks_predict_the_files_earlier_ones_touched() -> None:
    assert footprint(GRAPH, "fix the parser crash", "") == {"src/parser.py", "src/lexer.py"}
    assert footprint(GRAPH, "parser: handle empty input", "") == {"src/parser.py", "src/lexer.py"}
    assert footprint(GRAPH, "update the docs index", "") == {"docs/index.md"}


def test_a_task_whose_text_matches_nothing_has_an_empty_footprint() -> None:
    """Never "the most changed files": the prior alone stays under the floor."""
    assert footprint(GRAPH, "", "") == frozenset()
    assert footprint(GRAPH, "make it faster", "please") == frozenset()
    assert footprint(GRAPH, "the and of", "") == frozenset()


def test_a_path_word_alone_is_not_enough() -> None:
    """'app' matches src/app.py's path only (0.35 < FLOOR): no earlier task, no name."""
    assert FLOOR > 0.35
    assert footprint(GRAPH, "the app", "") == frozenset()
    assert footprint(GRAPH, "tidy app.py", "") == {"src/app.py"}  # named: the strongest hint


def test_no_graph_no_footprint() -> None:
    assert footprint(model([], [], []), "fix the parser crash", "") == frozenset()


def test_overlaps_name_the_other_tasks_and_the_shared_files() -> None:
    mine = frozenset({"src/parser.py", "src/lexer.py"})
    others = {7: frozenset({"src/lexer.py", "docs/index.md"}), 3: frozenset({"README.md"})}
    assert overlaps(mine, others) == {7: ("src/lexer.py",)}
    assert overlaps(frozenset(), others) == {}
    many = frozenset(f"f{i}" for i in range(20))
    assert overlaps(many, {1: many})[1] == tuple(sorted(many))[:SHOWN]
    assert overlap_event({7: ("src/lexer.py",)}) == {
        "overlaps": [{"task_id": 7, "files": ["src/lexer.py"]}]
    }


def test_the_cloud_ranks_without_the_daemons_git_layer() -> None:
    """The footprints import the ranker, never locusd.git or GitPython."""
    code = (
        "import sys, cloud_api.dispatch.footprints\n"
        "bad = sorted(m for m in sys.modules if m == 'git' or m.startswith(('git.', 'locusd.git')))\n"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
