"""projects: the conflict-aware dispatch policy and the graph's version (footprint cache key)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 23:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("dispatch_overlap", sa.String(8), nullable=False, server_default="avoid")
        )
        batch_op.add_column(
            sa.Column("graph_version", sa.Integer(), nullable=False, server_default="0")
        )
    # A project that has a graph already starts at version 1 (0 means "no graph": a claim
    # then skips the footprints entirely).
    op.execute(
        "UPDATE projects SET graph_version = 1 WHERE EXISTS "
        "(SELECT 1 FROM graph_nodes WHERE graph_nodes.project_id = projects.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("graph_version")
        batch_op.drop_column("dispatch_overlap")
