"""Values a tool refused for one mirror: left out there until they change, and reported."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    """Create refused (a row per item, endpoint and field whose value the tool refused)."""
    op.create_table(
        "refused",
        sa.Column("sync_id", sa.String(32), nullable=False),
        sa.Column("endpoint", sa.String(200), nullable=False),
        sa.Column("field", sa.String(100), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("held", sa.JSON(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sync_id", "endpoint", "field", name="pk_refused"),
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_table("refused")
