"""Webhook secrets agreed in a handshake, and rate budgets shared by replicas (issue 16)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    """Create hook_secrets (a department's agreed webhook secret, and who registers it now) and rate_budgets."""
    op.create_table(
        "hook_secrets",
        sa.Column("department", sa.String(200), nullable=False),
        sa.Column("target", sa.String(2000), nullable=True),
        sa.Column("webhook", sa.String(100), nullable=True),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("agreed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("offered", sa.Text(), nullable=True),
        sa.Column("pending_by", sa.String(300), nullable=True),
        sa.Column("pending_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("department", name="pk_hook_secrets"),
    )
    op.create_table(
        "rate_budgets",
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("stamp", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_rate_budgets"),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("rate_budgets")
    op.drop_table("hook_secrets")
