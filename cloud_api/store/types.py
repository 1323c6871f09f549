"""Column types and SQL expressions that behave the same on SQLite and PostgreSQL.

Only the database clock is trusted (docs/dispatch.md, Time): timestamps and lease expiries are
computed by ``db_now()`` inside SQL, never by the API process, so replicas with skewed clocks
agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Float, TypeDecorator, literal
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

# SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff'; strftime's %f gives
# 'SS.SSS', so three zeros keep DB-computed values in the same sortable text format.
_SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f000', 'now'{modifier})"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way out, whatever the backend stores."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # a raw strftime() value that bypassed the type
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class db_now(FunctionElement[datetime]):
    """The database's current time, optionally plus ``seconds`` (which may be a bound value)."""

    type = UTCDateTime()
    inherit_cache = True

    def __init__(self, seconds: float | ColumnElement[float] | None = None) -> None:
        args = (
            []
            if seconds is None
            else [
                seconds if isinstance(seconds, ColumnElement) else literal(float(seconds), Float())
            ]
        )
        super().__init__(*args)


@compiles(db_now, "sqlite")
def _now_sqlite(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    args = list(element.clauses)
    if not args:
        return _SQLITE_NOW.format(modifier="")
    seconds = compiler.process(args[0], **kw)
    return _SQLITE_NOW.format(modifier=f", printf('%+.3f seconds', {seconds})")


@compiles(db_now, "postgresql")
def _now_postgresql(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    args = list(element.clauses)
    if not args:
        return "statement_timestamp()"
    seconds = compiler.process(args[0], **kw)
    return f"(statement_timestamp() + make_interval(secs => CAST({seconds} AS double precision)))"
