"""The ``search`` tool's engine: file contents matched against a regular expression, each file
read through the confined open.

Why not ripgrep or git grep, as before: both open files by name. ripgrep follows a symlink
named as its path (``search(path="link")`` printed /etc/passwd), and both read a file that is a
hard link to one outside the worktree. Here every file is opened by
:class:`~locusd.agent.confine.Confined`, which checks the descriptor it opened (a regular file,
one link, reached through no symlink): what is checked is what is read, so a rename in between
cannot swap in something else. The names come from ``git ls-files`` (so .gitignore is still
respected) and the matching is RE2's: linear in the text, so no pattern can hang the search the
way a backtracking engine does on ``(a+)+$``.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import re2

from locusd.agent.confine import Confined, ConfinementError

#: Bytes of one file that are searched; a longer file is searched this far, and the model is told.
MAX_FILE_BYTES = 8 * 1024 * 1024
#: Characters of a matching line that are shown.
MAX_LINE = 300
#: How many matches past the ones shown are still counted (the count is for the model only).
MAX_COUNTED = 100_000
#: Bytes looked at for a NUL to call a file binary (and skip it), as git grep -I does.
_BINARY_PROBE = 8192


class PatternError(ValueError):
    """The pattern is not one RE2 accepts; the message says why, for the model to read."""


@dataclass
class Found:
    """What a search found: the lines to show, how many more matched, what was left out."""

    lines: list[str] = field(default_factory=list)
    more: int = 0
    skipped: list[str] = field(default_factory=list)  # "name: why", for files not searched
    cut: list[str] = field(default_factory=list)  # files searched only up to MAX_FILE_BYTES
    timed_out: bool = False


def compile_pattern(pattern: str) -> re2._Regexp[bytes]:
    """``pattern`` compiled for line-by-line matching: ``^``/``$`` at line ends, and never
    across a newline (as grep), bytes in and out."""
    options = re2.Options()
    options.never_nl = True
    options.log_errors = False
    try:
        return re2.compile(b"(?m)" + pattern.encode("utf-8"), options)
    except UnicodeEncodeError:
        raise PatternError(f"pattern {pattern!r}: not valid UTF-8 text") from None
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise PatternError(
            f"invalid pattern {pattern!r}: {reason} (RE2 syntax: no backreferences or lookaround)"
        ) from None


def _shown(name: str) -> str:
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _read(files: Confined, name: str) -> bytes | str | None:
    """The file's first bytes, or why it is skipped (a str), or None when it is gone."""
    try:
        return files.read_bytes(name, MAX_FILE_BYTES + 1)
    except ConfinementError as exc:
        return str(exc)
    except (FileNotFoundError, NotADirectoryError):
        return None  # deleted since git listed it: not a file to search
    except OSError as exc:
        if exc.errno == errno.EISDIR:
            return None  # a submodule's directory: git lists it as one name
        return f"{_shown(name)}: {exc.strerror or exc}"


def search_files(
    files: Confined,
    names: Iterable[str],
    regexp: re2._Regexp[bytes],
    *,
    max_matches: int,
    deadline: float,
) -> Found:
    """Search each of ``names`` (paths relative to ``files.root``) until ``max_matches`` lines
    are found (then only count, up to MAX_COUNTED) or ``deadline`` (``time.monotonic()``)."""
    found = Found()
    for name in names:
        if time.monotonic() > deadline:
            found.timed_out = True
            break
        data = _read(files, name)
        if data is None:
            continue
        if isinstance(data, str):
            found.skipped.append(data)
            continue
        if not data or b"\0" in data[:_BINARY_PROBE]:
            continue
        if len(data) > MAX_FILE_BYTES:
            data = data[:MAX_FILE_BYTES]
            found.cut.append(_shown(name))
        if not _match_lines(found, _shown(name), data, regexp, max_matches):
            break
    return found


def _match_lines(
    found: Found, shown: str, data: bytes, regexp: re2._Regexp[bytes], limit: int
) -> bool:
    """Add the lines of ``data`` that match to ``found``; False once enough are counted."""
    line_no, counted_to, pos = 1, 0, 0
    while (match := regexp.search(data, pos)) is not None:
        start = match.start()
        line_start = data.rfind(b"\n", 0, start) + 1
        line_end = data.find(b"\n", start)
        line_end = len(data) if line_end < 0 else line_end
        line_no += data.count(b"\n", counted_to, line_start)
        counted_to = line_start
        if len(found.lines) < limit:
            text = data[line_start:line_end].decode("utf-8", "replace")
            found.lines.append(f"{shown}:{line_no}:{text}"[:MAX_LINE])
        else:
            found.more += 1
            if found.more >= MAX_COUNTED:
                return False
        pos = line_end + 1
        if pos >= len(data):  # past the last line (an empty pattern matches at the very end)
            break
    return True
