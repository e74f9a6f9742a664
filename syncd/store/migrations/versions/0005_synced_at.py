"""Links remember when the tool last showed the state the base was agreed from (changes after it are news)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    """Add links.synced_at (empty for links made before: such an item is planned as before until it syncs)."""
    op.add_column("links", sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop it."""
    with op.batch_alter_table("links") as batch:
        batch.drop_column("synced_at")
