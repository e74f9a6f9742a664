"""Quarantine (items that keep failing, with their error) and the queue of conflicts held for a person."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    """Create the quarantine and conflicts tables."""
    op.create_table(
        "quarantine",
        sa.Column("sync_id", sa.String(32), nullable=False),
        sa.Column("group_name", sa.String(200), nullable=False),
        sa.Column("strikes", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("held", sa.Boolean(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sync_id", name="pk_quarantine"),
    )
    op.create_index("ix_quarantine_group_name", "quarantine", ["group_name"])
    op.create_table(
        "conflicts",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("sync_id", sa.String(32), nullable=False),
        sa.Column("group_name", sa.String(200), nullable=False),
        sa.Column("field", sa.String(100), nullable=False),
        sa.Column("base", sa.JSON(), nullable=True),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("take", sa.String(200), nullable=True),
        sa.Column("resolved_by", sa.String(200), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_conflicts"),
    )
    op.create_index("ix_conflicts_sync_id", "conflicts", ["sync_id"])
    op.create_index("ix_conflicts_state", "conflicts", ["state"])


def downgrade() -> None:
    """Drop them."""
    op.drop_table("conflicts")
    op.drop_table("quarantine")
