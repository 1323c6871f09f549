"""``locus review`` hunk by hunk, with ``git add -p``'s keys: y n q a d e s j k ? (and c,
reject with a comment — the comment goes to the agent's next round and the task's timeline).

A session is the list of things to decide (hunks; a rename, mode change or binary once per
file) with a cursor; it ends when nothing is left undecided or on ``q``. When an earlier
review decided everything, the session goes over every item again, showing that decision. Splitting (``s``)
replaces a hunk by its parts (:func:`locusd.review.model.split`); at the end the parts'
decisions are joined back into one decision on the hunk (:func:`~locusd.review.model.rejoin`),
which is all the daemon ever sees. Every text shown — paths, diff lines — is data
(:mod:`locusd.cli.output`): a path is shown on one line, its controls and newlines escaped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from locusd.cli.output import cell, diff_lines, out
from locusd.protocol.messages import DecisionIn, FileView, ReviewView
from locusd.review.model import (
    Accept,
    Decision,
    Hunk,
    InvalidDecision,
    Reject,
    edited_hunk,
    hunk_from,
    rejoin,
    split,
)
from locusd.review.wire import from_decision, to_decision

HELP = """y - accept this hunk
n - reject this hunk
c - reject this hunk, with a comment (for the agent's next round and the task's timeline)
q - quit; the hunks not decided yet stay undecided (uncommitted, in the worktree), or as an
    earlier review decided them
a - accept this hunk and all later undecided hunks in the file
d - reject this hunk and all later undecided hunks in the file
e - edit this hunk in $EDITOR, then accept the edited version
s - split this hunk into smaller hunks
j - leave this hunk undecided, see the next undecided hunk
k - leave this hunk undecided, see the previous undecided hunk
? - print help"""

EDIT_GUIDE = """# ---
# To keep a removed line ('-'), make it unchanged: replace the '-' with a space.
# To drop an added line ('+'), delete it. Add lines with '+'.
# Unchanged (' ') and '-' lines must stay as they are, or the edit does not apply.
# Lines starting with # are dropped.
"""


@dataclass
class Item:
    """One thing to decide: a hunk (or a part of a split one), or a file's structural change."""

    file: FileView
    hunk: Hunk | None
    decision: Decision | None = None
    #: The hunk this is a part of, once split.
    parent: Hunk | None = None
    #: What an earlier review decided, when this one goes over every item again.
    previous: Decision | None = None

    @property
    def key(self) -> str:
        return self.hunk.id if self.hunk is not None else self.file.path


@dataclass
class Session:
    """The items in order, their decisions, and the hunks split (by id, their parts' order)."""

    items: list[Item]
    splits: dict[str, Hunk] = field(default_factory=dict)
    quit: bool = False

    @classmethod
    def of(cls, view: ReviewView) -> Session:
        items = []
        for file in view.files:
            if file.structural:
                decided = to_decision(file.decision) if file.decision else None
                items.append(Item(file, None, decided))
            for shown in file.hunks:
                hunk = hunk_from(file.path, shown.id, shown.header, shown.lines)
                chosen = shown.decision or file.decision
                items.append(Item(file, hunk, to_decision(chosen) if chosen else None))
        if all(item.decision is not None for item in items):
            # Everything was decided in an earlier review: this one goes over it again, each
            # item showing what was decided (kept unless answered anew).
            for item in items:
                item.previous, item.decision = item.decision, None
        return cls(items)

    def undecided(self) -> list[int]:
        return [i for i, item in enumerate(self.items) if item.decision is None]

    def after(self, index: int) -> int | None:
        """The next undecided item after ``index``, else the first one before it."""
        pending = self.undecided()
        later = [i for i in pending if i > index]
        return next(iter(later or pending), None)

    def decisions(self, view: ReviewView) -> tuple[dict[str, DecisionIn], list[str]]:
        """The decisions to send (those that differ from what the daemon has), and the split
        hunks left partly undecided (they stay undecided)."""
        known: dict[str, DecisionIn] = {}
        for file in view.files:
            if file.structural and file.decision:
                known[file.path] = file.decision
            for shown in file.hunks:
                had = shown.decision or file.decision
                if had is not None:
                    known[shown.id] = had
        chosen: dict[str, Decision] = {}
        partly: list[str] = []
        for item in self.items:
            if item.parent is None and item.decision is not None:
                if item.hunk is None and self._hunks_undecided(item.file):
                    # a file's decision covers its undecided hunks: held back until none is
                    partly.append(f"{cell(item.file.path)}: {item.file.status}")
                    continue
                chosen[item.key] = item.decision
        for hunk_id, hunk in self.splits.items():
            parts = [item.decision for item in self.items if item.parent is hunk]
            if any(d is None for d in parts):
                if any(d is not None for d in parts):
                    partly.append(f"{cell(hunk.file)} {hunk.header}")
                continue
            chosen[hunk_id] = rejoin(hunk, [d for d in parts if d is not None])
        sent = {key: from_decision(d) for key, d in chosen.items()}
        return {key: d for key, d in sent.items() if known.get(key) != d}, partly

    def _hunks_undecided(self, file: FileView) -> bool:
        return any(i.file is file and i.hunk is not None and i.decision is None for i in self.items)


