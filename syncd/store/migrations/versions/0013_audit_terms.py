"""The audit log filtered in SQL at a million events (issue 19): audit_terms, and indexes ending in seq.

audit_terms is an index of the values inside each event's content that ``syncd audit`` filters on (ref,
department, person, field), derived by :func:`syncd.audit.terms`: the backfill below derives it for every existing
event, in batches, before its indexes are built (one sort instead of a million random inserts). It is not part of
the chain and is never hashed: nothing already chained is touched, and ``syncd audit verify`` checks the index
against the content. If the derivation ever changes, a later migration calls ``fill_terms`` again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from syncd.audit import fill_terms

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    """Create audit_terms and fill it from the events, then index it; replace audit's single-column indexes."""
    op.create_table(
        "audit_terms",
        sa.Column("term_kind", sa.String(20), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
    )
    fill_terms(op.get_bind())
    op.create_index("ix_audit_terms_term_kind_value_seq", "audit_terms", ["term_kind", "value", "seq"], unique=True)
    op.create_index("ix_audit_terms_seq", "audit_terms", ["seq"])
    op.drop_index("ix_audit_group_name", "audit")
    op.drop_index("ix_audit_sync_id", "audit")
    op.create_index("ix_audit_kind_seq", "audit", ["kind", "seq"])
    op.create_index("ix_audit_group_name_seq", "audit", ["group_name", "seq"])
    op.create_index("ix_audit_sync_id_seq", "audit", ["sync_id", "seq"])
    op.drop_index("ix_audit_at", "audit")
    op.create_index("ix_audit_at_seq", "audit", ["at", "seq"])  # a time window's seqs, read from the index alone


def downgrade() -> None:
    """Drop the index table and put audit's indexes back as they were."""
    op.drop_index("ix_audit_at_seq", "audit")
    op.create_index("ix_audit_at", "audit", ["at"])
    op.drop_index("ix_audit_sync_id_seq", "audit")
    op.drop_index("ix_audit_group_name_seq", "audit")
    op.drop_index("ix_audit_kind_seq", "audit")
    op.create_index("ix_audit_sync_id", "audit", ["sync_id"])
    op.create_index("ix_audit_group_name", "audit", ["group_name"])
    op.drop_index("ix_audit_terms_seq", "audit_terms")
    op.drop_index("ix_audit_terms_term_kind_value_seq", "audit_terms")
    op.drop_table("audit_terms")
