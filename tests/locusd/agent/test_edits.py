"""The read/edit tools' text logic (pure), and an edit applied through the confinement."""

from __future__ import annotations

from pathlib import Path

import pytest

from locusd.agent.confine import Confined
from locusd.agent.edits import EditError, apply_edit, closest_match, number_lines

SOURCE = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"


def test_number_lines_and_ranges() -> None:
    assert number_lines(SOURCE, 1, 2) == "1\tdef add(a, b):\n2\t    return a - b"
    assert number_lines(SOURCE, 5).splitlines()[0] == "5\tdef sub(a, b):"
    with pytest.raises(EditError, match="past the end"):
        number_lines(SOURCE, 40)


def test_unique_edit_applies() -> None:
    fixed, count = apply_edit(
        SOURCE, "def add(a, b):\n    return a - b", "def add(a, b):\n    return a + b"
    )
    assert count == 1 and "return a + b" in fixed and fixed.count("return a - b") == 1


def test_ambiguous_edit_is_refused_unless_replace_all() -> None:
    with pytest.raises(EditError, match="occurs 2 times"):
        apply_edit(SOURCE, "return a - b", "return 0")
    replaced, count = apply_edit(SOURCE, "return a - b", "return 0", replace_all=True)
    assert count == 2 and "a - b" not in replaced


def test_a_miss_names_the_closest_text() -> None:
    with pytest.raises(EditError, match=r"closest text is at line 2:\n    return a - b"):
        apply_edit(SOURCE, "    return a -  b", "x")
    assert closest_match(SOURCE, "completely unrelated words here") is None
    with pytest.raises(EditError, match="not found"):
        apply_edit(SOURCE, "zzz qqq", "x")


def test_empty_and_no_op_edits_are_refused() -> None:
    with pytest.raises(EditError, match="empty"):
        apply_edit(SOURCE, "", "x")
    with pytest.raises(EditError, match="the same"):
        apply_edit(SOURCE, "add", "add")


def test_edit_through_the_confinement(tmp_path: Path) -> None:
    (tmp_path / "calc.py").write_text(SOURCE)
    fs = Confined(tmp_path)
    text = fs.read_bytes("calc.py").decode()
    fixed, _ = apply_edit(
        text, "def add(a, b):\n    return a - b", "def add(a, b):\n    return a + b"
    )
    fs.write_bytes("calc.py", fixed.encode())
    assert (tmp_path / "calc.py").read_text().startswith("def add(a, b):\n    return a + b")
