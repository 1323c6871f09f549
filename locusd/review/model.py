"""The review of a run's diff: files and hunks with stable ids, decisions, and what they stage.

Pure logic on text — no git, no files — so that the terminal, the editors and the dashboard
all see the same review, and so that the properties that matter (accept all gives the agent's
text, reject all gives the base, a subset gives exactly that subset) can be tested on random
input without a repository.

The input is what ``git diff --binary <base>`` prints (see :func:`locusd.git.diffs.diff_against`).
A small parser is used rather than a library: the review must keep git's extended headers
(renames, modes, ``GIT binary patch`` payloads) byte for byte to hand them back to
``git apply``, which general unified-diff parsers drop or only describe.

Ids are content hashes, not positions: a hunk keeps its id when the agent changes something
elsewhere, so decisions taken on an older review can be carried over (:func:`retain`). The
``revision`` is a hash of the whole diff: any change in the worktree changes it, and
:func:`decide` refuses decisions taken on another revision.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["added", "deleted", "modified", "renamed", "mode_changed", "binary"]

NO_NEWLINE = "\\ No newline at end of file"
_DEV_NULL = "/dev/null"
_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")
_ID_LENGTH = 16


# --- errors ---------------------------------------------------------------------------------


class ReviewError(Exception):
    """Anything the review refuses; the message is meant for the person (or agent) deciding."""


class DiffParseError(ReviewError):
    """The text is not a diff git could have printed."""


class ReviewStale(ReviewError):
    """The decisions were taken on an older review: the worktree has changed since."""

    def __init__(self, expected: str, given: str) -> None:
        super().__init__(
            f"the review is stale (decisions are for revision {given}, the diff is now at "
            f"{expected}): re-read the review and decide again"
        )
        self.expected = expected
        self.given = given


class UnknownTarget(ReviewError):
    """A decision names neither a hunk id nor a file path of this review."""


class InvalidDecision(ReviewError):
    """A decision that cannot apply to what it names (editing a binary file, …)."""


class BaseMismatch(ReviewError):
    """The base text handed to :func:`apply` is not the one the diff was computed against."""


# --- the review -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Hunk:
    """One ``@@`` block. ``lines`` are the diff's body lines as printed (prefix ``' '``,
    ``'-'``, ``'+'`` or the ``\\ No newline`` marker), without line terminators."""

    id: str
    file: str
    old_start: int
    old_lines: int
    new_start: int
    new_lines: int
    header: str
    lines: tuple[str, ...]

    @property
    def section(self) -> str:
        """What git prints after the second ``@@`` (the enclosing function, if any)."""
        match = _HUNK_HEADER.match(self.header)
        return match.group(5) if match else ""

    @property
    def old_side(self) -> list[str]:
        """The base lines this hunk covers, each with its ``\\n`` (except a last line without)."""
        return _side(self.lines, "-")

    @property
    def new_side(self) -> list[str]:
        """The proposed lines for the same range."""
        return _side(self.lines, "+")

    @property
    def removed(self) -> list[str]:
        return [line[1:] for line in self.lines if line.startswith("-")]

    @property
    def added(self) -> list[str]:
        return [line[1:] for line in self.lines if line.startswith("+")]


@dataclass(frozen=True)
class FileDiff:
    """One file of the diff.

    ``path`` is where the file is after the change (for a deleted file: where it was);
    ``old_path`` where it was before (``None`` for an added file). ``status`` names the
    structural change first — added, deleted, renamed — then ``binary`` for a changed binary
    file, ``mode_changed`` for a mode-only change, else ``modified`` (a modified file can
    still carry a mode change: compare ``old_mode`` and ``new_mode``). ``raw`` is the file's
    section of the diff, verbatim, handed back to git when the whole file is accepted.
    """

    path: str
    old_path: str | None
    status: Status
    old_mode: str | None
    new_mode: str | None
    binary: bool
    hunks: tuple[Hunk, ...]
    raw: str = field(repr=False)
    similarity: str | None = None

    @property
    def has_structure(self) -> bool:
        """Whether something beyond the hunks needs a file-level decision: a rename, a mode
        change, a binary payload, or an addition/deletion that has no hunk to carry it."""
        if self.binary or self.status in ("renamed", "mode_changed"):
            return True
        if self.status in ("added", "deleted"):
            return not self.hunks
        return self.old_mode != self.new_mode


@dataclass(frozen=True)
class Review:
    revision: str
    files: tuple[FileDiff, ...]

    def hunk(self, hunk_id: str) -> Hunk:
        for file in self.files:
            for hunk in file.hunks:
                if hunk.id == hunk_id:
                    return hunk
        raise UnknownTarget(f"no hunk {hunk_id!r} in this review")

    def file(self, path: str) -> FileDiff:
        for file in self.files:
            if file.path == path:
                return file
        raise UnknownTarget(f"no file {path!r} in this review")

    @property
    def hunks(self) -> list[Hunk]:
        return [hunk for file in self.files for hunk in file.hunks]


def revision_of(diff_text: str) -> str:
    return _digest(diff_text)


# --- decisions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accept:
    pass


@dataclass(frozen=True)
class Reject:
    """``comment`` is what goes back to the agent for another round."""

    comment: str | None = None


@dataclass(frozen=True)
class Edit:
    """Accept the hunk with its proposed side replaced by ``new_text_lines``.

    The lines replace the hunk's whole new side — context included, as an editor shows it —
    and are given without line terminators: each gets the hunk's own line ending (``\\r\\n``
    in a CRLF file), and the last one has none if the proposed side ended the file without
    a newline (so an empty last line then means the file ends with the line before).
    """

    new_text_lines: Sequence[str]
    #: Why parts were left out (a split hunk partly rejected): for the task's timeline.
    comment: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "new_text_lines", tuple(self.new_text_lines))


Decision = Accept | Reject | Edit


@dataclass(frozen=True)
class Decided:
    """Decisions checked against one review. ``files`` holds file-level decisions by path,
    ``hunks`` hunk-level ones by id; a hunk's own decision wins over its file's."""

    review: Review
    files: Mapping[str, Decision]
    hunks: Mapping[str, Decision]

    def for_hunk(self, hunk: Hunk) -> Decision | None:
        return self.hunks.get(hunk.id, self.files.get(hunk.file))

    def for_file(self, file: FileDiff) -> Decision | None:
        return self.files.get(file.path)

    def undecided(self) -> list[Hunk | FileDiff]:
        """What still needs a decision: hunks, and files whose structural change (rename,
        mode, binary payload, empty addition) only a file-level decision covers."""
        pending: list[Hunk | FileDiff] = []
        for file in self.review.files:
            if file.has_structure and self.for_file(file) is None:
                pending.append(file)
            pending.extend(hunk for hunk in file.hunks if self.for_hunk(hunk) is None)
        return pending


def decide(review: Review, revision: str, decisions: Mapping[str, Decision]) -> Decided:
    """Check ``decisions`` (keyed by hunk id or by file path) against ``review``.

    Refuses decisions taken on another revision (:class:`ReviewStale`), keys that name
    nothing in the review (:class:`UnknownTarget`) and edits of something that is not a text
    hunk (:class:`InvalidDecision`). What is not named stays undecided.
    """
    if revision != review.revision:
        raise ReviewStale(review.revision, revision)
    files = {file.path: file for file in review.files}
    hunks = {hunk.id: hunk for hunk in review.hunks}
    by_file: dict[str, Decision] = {}
    by_hunk: dict[str, Decision] = {}
    unknown = [key for key in decisions if key not in files and key not in hunks]
    if unknown:
        raise UnknownTarget(
            f"unknown hunk ids or file paths: {', '.join(map(repr, unknown))} — "
            "re-read the review for the current ids"
        )
    for key, decision in decisions.items():
        if key in hunks and key in files:
            raise UnknownTarget(f"{key!r} is both a hunk id and a file path: ambiguous")
        if key in hunks:
            if isinstance(decision, Edit):
                _check_edit(decision)
            by_hunk[key] = decision
        else:
            if isinstance(decision, Edit):
                raise InvalidDecision(
                    f"{key!r}: only a hunk can be edited, not a whole file — edit its hunks"
                )
            by_file[key] = decision
    return Decided(review, by_file, by_hunk)


def retain(review: Review, decisions: Mapping[str, Decision]) -> dict[str, Decision]:
    """The decisions that still name something in ``review`` — carried over from an older
    revision of the same run, since unchanged hunks keep their ids."""
    keys = {file.path for file in review.files} | {hunk.id for hunk in review.hunks}
    return {key: decision for key, decision in decisions.items() if key in keys}


def rejected(decided: Decided) -> list[tuple[Hunk | FileDiff, str | None]]:
    """What to send back to the agent: each rejected hunk with its comment, and each file
    rejected as a whole once (not once per hunk) with the file's comment."""
    out: list[tuple[Hunk | FileDiff, str | None]] = []
    for file in decided.review.files:
        file_decision = decided.for_file(file)
        if isinstance(file_decision, Reject):
            out.append((file, file_decision.comment))
        for hunk in file.hunks:
            own = decided.hunks.get(hunk.id)
            if isinstance(own, Reject):
                out.append((hunk, own.comment))
    return out


