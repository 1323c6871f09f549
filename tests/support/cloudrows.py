"""Every row the cloud keeps, as text: what "no proposed code in the cloud" is checked against,
beyond what its API chooses to show (a column the API never returns would hide a leak)."""

from __future__ import annotations

import json
import sqlite3


def every_row(db_url: str) -> str:
    """Each table of a SQLite cloud database, every row of it, as JSON lines."""
    assert db_url.startswith("sqlite:///"), f"a SQLite cloud only, not {db_url}"
    path = db_url.removeprefix("sqlite:///")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        tables = [
            name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        assert {"tasks", "task_events", "artifacts"} <= set(tables), tables
        lines = []
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                lines.append(json.dumps([table, *map(_text, row)], ensure_ascii=False))
    return "\n".join(lines)


def _text(value: object) -> object:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