def _title(item: Item) -> str:
    if item.hunk is None:
        file = item.file
        moved = f" (from {cell(file.old_path)})" if file.old_path != file.path else ""
        return f"{cell(file.path)}: {file.status}{moved}"
    return cell(item.file.path)  # the hunk's header follows, with its lines


def _keys(session: Session, index: int) -> str:
    item = session.items[index]
    keys = ["y", "n", "c", "q", "a", "d"]
    if item.hunk is not None and item.parent is None:
        keys.append("e")
    if item.hunk is not None and len(split(item.hunk)) > 1:
        keys.append("s")
    others = [i for i in session.undecided() if i != index]
    if any(i > index for i in others):
        keys.append("j")
    if any(i < index for i in others):
        keys.append("k")
    return ",".join([*keys, "?"])


def _show(session: Session, index: int) -> None:
    item = session.items[index]
    out.say("\n", (_title(item), "bold"))
    if item.previous is not None:
        out.say(("decided before: ", "dim"), _said(item.previous))
    if item.hunk is not None:
        out.say(diff_lines([item.hunk.header, *item.hunk.lines]))


def _said(decision: Decision) -> str:
    """An earlier decision in words (a comment is data: shown on one line, escaped)."""
    if isinstance(decision, Reject):
        return "rejected" + (f" — {cell(decision.comment)}" if decision.comment else "")
    return "accepted" if isinstance(decision, Accept) else "accepted as edited"


def _ask(prompt: str) -> str | None:
    """One answer; ``None`` at the end of the input (a pipe ran dry: as ``q``)."""
    try:
        return str(click.prompt(prompt, default="", show_default=False, prompt_suffix=" "))
    except click.Abort:
        return None


def _edit(item: Item) -> Decision | None:
    """The person's edit of the hunk (``None``: given up); asked again while it does not
    apply, as git does."""
    assert item.hunk is not None
    lines = "".join(f"{line}\n" for line in item.hunk.lines)
    text = f"# Edit the hunk; see the guide below.\n{lines}{EDIT_GUIDE}"
    while True:
        edited = click.edit(text, extension=".diff", require_save=False)
        if edited is None:
            return None
        try:
            return edited_hunk(item.hunk, edited)
        except InvalidDecision as exc:
            out.say(("Your edited hunk does not apply: ", "red"), str(exc))
            again = _ask("Edit again (saying no gives up the edit)? [y,n]")
            if again not in ("y", "Y"):
                return None
            text = edited  # as git does: the next try starts from this one


def _rest_of_file(session: Session, index: int, decision: Decision) -> None:
    file = session.items[index].file
    for item in session.items[index:]:
        if item.file is file and item.decision is None:
            item.decision = decision


def _split(session: Session, index: int) -> None:
    item = session.items[index]
    assert item.hunk is not None
    parts = split(item.hunk)
    session.splits[item.hunk.id] = item.hunk
    session.items[index : index + 1] = [Item(item.file, p, None, item.hunk) for p in parts]
    out.say(f"Split into {len(parts)} hunks.")


def run(view: ReviewView) -> Session:
    """Ask about each undecided item, from the first, until none is left or ``q``."""
    session = Session.of(view)
    pending = session.undecided()
    index = pending[0] if pending else None
    if index is not None:
        out.say(("Keys: y accept, n reject, c reject with a comment, ? help", "dim"))
    while index is not None:
        _show(session, index)
        index = _step(session, index)
    return session


def _step(session: Session, index: int) -> int | None:
    """One prompt at ``index``; where to go next (``None``: done)."""
    item = session.items[index]
    kind = "hunk" if item.hunk is not None else "change"
    counter = f"({index + 1}/{len(session.items)})"
    answer = _ask(f"{counter} Accept this {kind} [{_keys(session, index)}]?")
    allowed = _keys(session, index).split(",")
    if answer is None or answer == "q":
        session.quit = True
        return None
    if answer not in allowed:
        out.say(("y accept, n reject, ? for all the keys", "yellow") if answer else "")
        return index
    if answer == "?":
        out.say((HELP, "dim"))
        return index
    if answer == "y":
        item.decision = Accept()
    elif answer == "n":
        item.decision = Reject()
    elif answer == "c":
        said = _ask("Comment (for the agent and the task's timeline):")
        item.decision = Reject(said.strip() or None if said else None)
    elif answer == "a":
        _rest_of_file(session, index, Accept())
    elif answer == "d":
        _rest_of_file(session, index, Reject())
    elif answer == "e":
        edited = _edit(item)
        if edited is None:
            return index
        item.decision = edited
    elif answer == "s":
        _split(session, index)
        return index
    elif answer == "j":
        return next(i for i in session.undecided() if i > index)
    elif answer == "k":
        return [i for i in session.undecided() if i < index][-1]
    return session.after(index)
