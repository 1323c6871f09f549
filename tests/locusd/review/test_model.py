"""The review model on random texts and edits: accepting all gives the proposed text,
rejecting all the base, a subset exactly that subset (checked against an independent oracle
and by re-diffing), edits put the edited lines; ids survive unrelated changes. Then the
errors and the edges, by example."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from locusd.review import (
    Accept,
    BaseMismatch,
    Decided,
    Decision,
    DiffParseError,
    Edit,
    InvalidDecision,
    Reject,
    Review,
    ReviewStale,
    UnknownTarget,
    accepted_patch,
    apply,
    decide,
    parse,
    rejected,
    retain,
)
from tests.locusd.review.difftext import edited_lines, expected, git_diff, groups, split

PATH = "src/f.txt"
# Few distinct lines: many equally good alignments, repeated hunks, empty lines.
AMBIGUOUS = ("a", "b", "c", "", "  x")
OPS = ("keep",) * 6 + ("delete", "replace", "insert")
# More examples than hypothesis's default: these properties are the core of the review.
PROPERTY = settings(max_examples=300, deadline=None)


@dataclass(frozen=True)
class Case:
    old: list[str]
    new: list[str]

    @property
    def old_text(self) -> str:
        return "".join(self.old)

    @property
    def new_text(self) -> str:
        return "".join(self.new)

    @property
    def diff(self) -> str:
        return git_diff(PATH, self.old, self.new)


@st.composite
def cases(draw: st.DrawFn, unique: bool) -> Case:
    """A base of up to 40 lines and an agent's edit of it (keep, delete, replace, insert per
    line), each with or without a newline at the end. With ``unique`` every line is distinct,
    so the diff's alignment is the only one possible."""
    size = draw(st.integers(0, 40))
    if unique:
        words = [f"line {i}" for i in range(size)]
    else:
        words = draw(st.lists(st.sampled_from(AMBIGUOUS), min_size=size, max_size=size))
    ops = draw(st.lists(st.sampled_from(OPS), min_size=size + 1, max_size=size + 1))
    new_words: list[str] = []
    for index, op in enumerate(ops):
        if op in ("insert", "replace"):
            new_words.append(f"new {index}")
        if index < size and op in ("keep", "insert"):
            new_words.append(words[index])

    old_eol, new_eol = draw(st.booleans()), draw(st.booleans())

    def text(lines: list[str], eol: bool) -> str:
        return "\n".join(lines) + ("\n" if lines and eol else "")

    return Case(split(text(words, old_eol)), split(text(new_words, new_eol)))


def review_of(case: Case) -> Review:
    review = parse(case.diff)
    assert len(review.files) == (1 if case.diff else 0)
    return review


def decided(review: Review, decisions: dict[str, Decision]) -> Decided:
    return decide(review, review.revision, decisions)


def applied(case: Case, review: Review, chosen: Decided) -> str:
    return apply(case.old_text, review.files[0], chosen) if review.files else case.old_text


def replay(case: Case, patch: str) -> str:
    """The accepted patch, parsed again and accepted whole, on the base: what
    ``git apply --cached`` would make of it (the real thing is in test_git)."""
    review = parse(patch)
    if not review.files:
        return case.old_text
    for hunk in review.files[0].hunks:  # each hunk's new side is where its header says
        result = split(apply(case.old_text, review.files[0], decided(review, {PATH: Accept()})))
        start = hunk.new_start - 1 if hunk.new_lines else hunk.new_start
        assert result[start : start + hunk.new_lines] == hunk.new_side
    return apply(case.old_text, review.files[0], decided(review, {PATH: Accept()}))


@PROPERTY
@given(cases(unique=False), st.booleans())
def test_accepting_everything_gives_the_proposed_text(case: Case, per_hunk: bool) -> None:
    review = review_of(case)
    hunks = review.hunks
    decisions: dict[str, Decision] = (
        {hunk.id: Accept() for hunk in hunks} if per_hunk else {PATH: Accept()}
    )
    chosen = decided(review, decisions if review.files else {})
    assert applied(case, review, chosen) == case.new_text
    assert accepted_patch(chosen) == case.diff
    assert chosen.undecided() == []
    if review.files:
        file = review.files[0]
        assert [h.old_side for h in hunks] == [
            case.old[g[0][1] : g[-1][2]] for g in groups(case.old, case.new)
        ]
        assert (file.status, file.path, file.old_path, file.binary) == (
            "modified",
            PATH,
            PATH,
            False,
        )


