"""Guards: mass changes held for a person's decision (issue 17)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    """Create guards (one row per held mass change: its items, steps, state and who decided)."""
    op.create_table(
        "guards",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("group_name", sa.String(200), nullable=False),
        sa.Column("endpoint", sa.String(200), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("linked", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("open", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_guards"),
    )
    op.create_index("ix_guards_group_name", "guards", ["group_name"])
    op.create_index("ix_guards_state", "guards", ["state"])


def downgrade() -> None:
    """Drop it."""
    op.drop_index("ix_guards_state", "guards")
    op.drop_index("ix_guards_group_name", "guards")
    op.drop_table("guards")
