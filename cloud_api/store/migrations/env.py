"""Alembic environment: always runs on a connection handed in by cloud_api.store.migrate."""

from __future__ import annotations

from alembic import context

from cloud_api.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `locus-cloud migrate` (cloud_api.store.migrate)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
