"""plan_requests: planning requests from the dashboard, claimed by workers

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 23:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloud_api.store.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = cloud_api.store.types.UTCDateTime(timezone=True)
#: column → (the table it points at, on delete)
_FKS = {
    "project_id": ("projects", "CASCADE"),
    "requested_by": ("users", "SET NULL"),
    "worker_id": ("workers", "SET NULL"),
}


def upgrade() -> None:
    op.create_table(
        "plan_requests",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("project_id", _ID, nullable=False),
        sa.Column("goal", sa.Text(), nullable=False),
        sa.Column("requested_by", _ID, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("worker_id", _ID, nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("claim_token", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", _WHEN, nullable=True),
        sa.Column("proposals", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
        *(
            sa.ForeignKeyConstraint(
                [column],
                [f"{target}.id"],
                name=op.f(f"fk_plan_requests_{column}_{target}"),
                ondelete=ondelete,
            )
            for column, (target, ondelete) in _FKS.items()
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_requests")),
    )
    with op.batch_alter_table("plan_requests", schema=None) as batch_op:
        for column in _FKS:
            batch_op.create_index(batch_op.f(f"ix_plan_requests_{column}"), [column], unique=False)


def downgrade() -> None:
    op.drop_table("plan_requests")
