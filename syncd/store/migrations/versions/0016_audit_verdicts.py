"""The audit chain's verdicts, kept in the store so that every replica's web page shows the same one (issue 19)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"


def upgrade() -> None:
    """Create audit_verdicts: one row per verification started from the web page, with its outcome once known."""
    op.create_table(
        "audit_verdicts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("by_person", sa.String(300), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("error", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_verdicts"),
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_table("audit_verdicts")
