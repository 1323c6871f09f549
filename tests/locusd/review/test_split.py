"""Splitting a hunk (``s`` in ``locus review``, as in ``git add -p``) on random texts: the parts
cover the hunk, each part's header says where its lines are, and any mix of accepted and
rejected parts stages exactly those parts (checked against the independent oracle of
test_model). Then the hunks that are not cut, and the edges, by example."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from locusd.review import (
    Accept,
    Decision,
    Edit,
    InvalidDecision,
    Reject,
    accepted_patch,
    apply,
    parse,
    rejoin,
    split,
)
from tests.locusd.review.difftext import Opcode, expected, git_diff, groups
from tests.locusd.review.difftext import split as lines_of
from tests.locusd.review.test_model import PATH, PROPERTY, Case, cases, decided, replay


@PROPERTY
@given(cases(unique=False))
def test_the_parts_cover_the_hunk_and_their_headers_say_where(case: Case) -> None:
    review = parse(case.diff)
    for hunk, group in zip(review.hunks, groups(case.old, case.new), strict=True):
        parts = split(hunk)
        changes = [op for op in group if op[0] != "equal"]
        marker = any(line.startswith("\\") for line in hunk.lines)
        assert len(parts) == (1 if marker else len(changes))
        if len(parts) == 1:
            assert parts == (hunk,)
            continue
        # Each part: one run of changes with all the context around it, starting where the
        # previous part's changes end; the last one ends where the hunk ends.
        assert parts[0].lines[0] == hunk.lines[0] and parts[-1].lines[-1] == hunk.lines[-1]
        assert len({part.id for part in parts}) == len(parts)
        for part in parts:
            assert part.lines[0][0] == " " or part is parts[0]
            assert part.lines[-1][0] == " " or part is parts[-1]
            signs = "".join("c" if line[0] == " " else "x" for line in part.lines)
            assert signs.strip("c").count("c") == 0  # one run of changes
            start = part.old_start - 1
            assert case.old[start : start + part.old_lines] == part.old_side
        # Where everything before it is accepted (the other hunks too), a part's new side is
        # where its header says.
        for index, part in enumerate(parts):
            taken: list[Decision] = [Accept() for _ in parts[: index + 1]]
            taken += [Reject() for _ in parts[index + 1 :]]
            choices: dict[str, Decision] = {other.id: Accept() for other in review.hunks}
            choices[hunk.id] = rejoin(hunk, taken)
            result = lines_of(apply(case.old_text, review.files[0], decided(review, choices)))
            start = part.new_start - 1
            assert result[start : start + part.new_lines] == part.new_side


@PROPERTY
@given(cases(unique=False), st.data())
def test_any_mix_of_parts_stages_exactly_those_parts(case: Case, data: st.DataObject) -> None:
    review = parse(case.diff)
    hunk_groups = groups(case.old, case.new)
    decisions: dict[str, Decision] = {}
    # The oracle works on the diff's opcodes: each hunk's changed opcodes are its parts.
    oracle_groups: list[list[Opcode]] = []
    picked: dict[int, Accept | Edit] = {}
    for hunk, group in zip(review.hunks, hunk_groups, strict=True):
        parts = split(hunk)
        taken = data.draw(st.lists(st.booleans(), min_size=len(parts), max_size=len(parts)))
        chosen: list[Decision] = [Accept() if t else Reject("no") for t in taken]
        decisions[hunk.id] = rejoin(hunk, chosen)
        changes = [op for op in group if op[0] != "equal"]
        pieces = [changes] if len(parts) == 1 else [[op] for op in changes]
        for piece, take in zip(pieces, taken, strict=True):
            if take:
                picked[len(oracle_groups)] = Accept()
            oracle_groups.append(piece)
        if all(taken):
            assert isinstance(decisions[hunk.id], Accept)
        elif not any(taken):
            assert decisions[hunk.id] == Reject("; ".join(["no"] * len(parts)))
        else:
            edit = decisions[hunk.id]
            assert isinstance(edit, Edit)
            assert edit.comment == "; ".join(["no"] * taken.count(False))
    chosen_all = decided(review, decisions)
    result = apply(case.old_text, review.files[0], chosen_all) if review.files else case.old_text
    assert result == "".join(expected(case.old, case.new, oracle_groups, picked))
    assert replay(case, accepted_patch(chosen_all)) == result


def two_changes(ending: str = "\n") -> tuple[str, str]:
    old = "".join(f"line {i}{ending}" for i in range(6))
    new = old.replace("line 1", "ONE").replace("line 4", "FOUR")
    return old, new


def test_a_hunk_with_two_separated_changes_splits_in_two() -> None:
    old, new = two_changes()
    (hunk,) = parse(git_diff(PATH, lines_of(old), lines_of(new))).hunks
    first, second = split(hunk)
    assert first.header == "@@ -1,4 +1,4 @@" and second.header == "@@ -3,4 +3,4 @@"
    assert first.lines == (" line 0", "-line 1", "+ONE", " line 2", " line 3")
    assert second.lines == (" line 2", " line 3", "-line 4", "+FOUR", " line 5")
    assert rejoin(hunk, [Reject(), Accept()]) == Edit(
        ["line 0", "line 1", "line 2", "line 3", "FOUR", "line 5"]
    )


def test_crlf_lines_keep_their_endings() -> None:
    old, new = two_changes("\r\n")
    review = parse(git_diff(PATH, lines_of(old), lines_of(new)))
    (hunk,) = review.hunks
    choice = rejoin(hunk, [Accept(), Reject()])
    result = apply(old, review.files[0], decided(review, {hunk.id: choice}))
    assert result == old.replace("line 1", "ONE")


def test_a_single_change_is_not_cut_and_parts_cannot_be_edited() -> None:
    (hunk,) = parse(git_diff(PATH, ["a\n", "b\n"], ["a\n", "c\n"])).hunks
    assert split(hunk) == (hunk,)
    old, new = two_changes()
    (hunk,) = parse(git_diff(PATH, lines_of(old), lines_of(new))).hunks
    with pytest.raises(InvalidDecision, match="cannot be edited"):
        rejoin(hunk, [Edit(["x"]), Accept()])
    with pytest.raises(InvalidDecision, match="2 parts"):
        rejoin(hunk, [Accept()])
