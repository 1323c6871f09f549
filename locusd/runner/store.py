"""The daemon's local record of its runs, their events, review decisions and cloud attempts, in
the daemon's SQLite file (:mod:`locusd.localdb`), so a kill -9 loses nothing: on restart every
run is found again, and recovery (:meth:`locusd.runner.runs.Runs.recover`) finishes or undoes
what a run was in the middle of.

Plain reads and writes: which state changes are allowed, and what goes with them, is decided
in :mod:`locusd.runner.lifecycle` and :meth:`~locusd.runner.runs.Runs.move`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from locusd.agent.transcript import shortened
from locusd.localdb import Database
from locusd.protocol.messages import Run, RunEvent, RunEventKind

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    body TEXT NOT NULL,            -- the Run model as JSON
    cloud TEXT,                    -- legacy (before attempts): the fence as JSON
    attempt_id INTEGER,            -- the cloud attempt this run works for, or NULL (local run)
    step TEXT                      -- the side effect in progress (e.g. a commit's intent), JSON
);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id INTEGER NOT NULL,
    project_id INTEGER NOT NULL,
    body TEXT NOT NULL,            -- the AttemptRecord (claim, checkout) as JSON
    log_seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS attempts_task ON attempts (task_id, id);
CREATE TABLE IF NOT EXISTS plan_claims (
    run_id TEXT PRIMARY KEY,       -- the planning run made for a planning request of the cloud
    plan_id INTEGER NOT NULL,
    project_id INTEGER NOT NULL,
    fence TEXT NOT NULL            -- {attempt, claim_token} of the claim, as JSON
);
CREATE TABLE IF NOT EXISTS reviews (
    run_id TEXT PRIMARY KEY,
    decisions TEXT NOT NULL        -- {hunk id or path: DecisionIn as JSON}
);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
"""


#: Events a run keeps (the first HEAD_EVENTS and the newest), however long it streams.
MAX_EVENTS = 20_000
HEAD_EVENTS = 1_000
#: Characters of an event's text (and of each string in its data) that are stored.
MAX_EVENT_TEXT = 64 * 1024


def now() -> str:
    return datetime.now(UTC).isoformat()


