"""The run's transcript: one JSON object per line, flushed after every step, so a crash or a
kill leaves everything up to the last step on disk. It stays on this machine.

A file is a ``header`` (versions, provider, model, config, base commit, the system prompt and
tools once), then per turn a ``request`` (only the messages new since the previous request —
the full request is the header's prefix plus every message so far), a ``response`` (the
assembled streamed message, stop reason, usage, cost), a ``tool_call`` and ``tool_result``
per tool use (with exit code, duration and the command's whole output), ``verification``
records, ``note`` records (budget, policy, retries), and a ``footer`` (outcome, diff, summary,
totals). The models below are the format's single source of truth; ``locus agent schema``
prints their JSON Schema.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from locusd.agent.messages import Message, Response, ToolSpec, Usage

FORMAT_VERSION = 1

Outcome = Literal["completed", "failed", "cancelled", "needs_input", "budget_exhausted"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Header(_Record):
    type: Literal["header"] = "header"
    format: int = FORMAT_VERSION
    versions: dict[str, str]
    provider: str
    model: str
    task: str
    repo: str
    worktree: str
    branch: str
    base_commit: str
    config: dict[str, Any]
    system: str
    instructions: str | None
    tools: list[ToolSpec]
    started_at: str


class RequestRecord(_Record):
    type: Literal["request"] = "request"
    turn: int
    new_messages: list[Message]
    message_count: int


class ResponseRecord(_Record):
    type: Literal["response"] = "response"
    turn: int
    response: Response
    duration: float
    cost: float | None
    total_usage: Usage
    total_cost: float


class ToolCallRecord(_Record):
    type: Literal["tool_call"] = "tool_call"
    turn: int
    id: str
    name: str
    input: dict[str, Any]


class ToolResultRecord(_Record):
    type: Literal["tool_result"] = "tool_result"
    turn: int
    id: str
    name: str
    content: str
    is_error: bool
    duration: float
    exit_code: int | None = None
    full_output: str | None = None


class Evidence(_Record):
    """What the runner saw when it ran the verify command itself."""

    command: str
    reason: str  # why this command: from .locus.toml, or what detection found
    exit_code: int | None
    duration: float
    output_tail: str
    passed: bool
    timed_out: bool = False


class VerificationRecord(_Record):
    type: Literal["verification"] = "verification"
    turn: int
    round: int  # the n-th verify run of this run
    evidence: Evidence


class NoteRecord(_Record):
    type: Literal["note"] = "note"
    turn: int
    kind: str
    message: str


class FollowUp(_Record):
    title: str
    description: str = ""


class Ending(_Record):
    """How a run ended: the footer of its transcript, and the core of its report."""

    outcome: Outcome
    reason: str | None
    summary: str | None
    question: str | None
    follow_ups: list[FollowUp]
    verification: Evidence | None
    diff: str
    turns: int
    usage: Usage
    cost_usd: float
    cost_known: bool
    duration: float


class Footer(Ending):
    type: Literal["footer"] = "footer"


Record = Annotated[
    Header
    | RequestRecord
    | ResponseRecord
    | ToolCallRecord
    | ToolResultRecord
    | VerificationRecord
    | NoteRecord
    | Footer,
    Field(discriminator="type"),
]
RECORD: TypeAdapter[Record] = TypeAdapter(Record)


class TranscriptError(ValueError):
    pass


#: How large a run's transcript may grow (model text and tool results included).
MAX_TRANSCRIPT_BYTES = 64 * 1024 * 1024
#: Kept free for the footer, whatever came before: a run always ends with one.
FOOTER_SHARE = 8
#: Kept free for the notes that say records were cut or left out.
_NOTE_ROOM = 4096
#: The longest string a record keeps once the transcript is near its cap, tried in turn.
_STRING_LIMITS = (1 << 20, 1 << 16, 1 << 12, 1 << 8)  # never below a Literal's length


def shortened(value: Any, limit: int) -> Any:
    """``value`` (JSON data: a record's, an event's) with every string over ``limit``
    characters cut to its head and tail around a note."""
    if isinstance(value, str) and len(value) > limit:
        half = limit // 2
        cut = len(value) - 2 * half
        return (
            f"{value[:half]}… [{cut} characters cut: a size cap] …{value[-half:] if half else ''}"
        )
    if isinstance(value, dict):
        return {key: shortened(item, limit) for key, item in value.items()}
    if isinstance(value, list):
        return [shortened(item, limit) for item in value]
    return value


def _fitted(record: _Record, room: int) -> tuple[str | None, bool]:
    """The record's line within ``room`` bytes — whole when it fits, else with its long strings
    cut (still a valid record), else None — and whether anything was cut."""
    line = record.model_dump_json()
    if len(line.encode()) <= room:
        return line, False
    data = record.model_dump(mode="json")
    for limit in _STRING_LIMITS:
        line = json.dumps(shortened(data, limit), ensure_ascii=False, separators=(",", ":"))
        if len(line.encode()) <= room:
            return line, True
    return None, True


class TranscriptWriter:
    """Appends records; each one is on disk (flushed to the OS) before the run goes on. The
    file stays within ``cap`` bytes: a record that would pass it is shortened (its long texts
    cut, head and tail kept) or, when even that does not fit, left out — a note says which,
    once — and the last ``cap // FOOTER_SHARE`` bytes are the footer's alone."""

    def __init__(self, path: Path, cap: int = MAX_TRANSCRIPT_BYTES) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: IO[str] = path.open("a", encoding="utf-8")
        os.chmod(path, 0o600)  # it holds code and command output: the owner's eyes only
        self.cap = cap
        self._footer_room = cap // FOOTER_SHARE
        self._written = os.fstat(self._file.fileno()).st_size  # a continued run appends
        self._noted: set[str] = set()

    @property
    def written(self) -> int:
        """Bytes in the file so far."""
        return self._written

    def write(self, record: _Record) -> None:
        if isinstance(record, Footer):
            room = max(self.cap - self._written, self._footer_room)
            self._put(_fitted(record, room - 1)[0] or record.model_dump_json())
            return
        line, cut = _fitted(record, self.cap - self._footer_room - _NOTE_ROOM - self._written - 1)
        if line is None:
            self._note(record, "left_out", "records from here on are left out; the footer follows")
            return
        if cut:
            self._note(
                record, "cut", "long texts in records from here on are cut (head and tail kept)"
            )
        self._put(line)

    def _note(self, record: _Record, kind: str, what: str) -> None:
        if kind in self._noted:
            return
        self._noted.add(kind)
        message = f"the transcript reached its size cap ({self.cap} bytes): {what}"
        note = NoteRecord(turn=getattr(record, "turn", 0), kind="transcript_cap", message=message)
        self._put(note.model_dump_json())

    def _put(self, line: str) -> None:
        self._file.write(line + "\n")
        self._file.flush()
        self._written += len(line.encode()) + 1

    def close(self) -> None:
        self._file.close()


def read(path: Path) -> list[Record]:
    """Every record of a transcript. A torn last line (no newline yet: the run was killed
    mid-write) is dropped; anything else malformed is an error naming the line."""
    records: list[Record] = []
    # Split at "\n" only: str.splitlines() would also break at U+2028 and friends, which JSON
    # leaves unescaped inside strings. Every record the writer finished ends with "\n".
    lines = path.read_text(encoding="utf-8").split("\n")[:-1]
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(RECORD.validate_python(json.loads(line)))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise TranscriptError(f"{path}:{number}: not a transcript record: {exc}") from None
    if not records or not isinstance(records[0], Header):
        raise TranscriptError(f"{path}: does not start with a transcript header")
    return records


def json_schema() -> dict[str, Any]:
    return RECORD.json_schema()
