"""What was decided, file by file — for the task's timeline (what a person decided, relayed to
the cloud) and for the commit message (built from what was accepted only: the agent's summary
describes every file it touched, including the ones the person rejected).

Pure, like the model: counts of hunks per file, from a :class:`~locusd.review.model.Decided`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from locusd.git.commits import TRAILER, message
from locusd.review.model import Accept, Decided, Edit, Reject, quoted_path


@dataclass(frozen=True)
class FileTally:
    """Hunks of one file by decision; a change with no hunk (a rename, a binary) counts one."""

    path: str
    accepted: int = 0
    rejected: int = 0
    edited: int = 0
    undecided: int = 0
    comments: tuple[str, ...] = ()

    @property
    def whole(self) -> bool:
        """Every change of the file accepted as the agent proposed it."""
        return not (self.rejected or self.edited or self.undecided)


def tally(decided: Decided, only: Collection[str] | None = None) -> list[FileTally]:
    """Per file, its hunks by decision, with the comments (the file's own first). With
    ``only`` (decision keys: hunk ids and paths), just what those decisions decide — a file
    none of them touches is left out."""
    out = []
    for file in decided.review.files:
        counts = {"accepted": 0, "rejected": 0, "edited": 0, "undecided": 0}
        comments: list[str | None] = []
        targets = [(h.id, decided.for_hunk(h)) for h in file.hunks]
        for key, decision in targets or [(file.path, decided.for_file(file))]:
            by = key if key in decided.hunks else file.path
            if only is None or by in only:
                counts[_kind(decision)] += 1
                comments.append(_comment(decision))
        if only is None or any(counts.values()):
            said = tuple(dict.fromkeys(c for c in comments if c))  # each once, in order
            out.append(FileTally(file.path, **counts, comments=said))
    return out


def _comment(decision: object) -> str | None:
    return decision.comment if isinstance(decision, Reject | Edit) else None


def _kind(decision: object) -> str:
    if isinstance(decision, Accept):
        return "accepted"
    if isinstance(decision, Reject):
        return "rejected"
    if isinstance(decision, Edit):
        return "edited"
    return "undecided"


def commit_message(title: str, summary: str | None, task: int | str, decided: Decided) -> str:
    """The proposed commit message: the task's title; the agent's summary when everything
    was accepted as proposed, else the files taken and how much of each (paths quoted as git
    quotes them: a name with a newline cannot forge a line); the ``Locus-Task`` trailer."""
    tallies = tally(decided)
    if all(t.whole for t in tallies):
        return message(title, summary, task)
    lines = ["Taken from the agent's proposal after review:"]
    for t in tallies:
        if t.accepted or t.edited:
            total = t.accepted + t.edited + t.rejected + t.undecided
            edited = f", {t.edited} edited" if t.edited else ""
            lines.append(f"- {quoted_path(t.path)}: {t.accepted + t.edited} of {total}{edited}")
    return message(title, "\n".join(lines), task)


def with_trailer(text: str, task: int | str) -> str:
    """``text`` ending with the trailer that links a commit to its task (``git log --grep
    'Locus-Task: 42'``), added when the person's own message lacks it."""
    text = text.strip()
    line = f"{TRAILER}: {task}"
    if line in text.splitlines():
        return text + "\n"
    return f"{text}\n\n{line}\n"
