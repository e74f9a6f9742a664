"""Echoes: values syncd wrote at an endpoint that the base does not hold yet (a plan that failed part-way)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    """Create the echoes table."""
    op.create_table(
        "echoes",
        sa.Column("sync_id", sa.String(32), nullable=False),
        sa.Column("endpoint", sa.String(200), nullable=False),
        sa.Column("field", sa.String(100), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("sync_id", "endpoint", "field", name="pk_echoes"),
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_table("echoes")