# --- a hunk as the person sees it -------------------------------------------------------------


def hunk_from(file: str, hunk_id: str, header: str, lines: Sequence[str]) -> Hunk:
    """A hunk of ``file`` rebuilt from what a review shows (its header and body lines)."""
    match = _HUNK_HEADER.match(header)
    if match is None:
        raise DiffParseError(f"expected a hunk header, got {header!r}")
    counts = [int(g) if g is not None else 1 for g in (match.group(2), match.group(4))]
    start_old, start_new = int(match.group(1)), int(match.group(3))
    return Hunk(hunk_id, file, start_old, counts[0], start_new, counts[1], header, tuple(lines))


def edited_hunk(hunk: Hunk, text: str) -> Decision:
    """The person's edit of ``hunk`` in ``git add -p``'s form (``e``): its lines with their
    ``' '``/``'-'``/``'+'`` signs, ``#`` lines dropped, an empty line read as empty context.
    The edit must still apply — its context and ``-`` lines must be the hunk's own old side,
    in order (:class:`InvalidDecision` otherwise) — so it can only change what the ``+`` lines
    put in that one place: never another file, never another place. Unchanged, it is an
    accept."""
    crlf = bool(hunk.new_side) and all(line.endswith("\r\n") for line in hunk.new_side)
    old: list[str] = []
    new: list[str] = []
    body = text.removesuffix("\n").removesuffix("\r")  # the editor's last line end
    for number, line in enumerate(body.split("\n"), 1):
        line = line.removesuffix("\r") if crlf else line
        if line.startswith(("#", "\\")):
            continue
        sign, rest = (line[:1], line[1:]) if line else (" ", "")
        if sign not in (" ", "-", "+"):
            raise InvalidDecision(
                f"line {number} of the edited hunk starts with {sign!r}: each line starts with"
                " ' ' (unchanged), '-' (removed) or '+' (added)"
            )
        if sign in (" ", "-"):
            old.append(rest)
        if sign in (" ", "+"):
            new.append(rest)
    wanted = [line[1:].removesuffix("\r") if crlf else line[1:] for line in hunk.lines]
    wanted_old = [w for w, line in zip(wanted, hunk.lines, strict=True) if line[:1] in " -"]
    if old != wanted_old:
        raise InvalidDecision(
            "the edited hunk does not apply: its unchanged and '-' lines must stay as they were"
            " (to keep a removed line, turn its '-' into a space; to drop an added line, delete"
            " it)"
        )
    wanted_new = [w for w, line in zip(wanted, hunk.lines, strict=True) if line[:1] in " +"]
    if new == wanted_new:
        return Accept()
    return Edit(new)


