"""Replicas: the registry of running daemons, so several replicas can share the groups (issue 16)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    """Create replicas (a row per daemon: where it runs, since when, its last heartbeat and when that lapses)."""
    op.create_table(
        "replicas",
        sa.Column("replica_id", sa.String(300), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("replica_id", name="pk_replicas"),
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_table("replicas")
