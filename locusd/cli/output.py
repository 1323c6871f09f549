"""Everything ``locus`` prints for people goes through here, so that text is data everywhere.

Task titles, agent output, diffs, hosts, paths and error messages come from users, the agent, the
cloud or files: they are printed as rich ``Text`` (never parsed as markup) with their control
characters made visible (an ESC, a carriage return or an OSC sequence from the agent must not
drive the user's terminal). Only this module's callers' own fixed words carry a style, given
as ``(text, style)`` pairs, never as markup.

Piped or redirected (stdout not a terminal) the output is for programs, like ``gh``'s: no
colour, no wrapping, no box drawing, lists as tab-separated rows with whole ids. On a terminal,
colour, and tables that fit its width. Lines are never hard-wrapped (the terminal wraps them).

Rich is imported on first use: ``locus status`` prints plain lines without it.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

#: C0 controls but newline and tab, DEL, C1 controls (0x9b is a one-byte CSI), and the bidi
#: overrides and isolates that make a line read differently from what it holds.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
#: What JSON leaves raw inside strings (it escapes C0 itself): escaped too, same data.
_JSON_RAW = re.compile("[\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _shown(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return "^" + chr(code + 0x40)  # as cat -v and less show them: ESC is ^[, CR is ^M
    if code == 0x7F:
        return "^?"
    return f"<U+{code:04X}>"


def visible(text: str) -> str:
    """``text`` with its control characters shown (``^[``, ``^M``, ``<U+202E>``), never
    obeyed; newlines and tabs kept."""
    return _CONTROL.sub(_shown, text)


def cell(text: object) -> str:
    """One field of a tab-separated row: visible, and on one line (tabs and newlines shown)."""
    return visible(str(text)).replace("\t", "\\t").replace("\n", "\\n")


def json_text(text: str) -> str:
    """JSON output with the characters a terminal would act on escaped (``\\u009b``)."""
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def console(*, stderr: bool = False) -> Console:
    """A rich console for ``locus``'s output: no markup (a string is printed as it is), no
    emoji codes, nothing highlighted by guesswork, lines never wrapped, colour only on a
    terminal (and never with NO_COLOR: rich's default)."""
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=True, highlight=False, markup=False, emoji=False)


def text(*parts: str | tuple[str, str] | Text) -> Text:
    """One line from data (``str``: printed as it is, controls made visible) and our own
    styled words (``(words, style)``); a ``Text`` is taken as built."""
    from rich.text import Text

    line = Text()
    for part in parts:
        if isinstance(part, str):
            line.append(visible(part))
        elif isinstance(part, tuple):
            line.append(visible(part[0]), style=part[1])
        else:
            line.append_text(part)
    return line


def diff_lines(lines: Iterable[str]) -> Text:
    """Diff lines, coloured by their first character (on a terminal), printed as they are."""
    styles = {"+": "green", "-": "red", "@": "cyan"}
    shown = text()
    for number, line in enumerate(lines):
        if number:
            shown.append("\n")
        style = styles.get(line[:1])
        shown.append_text(text((line, style) if style else line))
    return shown


@dataclass(frozen=True)
class Column:
    """A table column: its header, and whether it holds ids (never cut nor wrapped)."""

    header: str
    whole: bool = False


class Output:
    """stdout or stderr for people, made on first use (importing rich costs ~20 ms)."""

    def __init__(self, *, stderr: bool = False) -> None:
        self.stderr = stderr
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            self._console = console(stderr=self.stderr)
        return self._console

    @property
    def stream(self) -> IO[str]:
        return sys.stderr if self.stderr else sys.stdout

    @property
    def terminal(self) -> bool:
        return self.stream.isatty()

    def say(self, *parts: str | tuple[str, str] | Text, end: str = "\n") -> None:
        """Print one line (see :func:`text`)."""
        self.console.print(text(*parts), end=end)

    def data(self, value: str) -> None:
        """Text as it streams (the agent's words), controls made visible, nothing added."""
        self.console.print(text(value), end="")

    def table(self, columns: Sequence[Column], rows: Iterable[Sequence[object]]) -> None:
        """Rows for people on a terminal (fitting its width; ids whole), tab-separated rows
        with no header and no decoration for programs."""
        cells = [[cell(value) for value in row] for row in rows]
        if not self.terminal:
            for row in cells:
                self.stream.write("\t".join(row) + "\n")
            self.stream.flush()
            return
        from rich import box
        from rich.table import Table

        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, header_style="bold")
        for column in columns:
            table.add_column(column.header, no_wrap=column.whole, overflow="fold")
        for row in cells:
            table.add_row(*(text(value) for value in row))
        self.console.print(table, soft_wrap=False)

    def block(self, title: str, body: Sequence[Text]) -> None:
        """A titled block: a panel on a terminal, a title line then the body when piped."""
        block(self.console, title, body)


def block(console: Console, title: str, body: Sequence[Text]) -> None:
    """A titled block on ``console`` (see :meth:`Output.block`)."""
    from rich.text import Text

    content = Text("\n").join(body)
    if console.is_terminal:
        from rich.panel import Panel

        console.print(Panel(content, title=text(title)), soft_wrap=False)
    else:
        console.print(text((title, "bold")))
        console.print(content)


out = Output()
err = Output(stderr=True)


def fail(message: str, code: int) -> NoReturn:
    """An error on stderr, one line per line of the message (never wrapped), and exit."""
    err.say(("error:", "red"), " ", message)
    sys.exit(code)


def print_json(result: Any) -> None:
    """``result`` (a wire model, a list or a dict) as JSON on stdout."""
    if isinstance(result, list | dict):
        print_json_line(json.dumps(result, indent=2, default=str, ensure_ascii=False))
    else:
        print_json_line(result.model_dump_json(by_alias=True, indent=2, exclude_none=True))


def print_json_line(document: str) -> None:
    """A JSON document on stdout, with what a terminal would act on escaped."""
    sys.stdout.write(json_text(document) + "\n")
    sys.stdout.flush()