# --- splitting ------------------------------------------------------------------------------


def split(hunk: Hunk) -> tuple[Hunk, ...]:
    """``hunk`` cut where unchanged lines separate its changes, as ``git add -p``'s ``s``:
    one part per run of changed lines, each with the context around it (context between two
    runs is shown in both parts). The parts' headers say where each lies when every earlier
    part is accepted; their ids are the hunk's with ``/n``. A hunk with a single run of
    changes, or with a ``\\ No newline`` marker, is not cut: ``(hunk,)``."""
    body = hunk.lines
    runs = _change_runs(body)
    if len(runs) < 2 or any(line.startswith("\\") for line in body):
        return (hunk,)
    parts = []
    for index in range(len(runs)):
        lead = runs[index - 1][1] if index else 0
        trail = runs[index + 1][0] if index + 1 < len(runs) else len(body)
        lines = body[lead:trail]
        old_count = sum(line[:1] in (" ", "-") for line in lines)
        new_count = sum(line[:1] in (" ", "+") for line in lines)
        old_at = hunk.old_start + sum(line[:1] in (" ", "-") for line in body[:lead])
        new_at = hunk.new_start + sum(line[:1] in (" ", "+") for line in body[:lead])
        header = f"@@ -{_range(old_at, old_count)} +{_range(new_at, new_count)} @@{hunk.section}"
        parts.append(
            Hunk(
                f"{hunk.id}/{index + 1}",
                hunk.file,
                old_at,
                old_count,
                new_at,
                new_count,
                header,
                lines,
            )
        )
    return tuple(parts)


