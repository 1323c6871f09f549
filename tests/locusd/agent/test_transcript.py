"""The transcript format (one JSON record per line, readable while the run goes on) and the
replay provider that plays a recorded transcript back."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]  # no stubs installed
import pytest

from locusd.agent.messages import (
    Message,
    Request,
    Response,
    TextBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    Usage,
)
from locusd.agent.providers.replay import ReplayDivergence, ReplayProvider
from locusd.agent.transcript import (
    AcpRecord,
    EgressRecord,
    Evidence,
    FollowUp,
    Footer,
    Header,
    ModelCallRecord,
    NetworkUse,
    NoteRecord,
    Record,
    RequestRecord,
    ResponseRecord,
    ToolCallRecord,
    ToolResultRecord,
    TranscriptError,
    TranscriptWriter,
    VerificationRecord,
    json_schema,
    read,
)

TASK = "Fix add() in calc.py"
TOOLS = [
    ToolSpec(
        name="read_file",
        description="Read a file",
        input_schema={"type": "object", "properties": {"path": {"type": "string"}}},
    )
]
EVIDENCE = Evidence(
    command="python3 -m unittest -q",
    reason="detected: test_*.py files and no pytest configuration",
    exit_code=0,
    duration=0.25,
    output_tail="OK\n",
    passed=True,
)


def header(task: str = TASK) -> Header:
    return Header(
        versions={"locus": "0.1.0", "python": "3.11"},
        provider="anthropic",
        model="claude-test",
        task=task,
        repo="/home/dev/project",
        worktree="/home/dev/.locus/worktrees/fix-add",
        branch="locus/fix-add",
        base_commit="0" * 40,
        config={"budget": {"max_turns": 5}},
        system="You are Locus.",
        instructions=None,
        tools=TOOLS,
        started_at="2025-01-01T00:00:00Z",
    )


def tool_use(id: str, path: str = "calc.py") -> Message:
    return Message(
        role="assistant",
        content=(
            TextBlock(text=f"Reading {path}."),
            ToolUseBlock(id=id, name="read_file", input={"path": path}),
        ),
    )


def results(*pairs: tuple[str, bool]) -> Message:
    return Message(
        role="user",
        content=tuple(
            ToolResultBlock(tool_use_id=id, content="…", is_error=err) for id, err in pairs
        ),
    )


def response(message: Message, turn: int) -> ResponseRecord:
    usage = Usage(input_tokens=100 * turn, output_tokens=10)
    return ResponseRecord(
        turn=turn,
        response=Response(
            message=message,
            stop_reason="tool_use" if message.tool_calls else "end_turn",
            usage=usage,
            model="claude-test",
        ),
        duration=0.5,
        cost=0.01 * turn,
        total_usage=usage,
        total_cost=0.01 * turn,
    )


def every_record() -> list[Record]:
    return [
        header(),
        RequestRecord(turn=1, new_messages=[Message.user(TASK)], message_count=1),
        response(tool_use("t1"), 1),
        ToolCallRecord(turn=1, id="t1", name="read_file", input={"path": "calc.py"}),
        ToolResultRecord(
            turn=1,
            id="t1",
            name="read_file",
            content="1\tdef add(a, b):",
            is_error=False,
            duration=0.001,
        ),
        ToolResultRecord(
            turn=1,
            id="t2",
            name="run_command",
            content="[exit code 1]",
            is_error=True,
            duration=1.5,
            exit_code=1,
            full_output="line\n" * 3,
        ),
        VerificationRecord(turn=2, round=1, evidence=EVIDENCE),
        NoteRecord(turn=2, kind="policy", message="denied: 'git push'"),
        EgressRecord(
            host="evil.example",
            port=443,
            method="CONNECT",
            allowed=False,
            reason="not on the allowlist",
            sent=0,
            received=0,
            duration=0.0,
        ),
        AcpRecord(
            turn=2,
            direction="to_agent",
            message={"jsonrpc": "2.0", "id": 3, "method": "session/prompt", "params": {}},
        ),
        ModelCallRecord(
            method="POST",
            path="/v1/messages",
            status=200,
            format="anthropic",
            model="claude-sonnet-4-5",
            usage=Usage(input_tokens=120, output_tokens=30),
            cost_usd=0.0008,
            sent=900,
            received=2400,
            duration=0.4,
        ),
        Footer(
            outcome="completed",
            reason=None,
            summary="fixed add",
            question=None,
            follow_ups=[FollowUp(title="Refactor sub", description="later")],
            verification=EVIDENCE,
            diff="--- a/calc.py\n+++ b/calc.py\n",
            turns=2,
            usage=Usage(input_tokens=300, output_tokens=20, cache_read_tokens=50),
            cost_usd=0.03,
            cost_known=True,
            duration=3.0,
            network=[
                NetworkUse(
                    host="registry.npmjs.org",
                    port=443,
                    allowed=True,
                    connections=3,
                    sent=900,
                    received=120_000,
                    reason="allowed by registry.npmjs.org (npm)",
                )
            ],
        ),
    ]


def write(path: Path, records: list[Record]) -> Path:
    writer = TranscriptWriter(path)
    for record in records:
        writer.write(record)
    writer.close()
    return path


# --- writer and reader -------------------------------------------------------------------------


def test_each_record_is_one_line_readable_before_close(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "run.jsonl"  # the directory is created
    writer = TranscriptWriter(path)
    try:
        records = every_record()
        for count, record in enumerate(records, 1):
            writer.write(record)
            lines = path.read_text(encoding="utf-8").splitlines()
            assert len(lines) == count
            assert json.loads(lines[-1])["type"] == record.type
            assert read(path) == records[:count]
    finally:
        writer.close()


def test_read_round_trips_every_record_type(tmp_path: Path) -> None:
    records = every_record()
    assert {r.type for r in records} == {
        *("header", "request", "response", "tool_call", "tool_result"),
        *("verification", "note", "egress", "acp", "model_call", "footer"),
    }
    back = read(write(tmp_path / "t.jsonl", records))
    assert back == records
    assert [type(r) for r in back] == [type(r) for r in records]


def test_the_writer_appends(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", every_record()[:2])
    write(path, every_record()[2:4])
    assert read(path) == every_record()[:4]


def test_a_torn_last_line_is_dropped(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", every_record()[:3])
    whole = NoteRecord(turn=3, kind="retry", message="x" * 100).model_dump_json()
    with path.open("a", encoding="utf-8") as handle:
        handle.write(whole[: len(whole) // 2])  # killed mid-write: no newline either
    assert read(path) == every_record()[:3]


def test_a_malformed_middle_line_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    lines = [r.model_dump_json() for r in every_record()[:4]]
    lines[2] = lines[2][:40]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(TranscriptError, match=r"t\.jsonl:3: not a transcript record"):
        read(path)


def test_a_complete_but_invalid_last_line_is_an_error(tmp_path: Path) -> None:
    """Only a line without its newline is torn; a finished line that does not validate (an
    older format, a hand edit) must not vanish silently."""
    path = tmp_path / "t.jsonl"
    lines = [r.model_dump_json() for r in every_record()[:3]]
    lines.append(json.dumps({"type": "footer", "outcome": "completed"}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(TranscriptError, match=r":4: not a transcript record"):
        read(path)


def test_an_unknown_record_type_in_the_middle_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    lines = [r.model_dump_json() for r in every_record()[:3]]
    lines.insert(1, json.dumps({"type": "mystery", "turn": 1}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(TranscriptError, match=r":2: "):
        read(path)


def test_a_transcript_must_start_with_a_header(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", every_record()[1:4])
    with pytest.raises(TranscriptError, match="header"):
        read(path)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(TranscriptError, match="header"):
        read(empty)


def test_unicode_line_separators_inside_strings_survive(tmp_path: Path) -> None:
    # regression: str.splitlines() also breaks at these, and JSON leaves them unescaped
    records: list[Record] = [
        header(),
        NoteRecord(turn=1, kind="output", message="a\u2028b\u2029c\x85d"),
        NoteRecord(turn=2, kind="done", message="ok"),
    ]
    assert read(write(tmp_path / "t.jsonl", records)) == records


def test_the_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("")
    path.chmod(0o644)  # even an existing file is made private
    writer = TranscriptWriter(path)
    writer.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_json_schema_validates_real_records(tmp_path: Path) -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    lines = write(tmp_path / "t.jsonl", every_record()).read_text().splitlines()
    for line in lines:
        validator.validate(json.loads(line))
    bad = json.loads(lines[3]) | {"unexpected": 1}
    assert not validator.is_valid(bad)
    assert not validator.is_valid({"type": "mystery"})
    mapping = schema["discriminator"]["mapping"]
    assert set(mapping) == {r.type for r in every_record()}


# --- replay ------------------------------------------------------------------------------------

TURN_1 = tool_use("t1")
TURN_2 = tool_use("t2", "test_calc.py")
TURN_3 = Message(role="assistant", content=(TextBlock(text="Done."),))


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    """Three turns: read calc.py (succeeds), read test_calc.py (fails), then done."""
    records: list[Record] = [
        header(),
        RequestRecord(turn=1, new_messages=[Message.user(TASK)], message_count=1),
        response(TURN_1, 1),
        RequestRecord(turn=2, new_messages=[TURN_1, results(("t1", False))], message_count=3),
        response(TURN_2, 2),
        RequestRecord(turn=3, new_messages=[TURN_2, results(("t2", True))], message_count=5),
        response(TURN_3, 3),
        Footer(
            outcome="completed",
            reason=None,
            summary="done",
            question=None,
            follow_ups=[],
            verification=None,
            diff="",
            turns=3,
            usage=Usage(),
            cost_usd=0.06,
            cost_known=True,
            duration=1.0,
        ),
    ]
    return write(tmp_path / "recording.jsonl", records)


def request(*messages: Message) -> Request:
    return Request(system="You are Locus.", tools=tuple(TOOLS), messages=messages, max_tokens=1000)


async def test_replay_returns_the_recorded_responses_in_order(recording: Path) -> None:
    provider = ReplayProvider(recording)
    assert provider.model == "claude-test" and provider.task == TASK
    streamed: list[str] = []
    history = [Message.user(TASK)]
    first = await provider.complete(request(*history), streamed.append)
    assert first.message == TURN_1 and first.usage == Usage(input_tokens=100, output_tokens=10)
    history += [first.message, results(("t1", False))]
    second = await provider.complete(request(*history))
    assert second.message == TURN_2
    history += [second.message, results(("t2", True))]
    third = await provider.complete(request(*history), streamed.append)
    assert third.message == TURN_3 and third.stop_reason == "end_turn"
    assert streamed == ["Reading calc.py.", "Done."]


async def test_replay_refuses_another_task(recording: Path) -> None:
    provider = ReplayProvider(recording)
    with pytest.raises(ReplayDivergence, match="Fix sub"):
        await provider.complete(request(Message.user("Fix sub() instead")))


@pytest.mark.parametrize(
    "tool_results",
    [
        results(("t1", True)),  # the tool failed this time
        results(("other", False)),  # a different call was answered
        results(("t1", False), ("t9", False)),  # an extra result
        Message.user("no tool results at all"),
    ],
)
async def test_replay_refuses_different_tool_results(
    recording: Path, tool_results: Message
) -> None:
    provider = ReplayProvider(recording)
    first = await provider.complete(request(Message.user(TASK)))
    with pytest.raises(ReplayDivergence, match="turn 2 diverges"):
        await provider.complete(request(Message.user(TASK), first.message, tool_results))


async def test_replay_refuses_more_turns_than_recorded(recording: Path) -> None:
    provider = ReplayProvider(recording)
    history = [Message.user(TASK)]
    for answer in (results(("t1", False)), results(("t2", True)), Message.user("go on")):
        reply = await provider.complete(request(*history))
        history += [reply.message, answer]
    with pytest.raises(ReplayDivergence, match="has 3 turns; this run asked for turn 4"):
        await provider.complete(request(*history))


# --- tampering ---------------------------------------------------------------------------------


def test_an_edited_record_breaks_the_chain_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", every_record())
    assert len(read(path)) == len(every_record())
    lines = path.read_text().split("\n")
    # The tool result the model saw, rewritten: the chain names that line (5).
    lines[4] = lines[4].replace("def add(a, b):", "def add(a, b): # fine")
    path.write_text("\n".join(lines))
    with pytest.raises(TranscriptError, match=r"t\.jsonl:5: the hash chain breaks here"):
        read(path)
    with pytest.raises(TranscriptError, match=r":5: the hash chain breaks"):
        ReplayProvider(path)


@pytest.mark.parametrize("how", ["drop", "swap", "unchain"])
def test_dropped_reordered_or_unchained_records_are_refused(tmp_path: Path, how: str) -> None:
    path = write(tmp_path / "t.jsonl", every_record())
    lines = path.read_text().split("\n")
    if how == "drop":
        del lines[3]
    elif how == "swap":
        lines[3], lines[4] = lines[4], lines[3]
    else:
        lines[2] = json.dumps({k: v for k, v in json.loads(lines[2]).items() if k != "chain"})
    path.write_text("\n".join(lines))
    with pytest.raises(TranscriptError, match=r"t\.jsonl:[34]: "):
        read(path)


def test_a_format_1_transcript_without_a_chain_is_still_read(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", every_record())
    old = []
    for line in path.read_text().split("\n")[:-1]:
        data = {k: v for k, v in json.loads(line).items() if k != "chain"}
        old.append(json.dumps(data | ({"format": 1} if data["type"] == "header" else {})))
    path.write_text("\n".join(old) + "\n")
    assert len(read(path)) == len(every_record())
    chainless_v2 = path.read_text().replace('"format": 1', '"format": 2')
    path.write_text(chainless_v2)
    with pytest.raises(TranscriptError, match="format 2 without its hash chain"):
        read(path)


def test_appending_continues_the_chain(tmp_path: Path) -> None:
    records = every_record()
    path = write(tmp_path / "t.jsonl", records[:3])
    write(path, records[3:])
    assert len(read(path)) == len(records)
