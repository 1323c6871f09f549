"""A reported patch, ready to show: files and hunks (parsed by unidiff), each line coloured by
Pygments for its file's language. Pure: text in, dataclasses out.

The HTML of each line comes from Pygments' formatter, which escapes the code; a patch that
cannot be parsed is shown as plain (escaped) text instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import TextLexer, get_lexer_for_filename
from pygments.util import ClassNotFound
from unidiff.errors import UnidiffParseError
from unidiff.patch import PatchSet

#: Beyond this many lines a patch is shown without colouring (it stays readable and fast).
MAX_HIGHLIGHTED_LINES = 5000
_formatter = HtmlFormatter(nowrap=True)


@dataclass(frozen=True)
class Line:
    kind: str  # added | removed | context | note
    old: int | None
    new: int | None
    html: Markup


@dataclass(frozen=True)
class Hunk:
    header: str  # "@@ -1,2 +1,3 @@ def f():"
    lines: list[Line]


@dataclass(frozen=True)
class FileDiff:
    path: str
    change: str  # added | deleted | renamed | modified
    old_path: str | None
    binary: bool
    added: int
    removed: int
    hunks: list[Hunk] = field(default_factory=list)


@dataclass(frozen=True)
class Diff:
    files: list[FileDiff]
    raw: str
    error: str | None = None  # set when the text was not a unified diff

    @property
    def added(self) -> int:
        return sum(f.added for f in self.files)

    @property
    def removed(self) -> int:
        return sum(f.removed for f in self.files)


_KIND = {"+": "added", "-": "removed", " ": "context"}


def _lexer(path: str) -> Lexer:
    try:
        found: Lexer = get_lexer_for_filename(path, stripnl=False, ensurenl=False)
    except ClassNotFound:
        found = TextLexer(stripnl=False, ensurenl=False)
    return found


def _coloured(lexer: Lexer, texts: list[str], colour: bool) -> list[Markup]:
    """One HTML fragment per line. Lexing a hunk's lines together keeps multi-line context
    (docstrings, comments); the formatter closes and reopens spans at each newline."""
    if not colour:
        return [Markup.escape(t) for t in texts]
    out = highlight("\n".join(texts) + "\n", lexer, _formatter).split("\n")
    if len(out) < len(texts):  # never expected; fall back rather than misalign lines
        return [Markup.escape(t) for t in texts]
    return [Markup(line) for line in out[: len(texts)]]  # noqa: S704 (Pygments escapes)


def _change(patched: object) -> str:
    if getattr(patched, "is_added_file", False):
        return "added"
    if getattr(patched, "is_removed_file", False):
        return "deleted"
    if getattr(patched, "is_rename", False):
        return "renamed"
    return "modified"


def parse(text: str) -> Diff:
    try:
        patch = PatchSet(text)
    except UnidiffParseError as exc:
        return Diff([], text, f"not a unified diff ({exc})")
    colour = sum(len(h) for f in patch for h in f) <= MAX_HIGHLIGHTED_LINES
    files: list[FileDiff] = []
    for patched in patch:
        change = _change(patched)
        source = patched.source_file.removeprefix("a/")
        lexer = _lexer(patched.path)
        hunks: list[Hunk] = []
        for hunk in patched:
            code = [line for line in hunk if line.line_type in _KIND]
            html = iter(_coloured(lexer, [line.value.rstrip("\n") for line in code], colour))
            lines = [
                Line(
                    _KIND[line.line_type],
                    line.source_line_no,
                    line.target_line_no,
                    next(html),
                )
                if line.line_type in _KIND
                else Line("note", None, None, Markup.escape(line.value.strip()))
                for line in hunk
            ]
            header = (
                f"@@ -{hunk.source_start},{hunk.source_length}"
                f" +{hunk.target_start},{hunk.target_length} @@ {hunk.section_header}"
            ).rstrip()
            hunks.append(Hunk(header, lines))
        files.append(
            FileDiff(
                path=patched.path,
                change=change,
                old_path=source if change == "renamed" else None,
                binary=bool(patched.is_binary_file),
                added=patched.added,
                removed=patched.removed,
                hunks=hunks,
            )
        )
    return Diff(files, text)
