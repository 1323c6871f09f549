"""Diffs in git's format built without git (difflib), and the expected outcome of decisions
computed independently of the model — the oracle the property tests compare against."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

from locusd.review import Accept, Edit

NO_NEWLINE = "\\ No newline at end of file"
Opcode = tuple[str, int, int, int, int]


def split(text: str) -> list[str]:
    """Lines with their newline; only ``\\n`` ends a line."""
    lines = [line + "\n" for line in text.split("\n")]
    last = lines.pop()[:-1]
    return [*lines, last] if last else lines


def git_diff(path: str, old: Sequence[str], new: Sequence[str]) -> str:
    """What ``git diff`` prints for one modified file (git's marker after a line that lacks
    its newline); empty when nothing changed, as with git."""
    if list(old) == list(new):
        return ""
    out = [f"diff --git a/{path} b/{path}\n"]
    for line in difflib.unified_diff(old, new, f"a/{path}", f"b/{path}"):
        out.append(line if line.endswith("\n") else f"{line}\n{NO_NEWLINE}\n")
    return "".join(out)


def groups(old: Sequence[str], new: Sequence[str]) -> list[list[Opcode]]:
    """The opcodes of each hunk :func:`git_diff` prints, in order (difflib's own grouping)."""
    if list(old) == list(new):
        return []
    matcher = difflib.SequenceMatcher(None, old, new)
    return [list(group) for group in matcher.get_grouped_opcodes(3)]


def edited_lines(new: Sequence[str], group: Sequence[Opcode], edit: Edit) -> list[str]:
    """An edit's lines as the file should hold them: newline-ended, but for a last line where
    the proposed side ended the file without one."""
    proposed = new[group[0][3] : group[-1][4]]
    lines = [line + "\n" for line in edit.new_text_lines]
    if lines and proposed and not proposed[-1].endswith("\n"):
        lines[-1] = lines[-1][:-1]
    return [line for line in lines if line]


def expected(
    old: Sequence[str],
    new: Sequence[str],
    hunk_groups: Sequence[Sequence[Opcode]],
    chosen: Mapping[int, Accept | Edit],
) -> list[str]:
    """``old`` with the changes of the chosen hunks (by index) made, and nothing else."""
    result = list(old)
    for index in sorted(chosen, reverse=True):
        group, decision = hunk_groups[index], chosen[index]
        if isinstance(decision, Edit):
            result[group[0][1] : group[-1][2]] = edited_lines(new, group, decision)
            continue
        for tag, i1, i2, j1, j2 in reversed(group):
            if tag != "equal":
                result[i1:i2] = new[j1:j2]
    return result
