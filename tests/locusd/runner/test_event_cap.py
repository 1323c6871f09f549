"""A run's event log stays bounded however long the run streams: past the cap, the events
between the first ones and the newest are dropped and one note counts them; a long text is
cut. The real SQLite store, reopened as after a daemon restart."""

from __future__ import annotations

from pathlib import Path

from locusd.localdb import Database
from locusd.runner.store import MAX_EVENT_TEXT, RunStore


def test_the_middle_of_a_long_log_is_dropped_with_a_note(tmp_path: Path) -> None:
    db = Database(tmp_path / "locusd.sqlite")
    store = RunStore(db, max_events=50)
    for n in range(1, 301):
        store.append("r1", "text", f"event {n}")
    store.append("r2", "text", "another run is not touched")
    events = store.events("r1")
    assert len(events) == 50
    assert [e.text for e in events[:25]] == [f"event {n}" for n in range(1, 26)]
    marker = events[25]
    assert marker.seq == 26 and marker.kind == "note" and marker.data == {"kind": "events_dropped"}
    assert marker.text.startswith("… 251 events dropped here")  # events 26 to 276
    assert [e.text for e in events[26:]] == [f"event {n}" for n in range(277, 301)]
    assert [e.seq for e in store.events("r1", after=290)] == list(range(291, 301))
    assert [e.text for e in store.events("r2")] == ["another run is not touched"]
    db.close()

    reopened = RunStore(Database(tmp_path / "locusd.sqlite"), max_events=50)
    reopened.append("r1", "text", "after a restart")
    events = reopened.events("r1")
    assert len(events) == 50 and events[-1].seq == 301 and events[-1].text == "after a restart"
    assert events[25].text.startswith("… 252 events dropped here")


def test_a_huge_event_text_or_data_is_cut(tmp_path: Path) -> None:
    store = RunStore(Database(tmp_path / "locusd.sqlite"))
    content = "c" * (MAX_EVENT_TEXT * 10)
    event = store.append("r1", "tool", "write_file", {"input": {"path": "a", "content": content}})
    stored = store.events("r1")[0]
    assert stored == event
    assert len(stored.data["input"]["content"]) < MAX_EVENT_TEXT + 100
    assert "characters cut" in stored.data["input"]["content"]
    assert stored.data["input"]["path"] == "a"
    text = store.append("r1", "text", "t" * (MAX_EVENT_TEXT * 3))
    assert len(text.text) < MAX_EVENT_TEXT + 100
