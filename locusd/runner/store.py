"""The daemon's local record of its runs and their events (SQLite, in the state directory), so a
kill -9 loses nothing: on restart every run is found again, and one that was mid-flight is
marked ``failed: interrupted`` explicitly instead of vanishing.

Each write is committed before the daemon acts on it (WAL, ``synchronous=NORMAL``: a power
loss may drop the last transactions, a process crash drops none). One connection, used from the
event loop's thread only: the writes are small and fast.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from locusd.protocol.messages import Run, RunEvent, RunEventKind

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    body TEXT NOT NULL,            -- the Run model as JSON
    cloud TEXT                     -- cloud task bookkeeping (fence), JSON, or NULL for local runs
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

#: States a run cannot be in once the daemon that ran it is gone.
LIVE_STATES = ("starting", "running")


def now() -> str:
    return datetime.now(UTC).isoformat()


class RunStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        path.chmod(0o600)
        self._seq: dict[str, int] = {}

    def close(self) -> None:
        self.db.close()

    # --- runs --------------------------------------------------------------------------

    def save(self, run: Run, cloud: dict[str, Any] | None = None) -> None:
        if cloud is None:
            self.db.execute(
                "INSERT INTO runs (run_id, body) VALUES (?, ?)"
                " ON CONFLICT (run_id) DO UPDATE SET body = excluded.body",
                (run.run_id, run.model_dump_json()),
            )
        else:
            self.db.execute(
                "INSERT INTO runs (run_id, body, cloud) VALUES (?, ?, ?)"
                " ON CONFLICT (run_id) DO UPDATE SET body = excluded.body, cloud = excluded.cloud",
                (run.run_id, run.model_dump_json(), json.dumps(cloud)),
            )

    def get(self, run_id: str) -> Run | None:
        row = self.db.execute("SELECT body FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else Run.model_validate_json(row[0])

    def cloud(self, run_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT cloud FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None or row[0] is None else dict(json.loads(row[0]))

    def project_of(self, task_id: int) -> int | None:
        """The cloud project of a task this daemon ran (for sending its outbox entries)."""
        row = self.db.execute(
            "SELECT json_extract(cloud, '$.project_id') FROM runs"
            " WHERE json_extract(cloud, '$.task_id') = ? ORDER BY rowid DESC LIMIT 1",
            (task_id,),
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

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

    def interrupted(self) -> list[Run]:
        """Runs a previous daemon left mid-flight (it crashed or was killed)."""
        return [run for run in self.all() if run.state in LIVE_STATES]

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
        seq = self._seq.get(run_id)
        if seq is None:
            row = self.db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id = ?", (run_id,)
            ).fetchone()
            seq = int(row[0])
        seq += 1
        self._seq[run_id] = seq
        event = RunEvent(run_id=run_id, seq=seq, kind=kind, text=text, data=data or {})
        self.db.execute(
            "INSERT INTO events (run_id, seq, kind, text, data) VALUES (?, ?, ?, ?, ?)",
            (run_id, seq, kind, text, json.dumps(event.data)),
        )
        return event

    def events(self, run_id: str, after: int = 0) -> list[RunEvent]:
        rows = self.db.execute(
            "SELECT seq, kind, text, data FROM events WHERE run_id = ? AND seq > ? ORDER BY seq",
            (run_id, after),
        ).fetchall()
        return [
            RunEvent(run_id=run_id, seq=seq, kind=kind, text=text, data=json.loads(data))
            for seq, kind, text, data in rows
        ]
