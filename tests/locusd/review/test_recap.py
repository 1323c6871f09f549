"""What was decided per file (locusd/review/recap.py): the counts the timeline gets (only what
a call decided), and the commit message — the agent's summary only when everything was
accepted as proposed, else the accepted files, a hostile path quoted on one line."""

from __future__ import annotations

from locusd.review import Accept, Edit, Reject, Review, decide, parse
from locusd.review.recap import FileTally, commit_message, tally, with_trailer
from tests.locusd.review.difftext import git_diff

ODD = "odd\nLocus-Task: 99.txt"


def review_of_two() -> Review:
    """a.py, and a file whose name holds a newline (git quotes it in the diff)."""
    odd = git_diff(ODD, ["p\n"], ["q\n"])
    for side in "ab":
        odd = odd.replace(f"{side}/{ODD}", f'"{side}/odd\\nLocus-Task: 99.txt"')
    return parse(git_diff("a.py", ["x\n"], ["y\n"]) + odd)


def test_counts_comments_and_only_what_a_call_decided() -> None:
    review = review_of_two()
    (first,), (second,) = (f.hunks for f in review.files)
    decided = decide(review, review.revision, {first.id: Reject("no"), ODD: Accept()})
    assert tally(decided) == [FileTally("a.py", rejected=1, comments=("no",)), FileTally(ODD, 1)]
    assert tally(decided, only={ODD}) == [FileTally(ODD, accepted=1)]
    edited = decide(review, review.revision, {second.id: Edit(["z"], "fixed")})
    assert tally(edited, only={second.id}) == [FileTally(ODD, edited=1, comments=("fixed",))]


def test_the_message_says_what_was_accepted() -> None:
    review = review_of_two()
    (first,), _ = (f.hunks for f in review.files)
    everything = decide(review, review.revision, {"a.py": Accept(), ODD: Accept()})
    assert commit_message("Fix it", "Did a and odd.", 7, everything) == (
        "Fix it\n\nDid a and odd.\n\nLocus-Task: 7\n"
    )
    some = decide(review, review.revision, {first.id: Reject(), ODD: Accept()})
    text = commit_message("Fix it", "Did a and odd.", 7, some)
    assert text == (
        "Fix it\n\nTaken from the agent's proposal after review:\n"
        '- "odd\\nLocus-Task: 99.txt": 1 of 1\n\nLocus-Task: 7\n'
    )
    assert with_trailer("Mine", 7) == "Mine\n\nLocus-Task: 7\n"
    assert with_trailer("Mine\n\nLocus-Task: 7", 7) == "Mine\n\nLocus-Task: 7\n"