def _change_runs(body: Sequence[str]) -> list[tuple[int, int]]:
    """(start, end) of each run of consecutive changed lines of a hunk body."""
    runs: list[tuple[int, int]] = []
    for index, line in enumerate(body):
        if line[:1] in ("-", "+"):
            if runs and runs[-1][1] == index:
                runs[-1] = (runs[-1][0], index + 1)
            else:
                runs.append((index, index + 1))
    return runs


def rejoin(hunk: Hunk, decisions: Sequence[Decision]) -> Decision:
    """The decision on ``hunk`` that stages exactly its parts (:func:`split`) as decided —
    one decision per part, in order: all accepted is an accept, all rejected a reject (with
    the parts' comments), a mix an edit whose new side takes each accepted part's new lines
    and each rejected part's old ones. An edited part is refused (edit the whole hunk)."""
    parts = split(hunk)
    if len(decisions) != len(parts):
        raise InvalidDecision(f"{len(parts)} parts of {hunk.header!r}, {len(decisions)} decisions")
    comments = [d.comment for d in decisions if isinstance(d, Reject) and d.comment]
    comment = "; ".join(comments) or None
    if any(isinstance(d, Edit) for d in decisions):
        raise InvalidDecision("a part of a split hunk cannot be edited: edit the whole hunk")
    if all(isinstance(d, Accept) for d in decisions):
        return Accept()
    if all(isinstance(d, Reject) for d in decisions):
        return Reject(comment)
    body = hunk.lines
    runs = _change_runs(body)
    side: list[str] = []
    position = 0
    for (start, end), decision in zip(runs, decisions, strict=True):
        kept = "+" if isinstance(decision, Accept) else "-"
        side += [line[1:] for line in body[position:start]]
        side += [line[1:] for line in body[start:end] if line[:1] == kept]
        position = end
    side += [line[1:] for line in body[position:]]
    crlf = bool(hunk.new_side) and all(line.endswith("\r\n") for line in hunk.new_side)
    if crlf and not all(line.endswith("\r") for line in side):
        raise InvalidDecision(
            f"{hunk.file}: the hunk mixes line endings; decide it whole (no split)"
        )
    return Edit([line.removesuffix("\r") if crlf else line for line in side], comment)


