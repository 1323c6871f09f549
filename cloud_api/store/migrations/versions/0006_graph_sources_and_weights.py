"""graph: edge weights (co-change counts) and which worker's upload holds each node and edge

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 20:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
#: table → the graph table its first column points at
_SOURCES = {
    "graph_node_sources": ("node_id", "graph_nodes"),
    "graph_edge_sources": ("edge_id", "graph_edges"),
}


def upgrade() -> None:
    with op.batch_alter_table("graph_edges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("weight", sa.Integer(), nullable=True))
    for table, (column, target) in _SOURCES.items():
        op.create_table(
            table,
            sa.Column(column, _ID, nullable=False),
            sa.Column("worker_id", _ID, nullable=False),
            sa.ForeignKeyConstraint(
                [column],
                [f"{target}.id"],
                name=op.f(f"fk_{table}_{column}_{target}"),
                ondelete="CASCADE",
            ),
            sa.ForeignKeyConstraint(
                ["worker_id"],
                ["workers.id"],
                name=op.f(f"fk_{table}_worker_id_workers"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint(column, "worker_id", name=op.f(f"pk_{table}")),
        )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column], unique=False)
            batch_op.create_index(batch_op.f(f"ix_{table}_worker_id"), ["worker_id"], unique=False)


def downgrade() -> None:
    for table in _SOURCES:
        op.drop_table(table)
    with op.batch_alter_table("graph_edges", schema=None) as batch_op:
        batch_op.drop_column("weight")
