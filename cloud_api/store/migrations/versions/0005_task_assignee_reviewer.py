"""task assignee and reviewer: the people on a task (users, unassigned when removed)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 13:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_COLUMNS = ("assignee_id", "reviewer_id")


def upgrade() -> None:
    # Batch mode: SQLite adds a foreign key only by rebuilding the table (env.py turns it on).
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        for name in _COLUMNS:
            batch_op.add_column(sa.Column(name, _ID, nullable=True))
            batch_op.create_foreign_key(
                batch_op.f(f"fk_tasks_{name}_users"), "users", [name], ["id"], ondelete="SET NULL"
            )
            batch_op.create_index(batch_op.f(f"ix_tasks_{name}"), [name], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        for name in _COLUMNS:
            batch_op.drop_index(batch_op.f(f"ix_tasks_{name}"))
            batch_op.drop_constraint(batch_op.f(f"fk_tasks_{name}_users"), type_="foreignkey")
            batch_op.drop_column(name)