# --- applying -------------------------------------------------------------------------------


def apply(base_text: str, file: FileDiff, decided: Decided) -> str:
    """The file's content with only the accepted hunks applied (edited ones with their edited
    lines) on top of ``base_text`` — what ``git add -p`` would stage. Refuses a base that does
    not match the hunks' old sides (:class:`BaseMismatch`) and binary files."""
    if file.binary:
        raise InvalidDecision(f"{file.path}: a binary file has no text to apply hunks to")
    base = _split_lines(base_text)
    out: list[str] = []
    position = 0
    for change in _changes(file, decided):
        start = _start_index(change.hunk.old_start, change.hunk.old_lines)
        old = change.hunk.old_side
        if start < position or base[start : start + len(old)] != old:
            raise BaseMismatch(
                f"{file.path}: the base does not match hunk {change.hunk.header!r} — "
                "it is not the text the diff was computed against"
            )
        out.extend(base[position:start])
        out.extend(change.new_side)
        position = start + len(old)
    out.extend(base[position:])
    return "".join(out)


def accepted_patch(decided: Decided) -> str:
    """A diff of only what was accepted, for ``git apply --cached``: accepted and edited
    hunks (with their new-side positions recomputed), added and deleted files, and renames,
    mode changes and binary payloads accepted at file level. A file accepted whole is
    passed through verbatim."""
    return "".join(_file_patch(file, decided) for file in decided.review.files)


# --- parsing --------------------------------------------------------------------------------


def parse(diff_text: str) -> Review:
    """The review of ``diff_text`` (git's ``diff --binary`` format)."""
    lines = diff_text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    starts = [i for i, line in enumerate(lines) if line.startswith("diff --git ")]
    if any(line.strip() for line in lines[: starts[0] if starts else len(lines)]):
        raise DiffParseError("expected 'diff --git' at the start of the diff")
    bounds = zip(starts, [*starts[1:], len(lines)][: len(starts)], strict=True)
    files = tuple(_parse_file(lines[start:end], start + 1) for start, end in bounds)
    paths = [file.path for file in files]
    if len(set(paths)) != len(paths):
        raise DiffParseError("a path appears twice in the diff")
    return Review(revision_of(diff_text), files)