@PROPERTY
@given(cases(unique=False), st.booleans())
def test_rejecting_everything_gives_the_base(case: Case, undecided: bool) -> None:
    review = review_of(case)
    comment = None if undecided else "no"
    decisions: dict[str, Decision] = {} if undecided else {PATH: Reject("no")}
    chosen = decided(review, decisions if review.files else {})
    assert applied(case, review, chosen) == case.old_text
    assert accepted_patch(chosen) == ""
    if review.files and not undecided:
        assert rejected(chosen) == [(review.files[0], comment)]
    assert len(chosen.undecided()) == (len(review.hunks) if undecided else 0)


@PROPERTY
@given(cases(unique=True), st.data())
def test_accepting_a_subset_stages_exactly_that_subset(case: Case, data: st.DataObject) -> None:
    review = review_of(case)
    hunks = review.hunks
    accepted = data.draw(st.lists(st.booleans(), min_size=len(hunks), max_size=len(hunks)))
    decisions: dict[str, Decision] = {
        hunk.id: Accept() if take else Reject(f"not {index}")
        for index, (hunk, take) in enumerate(zip(hunks, accepted, strict=True))
    }
    chosen = decided(review, decisions)
    result = applied(case, review, chosen)
    oracle = expected(
        case.old,
        case.new,
        groups(case.old, case.new),
        {i: Accept() for i, t in enumerate(accepted) if t},
    )
    assert result == "".join(oracle)
    # Re-diffing the result against the base finds exactly the accepted hunks, same ids.
    again = parse(git_diff(PATH, case.old, split(result)))
    assert [h.id for h in again.hunks] == [h.id for h, t in zip(hunks, accepted, strict=True) if t]
    assert replay(case, accepted_patch(chosen)) == result
    assert rejected(chosen) == [
        (hunk, f"not {index}") for index, hunk in enumerate(hunks) if not accepted[index]
    ]


@PROPERTY
@given(cases(unique=False), st.data())
def test_any_mix_of_decisions_matches_the_oracle(case: Case, data: st.DataObject) -> None:
    """Accept, reject, leave undecided or edit each hunk, on texts where the diff could have
    aligned lines in several ways."""
    review = review_of(case)
    hunk_groups = groups(case.old, case.new)
    decision = st.one_of(
        st.none(),
        st.just(Accept()),
        st.builds(Reject, st.none() | st.text(max_size=5)),
        st.builds(Edit, st.lists(st.sampled_from((*AMBIGUOUS, "edited")), max_size=6)),
    )
    drawn = data.draw(st.lists(decision, min_size=len(hunk_groups), max_size=len(hunk_groups)))
    decisions = {h.id: d for h, d in zip(review.hunks, drawn, strict=True) if d is not None}
    chosen = decided(review, decisions)
    result = applied(case, review, chosen)
    picked = {i: d for i, d in enumerate(drawn) if isinstance(d, Accept | Edit)}
    assert result == "".join(expected(case.old, case.new, hunk_groups, picked))
    assert replay(case, accepted_patch(chosen)) == result
    for index, d in picked.items():
        if isinstance(d, Edit):
            assert "".join(edited_lines(case.new, hunk_groups[index], d)) in result
    assert [target for target, _ in rejected(chosen)] == [
        h for h, d in zip(review.hunks, drawn, strict=True) if isinstance(d, Reject)
    ]


@PROPERTY
@given(cases(unique=True))
def test_ids_survive_an_unrelated_change_elsewhere(case: Case) -> None:
    padding = [f"pad {i}\n" for i in range(10)]
    before = Case(padding + case.old, padding + case.new)
    after = Case(before.old, ["unrelated\n", *before.new])
    old_ids = {h.id for h in review_of(before).hunks}
    new_review = review_of(after)
    assert old_ids <= {h.id for h in new_review.hunks}
    assert len(new_review.hunks) == len(old_ids) + 1
    assert review_of(before).revision != new_review.revision
    # Decisions taken on the old review carry over to the new one, minus what disappeared.
    old_decisions: dict[str, Decision] = {i: Accept() for i in [*old_ids, "gone"]}
    assert retain(new_review, old_decisions).keys() == old_ids


# --- examples -------------------------------------------------------------------------------

OLD = [f"{i}\n" for i in range(1, 21)]
NEW = ["0\n", *OLD[:9], "ten\n", *OLD[10:19], "20"]  # 3 hunks; the last drops the newline
EXAMPLE = Case(OLD, NEW)


def example() -> Review:
    return parse(EXAMPLE.diff)


def test_hunks_read_from_the_diff() -> None:
    review = example()
    first, middle, last = review.hunks
    assert (first.old_start, first.old_lines, first.new_start, first.new_lines) == (1, 3, 1, 4)
    assert first.added == ["0"] and first.removed == []
    assert middle.removed == ["10"] and middle.added == ["ten"]
    assert last.old_side[-1] == "20\n" and last.new_side[-1] == "20"
    assert last.lines[-1] == "\\ No newline at end of file"
    assert len({h.id for h in review.hunks}) == 3
    assert review.hunk(middle.id) is middle and review.file(PATH).hunks[1] is middle


