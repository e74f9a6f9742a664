"""The web page's permissions filtered in SQL (issue 19): audit_terms gains ``reader`` terms.

Each event's ``reader`` terms are the departments it concerns (:func:`syncd.audit.concerned`: its endpoint, each
department of its origin, the department of each ref), so a page for a person who may read some departments only
is one indexed query, not a Python filter after it. The backfill derives them for every existing event, with the
table's indexes dropped meanwhile (one sort at the end instead of a million random inserts). Nothing chained is
touched: audit_terms is derived data, which ``syncd audit verify`` checks against the content.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import delete

from syncd.audit import READER, fill_terms
from syncd.store.schema import audit_terms

revision = "0015"
down_revision = "0014"


def upgrade() -> None:
    """Add every event's reader terms, then index the table again."""
    op.drop_index("ix_audit_terms_seq", "audit_terms")
    op.drop_index("ix_audit_terms_term_kind_value_seq", "audit_terms")
    op.execute(delete(audit_terms).where(audit_terms.c.term_kind == READER))  # 0013's, run by this syncd, made some
    fill_terms(op.get_bind(), kinds=frozenset({READER}))
    op.create_index("ix_audit_terms_term_kind_value_seq", "audit_terms", ["term_kind", "value", "seq"], unique=True)
    op.create_index("ix_audit_terms_seq", "audit_terms", ["seq"])


def downgrade() -> None:
    """Drop the reader terms: 0014's index derives none."""
    op.execute(delete(audit_terms).where(audit_terms.c.term_kind == READER))