class _Header:
    """The extended header lines of one file, as they are read."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.minus: str | None = None
        self.plus: str | None = None
        self.binary = False


_EXTENDED = (
    "old mode ",
    "new mode ",
    "deleted file mode ",
    "new file mode ",
    "rename from ",
    "rename to ",
    "similarity index ",
    "dissimilarity index ",
    "index ",
)


def _parse_file(lines: list[str], first_line: int) -> FileDiff:
    header = _Header()
    i = 1
    while i < len(lines) and not lines[i].startswith("@@"):
        line = lines[i]
        prefix = next((p for p in _EXTENDED if line.startswith(p)), None)
        if prefix is not None:
            header.values[prefix.strip()] = line[len(prefix) :]
        elif line.startswith("--- "):
            header.minus = _unquote(line[4:].removesuffix("\t"))
        elif line.startswith("+++ "):
            header.plus = _unquote(line[4:].removesuffix("\t"))
        elif line == "GIT binary patch" or (
            line.startswith("Binary files ") and line.endswith(" differ")
        ):
            header.binary = True
            i = len(lines)  # the payload is kept verbatim in ``raw``
            break
        else:
            raise DiffParseError(f"line {first_line + i}: unexpected header line {line!r}")
        i += 1
    old_path, new_path = _paths(lines[0], header, first_line)
    path = old_path if new_path is None else new_path
    assert path is not None  # _paths never returns two Nones
    hunks: list[Hunk] = []
    while i < len(lines):
        hunk, i = _parse_hunk(lines, i, path, first_line)
        hunks.append(hunk)
    values = header.values
    old_mode = values.get("old mode") or values.get("deleted file mode")
    new_mode = values.get("new mode") or values.get("new file mode")
    index_mode = values.get("index", "").partition(" ")[2] or None
    old_mode = old_mode or (None if "new file mode" in values else index_mode)
    new_mode = new_mode or (None if "deleted file mode" in values else index_mode)
    status: Status
    if "new file mode" in values:
        status = "added"
    elif "deleted file mode" in values:
        status = "deleted"
    elif "rename from" in values:
        status = "renamed"
    elif header.binary:
        status = "binary"
    elif not hunks and old_mode != new_mode:
        status = "mode_changed"
    else:
        status = "modified"
    return FileDiff(
        path=path,
        old_path=old_path,
        status=status,
        old_mode=old_mode,
        new_mode=new_mode,
        binary=header.binary,
        hunks=tuple(_with_ids(hunks)),
        raw="".join(line + "\n" for line in lines),
        similarity=values.get("similarity index"),
    )


def _paths(first: str, header: _Header, first_line: int) -> tuple[str | None, str | None]:
    """(old path, new path), ``None`` for the side that does not exist. The ``rename`` and
    ``---``/``+++`` lines are unambiguous; the ``diff --git`` line is only needed for files
    without hunks, where both names are equal unless renamed."""
    values = header.values
    if "rename from" in values:
        return _unquote(values["rename from"]), _unquote(values["rename to"])
    if header.minus is not None and header.plus is not None:
        old = None if header.minus == _DEV_NULL else _strip_prefix(header.minus)
        new = None if header.plus == _DEV_NULL else _strip_prefix(header.plus)
        return old, new
    name = _same_name(first.removeprefix("diff --git "))
    if name is None:
        raise DiffParseError(f"line {first_line}: cannot read the paths of {first!r}")
    return (
        None if "new file mode" in values else name,
        None if "deleted file mode" in values else name,
    )


def _same_name(names: str) -> str | None:
    """The path of ``a/P b/P``, both sides quoted or neither; ``None`` if they differ."""
    if names.startswith('"'):
        end = _quoted_end(names)
        left, right = _unquote(names[:end]), _unquote(names[end + 1 :])
    else:
        half = (len(names) - 1) // 2
        left, right = names[:half], names[half + 1 :]
    if _strip_prefix(left) != _strip_prefix(right):
        return None
    return _strip_prefix(left)


def _quoted_end(text: str) -> int:
    i = 1
    while i < len(text) and text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    return i + 1


def _strip_prefix(path: str) -> str:
    if len(path) < 2 or path[1] != "/":
        raise DiffParseError(f"path {path!r} lacks git's a/ or b/ prefix")
    return path[2:]


_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def _unquote(text: str) -> str:
    """A path as git prints it: C-quoted when it holds special or non-ASCII bytes."""
    if not (text.startswith('"') and text.endswith('"') and len(text) >= 2):
        return text
    out = bytearray()
    body = text[1:-1]
    i = 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            out += char.encode("utf-8", "surrogateescape")
            i += 1
        elif body[i + 1 : i + 2] in _ESCAPES:
            out.append(_ESCAPES[body[i + 1]])
            i += 2
        else:
            out.append(int(body[i + 1 : i + 4], 8))
            i += 4
    return out.decode("utf-8", "surrogateescape")


def quoted_path(path: str) -> str:
    """The inverse of :func:`_unquote`, as git quotes (``core.quotePath``): on one line, its
    control characters escaped."""
    raw = path.encode("utf-8", "surrogateescape")
    if all(32 <= byte < 127 and byte not in (34, 92) for byte in raw):
        return path
    names = {value: key for key, value in _ESCAPES.items()}
    out = []
    for byte in raw:
        if byte in names:
            out.append("\\" + names[byte])
        elif 32 <= byte < 127:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _parse_hunk(lines: list[str], i: int, path: str, first_line: int) -> tuple[Hunk, int]:
    match = _HUNK_HEADER.match(lines[i])
    if match is None:
        raise DiffParseError(f"line {first_line + i}: expected a hunk header, got {lines[i]!r}")
    old_start, new_start = int(match.group(1)), int(match.group(3))
    old_count = int(match.group(2) if match.group(2) is not None else 1)
    new_count = int(match.group(4) if match.group(4) is not None else 1)
    body: list[str] = []
    old_left, new_left = old_count, new_count
    j = i + 1
    while j < len(lines) and (old_left or new_left or lines[j].startswith("\\")):
        line = lines[j]
        kind = line[:1]
        if kind in (" ", ""):
            old_left, new_left = old_left - 1, new_left - 1
            line = " " + line[1:]  # some tools strip the space of an empty context line
        elif kind == "-":
            old_left -= 1
        elif kind == "+":
            new_left -= 1
        elif kind != "\\" or not body:
            raise DiffParseError(f"line {first_line + j}: unexpected line in a hunk: {line!r}")
        if old_left < 0 or new_left < 0:
            raise DiffParseError(f"line {first_line + j}: hunk longer than its header says")
        body.append(line)
        j += 1
    if old_left or new_left:
        raise DiffParseError(f"line {first_line + i}: hunk {lines[i]!r} is truncated")
    hunk = Hunk("", path, old_start, old_count, new_start, new_count, lines[i], tuple(body))
    return hunk, j


def _with_ids(hunks: Iterable[Hunk]) -> Iterator[Hunk]:
    """Give each hunk the hash of its path and content; a second hunk with the same content
    in the same file gets its occurrence number hashed in, so ids stay unique."""
    seen: dict[str, int] = {}
    for hunk in hunks:
        key = hunk.file + "\0" + "\n".join(hunk.lines)
        count = seen.get(key, 0)
        seen[key] = count + 1
        hunk_id = _digest(key if count == 0 else f"{key}\0{count}")
        yield Hunk(
            hunk_id,
            hunk.file,
            hunk.old_start,
            hunk.old_lines,
            hunk.new_start,
            hunk.new_lines,
            hunk.header,
            hunk.lines,
        )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:_ID_LENGTH]


# --- hunk arithmetic ------------------------------------------------------------------------


def _split_lines(text: str) -> list[str]:
    """Lines with their ``\\n``; only ``\\n`` separates lines (as for git), not ``\\r`` or
    the other separators :meth:`str.splitlines` knows."""
    lines = [line + "\n" for line in text.split("\n")]
    last = lines.pop()[:-1]  # what follows the last newline
    return [*lines, last] if last else lines


def _side(body: Sequence[str], sign: str) -> list[str]:
    """One side of a hunk body: context and ``sign`` lines, each ended by ``\\n`` unless the
    ``\\ No newline`` marker follows it."""
    side: list[str] = []
    for index, line in enumerate(body):
        if line[:1] in (" ", sign):
            missing = index + 1 < len(body) and body[index + 1].startswith("\\")
            side.append(line[1:] + ("" if missing else "\n"))
    return side


def _start_index(start: int, count: int) -> int:
    """0-based index where a hunk side begins; an empty side names the line before it."""
    return start if count == 0 else start - 1


@dataclass(frozen=True)
class _Change:
    """An accepted hunk as it will be applied: its own, or an edited, new side."""

    hunk: Hunk
    new_side: list[str]
    edited: bool


def _changes(file: FileDiff, decided: Decided) -> list[_Change]:
    changes = []
    for hunk in file.hunks:
        decision = decided.for_hunk(hunk)
        if isinstance(decision, Accept):
            changes.append(_Change(hunk, hunk.new_side, edited=False))
        elif isinstance(decision, Edit):
            changes.append(_Change(hunk, _edited_side(hunk, decision), edited=True))
    return changes


def _edited_side(hunk: Hunk, edit: Edit) -> list[str]:
    proposed = hunk.new_side or hunk.old_side
    ending = "\r\n" if proposed and all(line.endswith("\r\n") for line in proposed) else "\n"
    lines = [line + ending for line in edit.new_text_lines]
    if lines and hunk.new_side and not hunk.new_side[-1].endswith("\n"):
        lines[-1] = lines[-1].removesuffix(ending)
    return [line for line in lines if line]  # an empty last line without newline is no line


def _check_edit(edit: Edit) -> None:
    if any("\n" in line for line in edit.new_text_lines):
        raise InvalidDecision("edited lines must not contain line breaks: give one per line")


def _body(old: Sequence[str], new: Sequence[str]) -> list[str]:
    """A hunk body turning ``old`` into ``new`` (all of it one hunk), git's way: deletions
    before additions, the marker after a line that lacks its newline."""
    body: list[str] = []

    def emit(sign: str, lines: Sequence[str]) -> None:
        for line in lines:
            body.append(sign + line.removesuffix("\n"))
            if not line.endswith("\n"):
                body.append(NO_NEWLINE)

    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            emit(" ", old[i1:i2])
        else:
            emit("-", old[i1:i2])
            emit("+", new[j1:j2])
    return body


def _range(start: int, count: int) -> str:
    return str(start) if count == 1 else f"{start},{count}"


def _hunk_text(change: _Change, shift: int) -> tuple[list[str], int]:
    """The hunk's lines in the accepted patch, where earlier rejected hunks have shifted its
    new side by ``shift`` lines; and the shift after it."""
    hunk = change.hunk
    new_count = len(change.new_side)
    body = list(hunk.lines) if not change.edited else _body(hunk.old_side, change.new_side)
    if all(line.startswith((" ", "\\")) for line in body):
        return [], shift  # an edit that restored the base: nothing to stage
    index = _start_index(hunk.old_start, hunk.old_lines) + shift
    new_start = index + 1 if new_count else index
    header = (
        f"@@ -{_range(hunk.old_start, hunk.old_lines)} "
        f"+{_range(new_start, new_count)} @@{hunk.section}"
    )
    return [header, *body], shift + new_count - hunk.old_lines


def _file_patch(file: FileDiff, decided: Decided) -> str:
    changes = _changes(file, decided)
    structure = file.has_structure and isinstance(decided.for_file(file), Accept)
    whole = len(changes) == len(file.hunks) and not any(c.edited for c in changes)
    if file.binary or not file.hunks:
        return file.raw if structure else ""
    if whole and (structure or not file.has_structure):
        return file.raw
    created = file.status == "added" and bool(changes)
    deleted = file.status == "deleted" and whole
    before = file.old_path or file.path
    after = file.path if structure or created else before
    lines = [f"diff --git {quoted_path('a/' + before)} {quoted_path('b/' + after)}"]
    if created:
        lines.append(f"new file mode {file.new_mode}")
    elif deleted:
        lines.append(f"deleted file mode {file.old_mode}")
    elif structure:
        if file.old_mode != file.new_mode:
            lines += [f"old mode {file.old_mode}", f"new mode {file.new_mode}"]
        if file.status == "renamed":
            if file.similarity is not None:
                lines.append(f"similarity index {file.similarity}")
            lines += [f"rename from {quoted_path(before)}", f"rename to {quoted_path(after)}"]
    hunk_lines: list[str] = []
    shift = 0
    for change in changes:
        text, shift = _hunk_text(change, shift)
        hunk_lines += text
    if hunk_lines:
        lines.append("--- " + (_DEV_NULL if created else _name("a/", before)))
        lines.append("+++ " + (_DEV_NULL if deleted else _name("b/", after)))
        lines += hunk_lines
    elif not (created or deleted or structure):
        return ""
    return "".join(line + "\n" for line in lines)


def _name(prefix: str, path: str) -> str:
    """A ``---``/``+++`` name: git ends it with a tab when it holds a space."""
    quoted = quoted_path(prefix + path)
    return quoted + "\t" if " " in quoted else quoted
