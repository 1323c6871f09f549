"""Storage: SQLAlchemy 2 (async, Core) tables, the database handle, Alembic migrations."""
