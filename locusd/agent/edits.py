"""The read and edit tools' text logic: pure functions, no IO (the tools pair them with
:class:`locusd.agent.confine.Confined` for the file access).

An edit is an exact string replacement that must match once (or ``replace_all``); a miss says
where the closest text is, so the model can correct itself instead of guessing again.
"""

from __future__ import annotations

import difflib


class EditError(ValueError):
    """Why an edit cannot apply, phrased for the model."""


def number_lines(text: str, start: int = 1, end: int | None = None) -> str:
    """Lines ``start``..``end`` (1-based, inclusive) prefixed with their numbers, as
    ``cat -n`` shows them, so the model can cite and target lines."""
    lines = text.splitlines()
    if start < 1:
        raise EditError(f"start line {start} is before line 1")
    if lines and start > len(lines):
        raise EditError(f"start line {start} is past the end (the file has {len(lines)} lines)")
    chosen = lines[start - 1 : end]
    width = len(str(start + len(chosen) - 1)) if chosen else 1
    return "\n".join(f"{n:>{width}}\t{line}" for n, line in enumerate(chosen, start))


def closest_match(text: str, needle: str) -> str | None:
    """The stretch of ``text`` (same number of lines as ``needle``) most like ``needle``,
    with its line number, or None when nothing is close."""
    lines = text.splitlines()
    size = max(1, len(needle.splitlines()))
    best, best_ratio, best_at = "", 0.0, 0
    for at in range(max(1, len(lines) - size + 1)):
        window = "\n".join(lines[at : at + size])
        ratio = difflib.SequenceMatcher(None, window, needle).ratio()
        if ratio > best_ratio:
            best, best_ratio, best_at = window, ratio, at + 1
    if best_ratio < 0.5:
        return None
    return f"line {best_at}:\n{best}"


def apply_edit(text: str, old: str, new: str, *, replace_all: bool = False) -> tuple[str, int]:
    """Replace ``old`` with ``new``; returns (new text, replacements made)."""
    if not old:
        raise EditError("old_string is empty: quote the exact text to replace")
    if old == new:
        raise EditError("old_string and new_string are the same: nothing would change")
    count = text.count(old)
    if count == 0:
        hint = closest_match(text, old)
        where = f" The closest text is at {hint}" if hint else ""
        raise EditError(f"old_string was not found in the file.{where}")
    if count > 1 and not replace_all:
        raise EditError(
            f"old_string occurs {count} times: include more surrounding lines to make it unique,"
            " or set replace_all"
        )
    return text.replace(old, new), count
