"""The run's transcript: one JSON object per line, flushed after every step, so a crash or a
kill leaves everything up to the last step on disk. It stays on this machine.

A file is a ``header`` (versions, provider, model, config, base commit, the system prompt and
tools once), then per turn a ``request`` (only the messages new since the previous request —
the full request is the header's prefix plus every message so far), a ``response`` (the
assembled streamed message, stop reason, usage, cost), a ``tool_call`` and ``tool_result``
per tool use (with exit code, duration and the command's whole output), ``verification``
records, ``note`` records (budget, policy, retries), ``egress`` records (each connection a
command asked the egress proxy for, allowed or refused), ``acp`` records (each message to and
from an external ACP agent), and a ``footer`` (outcome, diff,
summary, totals, the network used). The models below are the format's single source of truth; ``locus agent schema``
prints their JSON Schema. Since format 2 each line ends with a ``chain`` link (SHA-256 over the
previous link and the line), so an edited record is named when the transcript is read.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import IO, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from locusd.agent.checkdeps import CheckChange
from locusd.agent.messages import Message, Response, ToolSpec, Usage
from locusd.agent.testcounts import TestCounts

#: 2: every line ends with ``"chain"``, a hash over the line and the previous one's chain.
FORMAT_VERSION = 2

#: ``unverified``: the model finished and the check passed, but the diff changes what the check
#: depends on (its definitions, tests), so the pass proves nothing: the reviewer must look.
Outcome = Literal[
    "completed", "unverified", "failed", "cancelled", "needs_input", "budget_exhausted"
]


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
    #: The file hints section the first message ended with (None: none; older recordings).
    hints: str | None = None
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
    """What the runner saw when it ran the verify command itself. ``passed`` only when the
    command exited 0, its runner's counts (when printed) show no failure and at least one
    test, and the diff changes nothing the check depends on."""

    command: str
    reason: str  # why this command: from .locus.toml at the base commit, or what detection found
    exit_code: int | None
    duration: float
    output_tail: str
    passed: bool
    timed_out: bool = False
    counts: TestCounts | None = None  # the runner's own summary, when one was recognised
    failure: str | None = None  # why the check itself did not pass (None: it did)
    check_changes: list[CheckChange] = Field(default_factory=list)  # what the diff changed


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


class AcpRecord(_Record):
    """One ACP message between Locus and an external agent (docs/acp.md), as it went."""

    type: Literal["acp"] = "acp"
    turn: int
    direction: Literal["to_agent", "from_agent"]
    message: dict[str, Any]


class EgressRecord(_Record):
    """One connection a command asked the egress proxy for: allowed or refused, and why."""

    type: Literal["egress"] = "egress"
    host: str
    port: int
    method: str  # CONNECT (a TLS tunnel), or the method of a plain HTTP request
    allowed: bool
    reason: str
    sent: int  # bytes from the command
    received: int  # bytes to the command
    duration: float


class ModelCallRecord(_Record):
    """One call an external agent made to its model, through the run's model gateway: what
    the model server said it used (``usage`` None: a format the gateway cannot read, or a
    refused call), and what that cost when the model is priced."""

    type: Literal["model_call"] = "model_call"
    method: str
    path: str
    status: int
    format: str  # anthropic, responses, gemini, or unknown
    refused: str | None = None
    model: str | None = None
    usage: Usage | None = None
    cost_usd: float | None = None  # None: the model has no price
    problem: str | None = None
    sent: int  # request body bytes
    received: int  # response body bytes
    duration: float


class NetworkUse(_Record):
    """A run's connections to one host and port with one verdict, summed: the review's view."""

    host: str
    port: int
    allowed: bool
    connections: int
    sent: int
    received: int
    reason: str  # the first connection's


class FollowUp(_Record):
    title: str
    description: str = ""


#: A planning run's bounds: what one proposal may hold, and how many a run may make.
MAX_PROPOSALS = 10
MAX_LIKELY_FILES = 20


class Proposal(_Record):
    """A task a planning run proposes (``propose_tasks``): only its text can ever leave the
    machine, and only once the person accepts it."""

    title: str = Field(min_length=1, max_length=200, pattern=r"^[^\n\r]*\S[^\n\r]*$")
    description: str = Field("", max_length=4000)
    likely_files: list[Annotated[str, Field(min_length=1, max_length=300)]] = Field(
        default_factory=list, max_length=MAX_LIKELY_FILES
    )


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
    #: What the commands reached through the egress proxy, and what it refused.
    network: list[NetworkUse] = Field(default_factory=list)
    #: A planning run's result: the tasks it proposes (none for a work run).
    proposals: list[Proposal] = Field(default_factory=list)


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
    | EgressRecord
    | AcpRecord
    | ModelCallRecord
    | Footer,
    Field(discriminator="type"),
]
RECORD: TypeAdapter[Record] = TypeAdapter(Record)


class TranscriptError(ValueError):
    pass


_CHAIN = re.compile(r',"chain":"([0-9a-f]{64})"\}$')


def chain_of(previous: str, body: str) -> str:
    """The chain value of a record: SHA-256 over the previous record's chain and this record's
    JSON (without its chain). Editing, dropping or reordering records breaks every later link."""
    return hashlib.sha256(f"{previous}\n{body}".encode()).hexdigest()


def _chained(previous: str, body: str) -> tuple[str, str]:
    link = chain_of(previous, body)
    return body[:-1] + f',"chain":"{link}"}}', link


#: How large a run's transcript may grow (model text and tool results included).
MAX_TRANSCRIPT_BYTES = 64 * 1024 * 1024
#: Kept free for the footer, whatever came before: a run always ends with one.
FOOTER_SHARE = 8
#: Kept free for the notes that say records were cut or left out.
_NOTE_ROOM = 4096
#: The longest string a record keeps once the transcript is near its cap, tried in turn.
_STRING_LIMITS = (1 << 20, 1 << 16, 1 << 12, 1 << 8)  # never below a Literal's length
#: What the hash chain adds to a line: ``,"chain":"<64 hex digits>"``.
_LINK_BYTES = len(',"chain":""') + 64


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
    """Appends records; each one is on disk (flushed to the OS) before the run goes on, and
    carries its link of the hash chain (appending to an existing file continues its chain). The
    file stays within ``cap`` bytes: a record that would pass it is shortened (its long texts
    cut, head and tail kept) or, when even that does not fit, left out — a note says which,
    once — and the last ``cap // FOOTER_SHARE`` bytes are the footer's alone."""

    def __init__(self, path: Path, cap: int = MAX_TRANSCRIPT_BYTES) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._chain = _last_chain(path)
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
            room = max(self.cap - self._written, self._footer_room) - _LINK_BYTES - 1
            self._put(_fitted(record, room)[0] or record.model_dump_json())
            return
        room = self.cap - self._footer_room - _NOTE_ROOM - self._written - _LINK_BYTES - 1
        line, cut = _fitted(record, room)
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

    def _put(self, body: str) -> None:
        line, self._chain = _chained(self._chain, body)
        self._file.write(line + "\n")
        self._file.flush()
        self._written += len(line.encode()) + 1

    def close(self) -> None:
        self._file.close()


