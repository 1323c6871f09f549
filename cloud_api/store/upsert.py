"""INSERT … ON CONFLICT for both backends (their dialects spell it the same way)."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

from cloud_api.store.db import Backend


def insert_for(backend: Backend, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT with ``on_conflict_do_nothing`` / ``on_conflict_do_update`` available."""
    return (postgresql.insert if backend == "postgresql" else sqlite.insert)(table)
