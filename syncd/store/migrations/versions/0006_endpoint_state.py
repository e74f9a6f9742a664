"""Endpoints that cannot be read: which fail since when and why, and what each item's mirror there still holds."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    """Create endpoint_state (a row per failing endpoint) and behind (values a mirror holds from an older base)."""
    op.create_table(
        "endpoint_state",
        sa.Column("endpoint", sa.String(200), nullable=False),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint", name="pk_endpoint_state"),
    )
    op.create_table(
        "behind",
        sa.Column("sync_id", sa.String(32), nullable=False),
        sa.Column("endpoint", sa.String(200), nullable=False),
        sa.Column("field", sa.String(100), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("sync_id", "endpoint", "field", name="pk_behind"),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("behind")
    op.drop_table("endpoint_state")
