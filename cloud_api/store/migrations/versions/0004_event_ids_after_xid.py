"""event ids after xid: a task event's id is drawn only once its transaction has an xid
(and the horizon's sample, read in one round trip)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 10:30:00.000000

PostgreSQL only (SQLite has one writer; nothing to do there). The settled-horizon rule of
cloud_api.store.horizon needs every transaction that holds an event id to show its xid in
``pg_stat_activity`` from the moment the id exists; an INSERT would otherwise draw ``nextval``
before its heap write assigns the xid. ``locus_event_sample()`` is the horizon's
sample: the sequence's last value, then the xids in flight — two statements of a function run
in that order, in one round trip and microseconds apart.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION locus_event_id() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            PERFORM pg_current_xact_id();  -- the xid first (assigned here if not yet)...
            RETURN nextval('task_events_id_seq');  -- ...then the id
        END
        $$
        """
    )
    op.execute("ALTER TABLE task_events ALTER COLUMN id SET DEFAULT locus_event_id()")
    op.execute(
        """
        CREATE FUNCTION locus_event_sample(OUT last_id bigint, OUT in_flight text)
        LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END
                INTO last_id FROM task_events_id_seq;
            SELECT string_agg(backend_xid::text, ',') INTO in_flight FROM pg_stat_activity
                WHERE datname = current_database() AND backend_xid IS NOT NULL;
        END
        $$
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "ALTER TABLE task_events ALTER COLUMN id SET DEFAULT nextval('task_events_id_seq')"
    )
    op.execute("DROP FUNCTION locus_event_sample()")
    op.execute("DROP FUNCTION locus_event_id()")
