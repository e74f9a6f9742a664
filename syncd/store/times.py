"""Times as the store hands them back: one rule for every table."""

from __future__ import annotations

from datetime import UTC, datetime


def aware(moment: datetime) -> datetime:
    """A stored time as an aware UTC datetime (SQLite hands back naive ones for UTC; PostgreSQL aware ones)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def aware_or_none(moment: datetime | None) -> datetime | None:
    """:func:`aware`, for a column that may be empty."""
    return None if moment is None else aware(moment)
