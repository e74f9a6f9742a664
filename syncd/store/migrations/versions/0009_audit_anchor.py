"""The audit chain's hash format per event: rows already written stay format 1 and verify as they were chained.

Nothing is re-chained: recomputing old hashes under a new format would launder any tampering done before it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    """Add audit.hash_format, 1 (content-only SHA-256) for every existing event."""
    with op.batch_alter_table("audit") as batch:
        batch.add_column(sa.Column("hash_format", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    """Drop it (events of format 2 and 3 then no longer verify: their format is gone)."""
    with op.batch_alter_table("audit") as batch:
        batch.drop_column("hash_format")
