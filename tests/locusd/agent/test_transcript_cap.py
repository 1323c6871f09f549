"""A run's transcript cannot grow past its cap: records that would pass it are shortened (or,
past that, left out) with a note that says so, and the footer always fits — whatever the model
writes and the tools print. Every file written here is read back with the real reader."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from locusd.agent.messages import Message, TextBlock
from locusd.agent.transcript import (
    FOOTER_SHARE,
    Footer,
    NoteRecord,
    Record,
    ToolCallRecord,
    ToolResultRecord,
    TranscriptWriter,
    read,
)
from tests.locusd.agent.test_transcript import every_record, header, response

CAP = 256 * 1024


def flood(turn: int, size: int) -> ToolResultRecord:
    return ToolResultRecord(
        turn=turn, id=f"t{turn}", name="run_command", content="y\n" * (size // 4),
        is_error=False, duration=0.1, exit_code=0, full_output="y\n" * (size // 4),
    )  # fmt: skip


def footer(diff: str = "--- a/calc.py\n+++ b/calc.py\n") -> Footer:
    last = every_record()[-1]
    assert isinstance(last, Footer)
    return last.model_copy(update={"diff": diff})


def write_all(path: Path, records: list[Record], cap: int = CAP) -> list[Record]:
    writer = TranscriptWriter(path, cap=cap)
    for record in records:
        writer.write(record)
    writer.close()
    assert path.stat().st_size <= cap
    return read(path)


def cap_notes(records: list[Record]) -> list[str]:
    return [r.message for r in records if isinstance(r, NoteRecord) and r.kind == "transcript_cap"]


def test_under_the_cap_every_record_is_kept_as_it_was(tmp_path: Path) -> None:
    records = every_record()
    assert write_all(tmp_path / "t.jsonl", records) == records


def test_a_flood_of_tool_output_is_cut_then_left_out_and_the_footer_still_fits(
    tmp_path: Path,
) -> None:
    records: list[Record] = [header()]
    records += [flood(turn, 40_000) for turn in range(1, 40)]  # ~1.6 MB against a 256 kB cap
    records.append(footer())
    kept = write_all(tmp_path / "t.jsonl", records)
    assert kept[0] == records[0] and kept[-1] == records[-1]  # the footer whole
    notes = cap_notes(kept)
    assert any("cut" in note for note in notes) and any("left out" in note for note in notes)
    assert len(notes) == 2  # each said once
    shortened = [
        r for r in kept if isinstance(r, ToolResultRecord) and "characters cut" in r.content
    ]
    assert shortened, "a record was shortened before records were left out"


def test_one_huge_model_message_is_shortened_not_dropped(tmp_path: Path) -> None:
    """Model text counts too: a 1 MB answer in a 256 kB transcript keeps its head and tail."""
    text = "start " + "x" * 1_000_000 + " end"
    huge = response(Message(role="assistant", content=(TextBlock(text=text),)), 1)
    kept = write_all(tmp_path / "t.jsonl", [header(), huge, footer()])
    assert isinstance(kept[1], NoteRecord)  # the note comes first: "from here on"
    written = kept[2]
    assert written.type == "response"
    shown = written.response.message.content[0]
    assert isinstance(shown, TextBlock)
    assert shown.text.startswith("start ") and shown.text.endswith(" end")
    assert "characters cut: a size cap" in shown.text
    assert cap_notes(kept) and isinstance(kept[-1], Footer)


def test_a_footer_with_a_huge_diff_is_cut_to_its_share_and_still_ends_the_file(
    tmp_path: Path,
) -> None:
    diff = "+" + "d" * (CAP * 2) + "\n"
    records: list[Record] = [header(), *(flood(turn, 40_000) for turn in range(1, 20))]
    kept = write_all(tmp_path / "t.jsonl", [*records, footer(diff)])
    last = kept[-1]
    assert isinstance(last, Footer) and "characters cut" in last.diff
    assert len(last.diff) < CAP // FOOTER_SHARE


def test_tool_input_written_by_the_model_counts_toward_the_cap(tmp_path: Path) -> None:
    """write_file's content is the model's own text: a call carrying megabytes is cut too."""
    call = ToolCallRecord(
        turn=1, id="t1", name="write_file", input={"path": "a", "content": "z" * 2_000_000}
    )
    kept = write_all(tmp_path / "t.jsonl", [header(), call, footer()])
    calls = [r for r in kept if isinstance(r, ToolCallRecord)]
    assert len(calls) == 1 and calls[0].input["path"] == "a"
    assert len(calls[0].input["content"]) < CAP


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sizes=st.lists(st.integers(min_value=0, max_value=300_000), max_size=30))
def test_any_sequence_of_records_stays_under_the_cap_and_ends_with_the_footer(
    tmp_path: Path, sizes: list[int]
) -> None:
    path = tmp_path / f"t-{len(sizes)}-{sum(sizes)}.jsonl"
    path.unlink(missing_ok=True)
    records: list[Record] = [header(), *(flood(turn, size) for turn, size in enumerate(sizes, 1))]
    kept = write_all(path, [*records, footer("+" + "d" * max(sizes, default=0))])
    assert isinstance(kept[-1], Footer) and kept[0] == records[0]
