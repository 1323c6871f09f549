"""dispatch order index: the claim reads its first candidate off the index, no sort

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 09:20:52.082143
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_tasks_dispatch", table_name="tasks")
    op.create_index(
        "ix_tasks_dispatch_order",
        "tasks",
        ["project_id", "status", sa.literal_column("priority DESC"), "queued_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_dispatch_order", table_name="tasks")
    op.create_index("ix_tasks_dispatch", "tasks", ["project_id", "status", "priority", "queued_at"])
