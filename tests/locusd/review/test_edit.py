"""``e`` in ``locus review``: the person edits the hunk in ``git add -p``'s form. On random
texts: the hunk as shown, unchanged, is an accept; with its ``+`` lines deleted and its ``-``
lines turned to context it gives the base; any new ``+`` lines land in that one place and
nowhere else. An edit that changed the old side does not apply and is refused — whatever the
lines hold (a forged ``diff --git`` header stays text of that one file)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from locusd.review import (
    Accept,
    Decision,
    Edit,
    InvalidDecision,
    accepted_patch,
    apply,
    parse,
)
from locusd.review.model import edited_hunk, hunk_from
from tests.locusd.review.difftext import git_diff
from tests.locusd.review.difftext import split as lines_of
from tests.locusd.review.test_model import PATH, PROPERTY, Case, cases, decided


def shown(lines: tuple[str, ...]) -> str:
    """The editor's text: git's guide as ``#`` lines, then the hunk, newline-ended."""
    return "# Manual hunk edit mode\n" + "".join(f"{line}\n" for line in lines) + "# ---\n"


@PROPERTY
@given(cases(unique=False), st.data())
def test_edits_apply_only_where_the_hunk_is(case: Case, data: st.DataObject) -> None:
    review = parse(case.diff)
    for hunk in review.hunks:
        assert hunk_from(hunk.file, hunk.id, hunk.header, hunk.lines) == hunk
        assert edited_hunk(hunk, shown(hunk.lines)) == Accept()
        undone = tuple(
            " " + line[1:] if line[:1] == "-" else line
            for line in hunk.lines
            if line[:1] != "+" and not line.startswith("\\")
        )
        choices: dict[str, Decision] = {hunk.id: edited_hunk(hunk, shown(undone))}
        if not any(line.startswith("\\") for line in hunk.lines):
            # (an edit cannot say "no newline at the end": see Edit)
            assert apply(case.old_text, review.files[0], decided(review, choices)) == case.old_text
        added = data.draw(st.lists(st.sampled_from(["x", "", "diff --git a/../e b/../e"])))
        more = tuple(f"+{line}" for line in added)
        choice = edited_hunk(
            hunk,
            shown((*hunk.lines, *more))
            if not added
            else shown(tuple(line for line in hunk.lines if not line.startswith("\\")) + more),
        )
        if added:
            assert isinstance(choice, Edit) and list(choice.new_text_lines[-len(added) :]) == added
        patch = accepted_patch(decided(review, {hunk.id: choice}))
        assert [f.path for f in parse(patch).files] == ([PATH] if patch else [])


def test_an_edit_that_changes_the_old_side_does_not_apply() -> None:
    (hunk,) = parse(git_diff(PATH, lines_of("a\nb\nc\n"), lines_of("a\nB\nc\n"))).hunks
    assert edited_hunk(hunk, " a\n-b\n+BEE\n c\n") == Edit(["a", "BEE", "c"])
    (blank,) = parse(git_diff(PATH, lines_of("a\n\nb\n"), lines_of("a\n\nB\n"))).hunks
    assert edited_hunk(blank, " a\n\n-b\n+B\n") == Accept()  # an editor strips the space
    with pytest.raises(InvalidDecision, match="does not apply"):
        edited_hunk(hunk, " a\n-X\n+B\n c\n")
    with pytest.raises(InvalidDecision, match="does not apply"):
        edited_hunk(hunk, " a\n+B\n c\n")  # the '-' line deleted: the old side changed
    with pytest.raises(InvalidDecision, match="line 2 of the edited hunk starts with '@'"):
        edited_hunk(hunk, " a\n@@ -1 +1 @@\n-b\n+B\n c\n")
