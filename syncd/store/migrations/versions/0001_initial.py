"""The first schema: items, links, base values, cursors, journal and the hash-chained audit log."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    """Create every table of the first schema."""
    op.create_table(
        "items",
        sa.Column("sync_id", sa.String(32), nullable=False),
        sa.Column("group_name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sync_id", name="pk_items"),
    )
    op.create_index("ix_items_group_name", "items", ["group_name"])
    op.create_table(
        "links",
        sa.Column("sync_id", sa.String(32), nullable=False),
        sa.Column("endpoint", sa.String(200), nullable=False),
        sa.Column("ref", sa.String(200), nullable=False),
        sa.Column("version", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("sync_id", "endpoint", name="pk_links"),
        sa.UniqueConstraint("endpoint", "ref", name="uq_links_endpoint_ref"),
    )
    op.create_table(
        "base",
        sa.Column("sync_id", sa.String(32), nullable=False),
        sa.Column("field", sa.String(100), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("sync_id", "field", name="pk_base"),
    )
    op.create_table(
        "cursors",
        sa.Column("endpoint", sa.String(200), nullable=False),
        sa.Column("cursor", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("endpoint", name="pk_cursors"),
    )
    op.create_table(
        "journal",
        sa.Column("plan_id", sa.String(32), nullable=False),
        sa.Column("sync_id", sa.String(32), nullable=False),
        sa.Column("group_name", sa.String(200), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("plan_id", name="pk_journal"),
    )
    op.create_table(
        "audit",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("group_name", sa.String(200), nullable=True),
        sa.Column("sync_id", sa.String(32), nullable=True),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit"),
    )
    op.create_index("ix_audit_at", "audit", ["at"])
    op.create_index("ix_audit_group_name", "audit", ["group_name"])
    op.create_index("ix_audit_sync_id", "audit", ["sync_id"])
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )
    op.bulk_insert(
        sa.table("audit_head", sa.column("id", sa.Integer), sa.column("seq", sa.Integer), sa.column("hash", sa.String)),
        [{"id": 1, "seq": 0, "hash": "0" * 64}],
    )


def downgrade() -> None:
    """Drop every table of the first schema."""
    for table in ("audit_head", "audit", "journal", "cursors", "base", "links", "items"):
        op.drop_table(table)