class RunStore:
    def __init__(self, db: Database, *, max_events: int = MAX_EVENTS) -> None:
        self.db = db
        self.max_events = max_events
        self.db.script(SCHEMA)
        columns = {row["name"] for row in db.rows("PRAGMA table_info(runs)")}
        for column in ("attempt_id INTEGER", "step TEXT"):  # a store from before attempts
            if column.split()[0] not in columns:
                db.execute(f"ALTER TABLE runs ADD COLUMN {column}")
        self._seq: dict[str, int] = {}

    # --- runs --------------------------------------------------------------------------

    def save(self, run: Run, *, attempt_id: int | None = None) -> None:
        """Insert or update the run (its attempt, once set, stays unless a new one is given)."""
        self.db.execute(
            "INSERT INTO runs (run_id, body, attempt_id) VALUES (?, ?, ?)"
            " ON CONFLICT (run_id) DO UPDATE SET body = excluded.body,"
            " attempt_id = COALESCE(excluded.attempt_id, runs.attempt_id)",
            (run.run_id, run.model_dump_json(), attempt_id),
        )

    def get(self, run_id: str) -> Run | None:
        row = self.db.execute("SELECT body FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else Run.model_validate_json(row[0])

    def attempt_id(self, run_id: str) -> int | None:
        row = self.db.execute("SELECT attempt_id FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def step(self, run_id: str) -> dict[str, Any] | None:
        """The side effect the run was in the middle of (written before it is done)."""
        row = self.db.execute("SELECT step FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None or row[0] is None else dict(json.loads(row[0]))

    def set_step(self, run_id: str, step: dict[str, Any] | None) -> None:
        self.db.execute(
            "UPDATE runs SET step = ? WHERE run_id = ?",
            (None if step is None else json.dumps(step), run_id),
        )

    def legacy_cloud(self) -> list[tuple[str, dict[str, Any]]]:
        """Runs recorded before attempts existed, with their fence (to be made attempts)."""
        rows = self.db.execute(
            "SELECT run_id, cloud FROM runs WHERE cloud IS NOT NULL AND attempt_id IS NULL"
        ).fetchall()
        return [(str(run_id), dict(json.loads(cloud))) for run_id, cloud in rows]

    def counts(self) -> dict[str, int]:
        """Runs per state, counted by SQLite (``daemon/status`` must stay cheap however many
        runs the daemon has kept)."""
        rows = self.db.execute(
            "SELECT json_extract(body, '$.state'), COUNT(*) FROM runs GROUP BY 1"
        ).fetchall()
        return {str(state): int(n) for state, n in rows}

    def all(self) -> list[Run]:
        rows = self.db.execute("SELECT body FROM runs ORDER BY rowid").fetchall()
        return [Run.model_validate_json(body) for (body,) in rows]

    def in_states(self, states: Iterable[str]) -> list[Run]:
        wanted = set(states)
        return [run for run in self.all() if run.state in wanted]

    # --- attempts ------------------------------------------------------------------------

    def add_attempt(self, task_id: int, project_id: int, body: str) -> int:
        cursor = self.db.execute(
            "INSERT INTO attempts (task_id, project_id, body) VALUES (?, ?, ?)",
            (task_id, project_id, body),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def attempt(self, attempt_id: int) -> tuple[str, int] | None:
        """(body, log_seq) of an attempt."""
        row = self.db.execute(
            "SELECT body, log_seq FROM attempts WHERE id = ?", (attempt_id,)
        ).fetchone()
        return None if row is None else (str(row[0]), int(row[1]))

    def next_log_seq(self, attempt_id: int) -> int:
        """The next log chunk's number: counted in the database, so it never repeats across a
        crash (the cloud keeps one chunk per number)."""
        self.db.execute("UPDATE attempts SET log_seq = log_seq + 1 WHERE id = ?", (attempt_id,))
        row = self.db.execute("SELECT log_seq FROM attempts WHERE id = ?", (attempt_id,)).fetchone()
        return int(row[0])

    def add_plan_claim(self, run_id: str, plan_id: int, project_id: int, fence: str) -> None:
        self.db.execute(
            "INSERT INTO plan_claims (run_id, plan_id, project_id, fence) VALUES (?, ?, ?, ?)",
            (run_id, plan_id, project_id, fence),
        )

    def plan_claim(self, run_id: str) -> tuple[int, str] | None:
        """The planning request a run is for and the fence of its claim, if it is for one."""
        row = self.db.execute(
            "SELECT plan_id, fence FROM plan_claims WHERE run_id = ?", (run_id,)
        ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def project_of_plan(self, plan_id: int) -> int | None:
        """The cloud project of a planning request this daemon claimed (for its report)."""
        row = self.db.execute(
            "SELECT project_id FROM plan_claims WHERE plan_id = ? ORDER BY rowid DESC LIMIT 1",
            (plan_id,),
        ).fetchone()
        return None if row is None else int(row[0])

    def project_of(self, task_id: int) -> int | None:
        """The cloud project of a task this daemon worked on (for sending its outbox entries)."""
        row = self.db.execute(
            "SELECT project_id FROM attempts WHERE task_id = ? ORDER BY id DESC LIMIT 1",
            (task_id,),
        ).fetchone()
        return None if row is None else int(row[0])

    # --- review decisions ----------------------------------------------------------------

    def decisions(self, run_id: str) -> dict[str, Any]:
        row = self.db.execute(
            "SELECT decisions FROM reviews WHERE run_id = ?", (run_id,)
        ).fetchone()
        return {} if row is None else dict(json.loads(row[0]))

    def save_decisions(self, run_id: str, decisions: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO reviews (run_id, decisions) VALUES (?, ?)"
            " ON CONFLICT (run_id) DO UPDATE SET decisions = excluded.decisions",
            (run_id, json.dumps(decisions)),
        )

    # --- events ------------------------------------------------------------------------

    def append(
        self, run_id: str, kind: RunEventKind, text: str = "", data: dict[str, Any] | None = None
    ) -> RunEvent:
        """Store the run's next event (its long texts cut to :data:`MAX_EVENT_TEXT`). Past
        ``max_events``, the oldest event after the first :data:`HEAD_EVENTS` goes, and one
        note in their place counts what was dropped: a run's log stays bounded, its start and
        its newest events kept."""
        seq = self._seq.get(run_id)
        if seq is None:
            row = self.db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id = ?", (run_id,)
            ).fetchone()
            seq = int(row[0])
        seq += 1
        self._seq[run_id] = seq
        event = RunEvent(
            run_id=run_id,
            seq=seq,
            kind=kind,
            text=shortened(text, MAX_EVENT_TEXT),
            data=shortened(data or {}, MAX_EVENT_TEXT),
        )
        self.db.execute(
            "INSERT INTO events (run_id, seq, kind, text, data) VALUES (?, ?, ?, ?, ?)",
            (run_id, seq, event.kind, event.text, json.dumps(event.data)),
        )
        if seq > self.max_events:
            self._drop_middle(run_id, seq)
        return event

    def _drop_middle(self, run_id: str, seq: int) -> None:
        head = min(HEAD_EVENTS, self.max_events // 2)
        tail = self.max_events - head - 1
        dropped = seq - self.max_events + 1
        self.db.execute("DELETE FROM events WHERE run_id = ? AND seq = ?", (run_id, seq - tail))
        marker = (
            f"… {dropped} events dropped here: a run keeps its first {head} events and its"
            f" last {tail}"
        )
        self.db.execute(
            "INSERT OR REPLACE INTO events (run_id, seq, kind, text, data) VALUES (?, ?, ?, ?, ?)",
            (run_id, head + 1, "note", marker, json.dumps({"kind": "events_dropped"})),
        )

    def events(self, run_id: str, after: int = 0) -> list[RunEvent]:
        rows = self.db.execute(
            "SELECT seq, kind, text, data FROM events WHERE run_id = ? AND seq > ? ORDER BY seq",
            (run_id, after),
        ).fetchall()
        return [
            RunEvent(run_id=run_id, seq=seq, kind=kind, text=text, data=json.loads(data))
            for seq, kind, text, data in rows
        ]
