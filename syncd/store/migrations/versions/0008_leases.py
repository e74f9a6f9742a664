"""Leases: one writer per group, with a fencing token (issue 16)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    """Create leases (a row per group: who may write it, until when, and the fencing token)."""
    op.create_table(
        "leases",
        sa.Column("group_name", sa.String(200), nullable=False),
        sa.Column("holder", sa.String(300), nullable=False),
        sa.Column("token", sa.Integer(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("group_name", name="pk_leases"),
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_table("leases")
