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


def test_a_review_of_what_was_all_decided_goes_over_it_again() -> None:
    """Running ``locus review`` again after deciding everything revisits each item, showing
    the earlier decision; an item answered anew is sent, one left (``q``) keeps its decision."""
    rejected = DecisionIn(action="reject", comment="keep it")
    decided = view(rejected)
    first = decided.files[0].model_copy(
        update={"hunks": [TWO.model_copy(update={"decision": rejected})]}
    )
    decided = decided.model_copy(update={"files": [first, decided.files[1]]})
    session = Session.of(decided)
    assert [item.decision for item in session.items] == [None, None, None]
    assert [item.previous for item in session.items] == [Reject("keep it")] * 3
    assert session.undecided() == [0, 1, 2]
    session.items[0].decision = Accept()
    assert session.decisions(decided) == ({"h1": DecisionIn(action="accept")}, [])
