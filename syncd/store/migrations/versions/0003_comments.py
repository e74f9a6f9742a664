"""Comments: the originals people wrote (as canonical Markdown) and where each was copied."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    """Create the comments table."""
    op.create_table(
        "comments",
        sa.Column("endpoint", sa.String(200), nullable=False),
        sa.Column("comment_id", sa.String(100), nullable=False),
        sa.Column("sync_id", sa.String(32), nullable=False),
        sa.Column("origin_endpoint", sa.String(200), nullable=False),
        sa.Column("origin_id", sa.String(100), nullable=False),
        sa.Column("author", sa.String(400), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("endpoint", "comment_id", name="pk_comments"),
    )
    op.create_index("ix_comments_sync_id", "comments", ["sync_id"])


def downgrade() -> None:
    """Drop it."""
    op.drop_table("comments")