def _last_chain(path: Path) -> str:
    if not path.is_file():
        return ""
    lines = [line for line in path.read_text(encoding="utf-8").split("\n")[:-1] if line.strip()]
    found = _CHAIN.search(lines[-1]) if lines else None
    return found.group(1) if found else ""


def _unchained(path: Path, number: int, line: str, previous: str | None) -> tuple[str, str | None]:
    """The record's JSON without its chain, and its link; a link that does not follow from
    the previous one is tampering, named by its line."""
    found = _CHAIN.search(line)
    if found is None:
        if previous is not None:
            raise TranscriptError(f"{path}:{number}: record has no chain link: the file was edited")
        return line, None
    body = line[: found.start()] + "}"
    if found.group(1) != chain_of(previous or "", body):
        raise TranscriptError(
            f"{path}:{number}: the hash chain breaks here: this record (or one before it) was"
            " edited, removed or reordered after it was written"
        )
    return body, found.group(1)


def read(path: Path) -> list[Record]:
    """Every record of a transcript, its hash chain checked (format 2; format 1 files have
    none). A torn last line (no newline yet: the run was killed mid-write) is dropped;
    anything else malformed or tampered with is an error naming the line."""
    records: list[Record] = []
    # Split at "\n" only: str.splitlines() would also break at U+2028 and friends, which JSON
    # leaves unescaped inside strings. Every record the writer finished ends with "\n".
    lines = path.read_text(encoding="utf-8").split("\n")[:-1]
    previous: str | None = None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        body, link = _unchained(path, number, line, previous if records else None)
        if records and previous is None and link is not None:
            raise TranscriptError(f"{path}:{number}: a chain link in an unchained transcript")
        previous = link
        try:
            records.append(RECORD.validate_python(json.loads(body)))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise TranscriptError(f"{path}:{number}: not a transcript record: {exc}") from None
    if not records or not isinstance(records[0], Header):
        raise TranscriptError(f"{path}: does not start with a transcript header")
    if records[0].format >= 2 and previous is None:
        raise TranscriptError(f"{path}: format {records[0].format} without its hash chain")
    return records


def json_schema() -> dict[str, Any]:
    """Every record as a line holds it: its model's fields and the ``chain`` link."""
    schema = RECORD.json_schema()
    link = {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "hash chain link"}
    for name in schema["discriminator"]["mapping"].values():
        definition = schema["$defs"][name.rsplit("/", 1)[-1]]
        definition["properties"]["chain"] = link
    return schema
