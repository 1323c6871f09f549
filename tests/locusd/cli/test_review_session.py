"""The decisions a ``locus review`` session sends (locusd/cli/review_keys.py), on a review as
the daemon gives it: only what changed; a split hunk's parts joined into one decision; and
nothing that would decide more than the person did — a split hunk partly decided, or a
rename whose file still has undecided hunks (a file's decision covers them), is held back."""

from __future__ import annotations

from locusd.cli.review_keys import Session, _split
from locusd.protocol.messages import DecisionIn, FileView, HunkView, ReviewView
from locusd.review import Accept, Reject

TWO = HunkView(
    id="h1",
    header="@@ -1,5 +1,5 @@",
    lines=[" a", "-b", "+B", " c", "-d", "+D"],
)
ONE = HunkView(id="h2", header="@@ -1 +1 @@", lines=["-x", "+y"])


def view(decided: DecisionIn | None = None) -> ReviewView:
    return ReviewView(
        run_id="1-local",
        revision="r",
        files=[
            FileView(path="f.txt", status="modified", hunks=[TWO]),
            FileView(
                path="new.txt",
                old_path="old.txt",
                status="renamed",
                structural=True,
                hunks=[ONE],
                decision=decided,
            ),
        ],
        undecided=3,
    )


def test_parts_join_and_a_rename_waits_for_its_hunks() -> None:
    session = Session.of(view())
    assert [item.key for item in session.items] == ["h1", "new.txt", "h2"]
    session.items[1].decision = Accept()  # the rename; its hunk is left undecided
    _split(session, 0)
    session.items[0].decision = Reject("no b")
    sent, partly = session.decisions(view())
    assert sent == {} and sorted(partly) == ["f.txt @@ -1,5 +1,5 @@", "new.txt: renamed"]
    session.items[1].decision = Accept()
    session.items[3].decision = Accept()
    sent, partly = session.decisions(view())
    assert partly == []
    assert sent == {
        "h1": DecisionIn(action="edit", lines=["a", "b", "c", "D"], comment="no b"),
        "new.txt": DecisionIn(action="accept"),
        "h2": DecisionIn(action="accept"),
    }


def test_only_what_changed_is_sent() -> None:
    accepted = DecisionIn(action="accept")
    session = Session.of(view(accepted))  # the rename and its hunk: accepted earlier
    assert [item.decision for item in session.items] == [None, Accept(), Accept()]
    session.items[0].decision = Accept()
    assert session.decisions(view(accepted)) == ({"h1": accepted}, [])