def test_a_stale_revision_is_refused_with_a_hint_to_re_read() -> None:
    review = example()
    with pytest.raises(ReviewStale, match="re-read the review"):
        decide(review, "0" * 16, {PATH: Accept()})


def test_unknown_targets_are_refused() -> None:
    review = example()
    with pytest.raises(UnknownTarget, match="'nope'"):
        decided(review, {"nope": Accept()})
    with pytest.raises(UnknownTarget):
        review.hunk("nope")


def test_edits_only_of_hunks_and_line_by_line() -> None:
    review = example()
    with pytest.raises(InvalidDecision, match="only a hunk"):
        decided(review, {PATH: Edit(["x"])})
    with pytest.raises(InvalidDecision, match="line breaks"):
        decided(review, {review.hunks[0].id: Edit(["x\ny"])})


def test_a_hunk_decision_overrides_its_file() -> None:
    review = example()
    middle = review.hunks[1]
    chosen = decided(review, {PATH: Accept(), middle.id: Reject("keep 10")})
    expected_lines = ["0\n", *OLD[:19], "20"]
    assert apply(EXAMPLE.old_text, review.files[0], chosen) == "".join(expected_lines)
    assert rejected(chosen) == [(middle, "keep 10")]


def test_a_base_that_does_not_match_is_refused() -> None:
    review = example()
    with pytest.raises(BaseMismatch):
        apply("something else\n", review.files[0], decided(review, {PATH: Accept()}))


def test_equal_hunks_in_one_file_get_distinct_ids() -> None:
    """Two hunks with the same content in one file must still be told apart; across reviews
    equal content gives equal ids."""
    pad = ["p\n"] * 7
    old, new = [*pad, "x\n", *pad, "x\n", *pad], [*pad, "y\n", *pad, "y\n", *pad]
    review = parse(git_diff(PATH, old, new))
    first, second = review.hunks
    assert first.lines == second.lines and first.id != second.id
    assert [h.id for h in parse(git_diff(PATH, old, new)).hunks] == [first.id, second.id]
    assert parse(git_diff("other", old, new)).hunks[0].id != first.id


def test_edits_keep_crlf_line_endings() -> None:
    old = ["a\r\n", "b\r\n"]
    new = ["a\r\n", "B\r\n"]
    review = parse(git_diff(PATH, old, new))
    chosen = decided(review, {review.hunks[0].id: Edit(["a", "b2"])})
    assert apply("".join(old), review.files[0], chosen) == "a\r\nb2\r\n"


def test_an_edit_that_restores_the_base_stages_nothing() -> None:
    review = example()
    first = review.hunks[0]
    chosen = decided(review, {first.id: Edit([line.rstrip("\n") for line in first.old_side])})
    assert accepted_patch(chosen) == ""
    assert apply(EXAMPLE.old_text, review.files[0], chosen) == EXAMPLE.old_text


@pytest.mark.parametrize(
    "text",
    [
        "garbage\n",
        "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n-a\n+b\n",
        "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n+c\n",
        "diff --git a/f b/f\nsomething odd\n",
        "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ nonsense @@\n",
    ],
)
def test_malformed_diffs_are_refused(text: str) -> None:
    with pytest.raises(DiffParseError):
        parse(text)


def test_git_extended_headers() -> None:
    text = (
        'diff --git "a/t\\303\\251st \\"q\\"" "b/t\\303\\251st \\"q\\""\n'
        "old mode 100644\nnew mode 100755\n"
        "diff --git a/old name b/new name\nsimilarity index 100%\n"
        "rename from old name\nrename to new name\n"
        "diff --git a/e b/e\nnew file mode 100644\nindex 0000000..e69de29\n"
        "diff --git a/bin b/bin\nindex 1234567..89abcde 100644\n"
        "Binary files a/bin and b/bin differ\n"
        "diff --git a/gone b/gone\ndeleted file mode 100755\nindex 1234567..0000000\n"
        "--- a/gone\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"
    )
    review = parse(text)
    summary = [(f.path, f.old_path, f.status, f.old_mode, f.new_mode) for f in review.files]
    assert summary == [
        ('tést "q"', 'tést "q"', "mode_changed", "100644", "100755"),
        ("new name", "old name", "renamed", None, None),
        ("e", None, "added", None, "100644"),
        ("bin", "bin", "binary", "100644", "100644"),
        ("gone", "gone", "deleted", "100755", None),
    ]
    chosen = decided(review, {f.path: Accept() for f in review.files})
    assert accepted_patch(chosen) == text
    with pytest.raises(InvalidDecision, match="binary"):
        apply("", review.files[3], chosen)
    assert decided(review, {}).undecided() == [*review.files[:4], review.files[4].hunks[0]]
