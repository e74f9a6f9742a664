"""The audit chain's verdicts from the web page, kept in the store so that every replica shows the same one.

Verifying a long chain takes minutes, so the page starts it on a thread and shows the last verdict. Kept in a
process, a verdict computed by one replica would be unknown to the others behind the same load balancer (the page
would say "not verified" on one and "ok" on another). One row per verification: begun, then finished with its
outcome (the :class:`syncd.audit.Verification` as JSON, or the error's name). A verification whose replica died
would stay "running" for ever: one begun more than :data:`ABANDONED_S` ago no longer blocks a new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, insert, select, update

from syncd.store.leases import now
from syncd.store.schema import audit_verdicts
from syncd.store.times import aware, aware_or_none

ABANDONED_S = 3600.0
"""A verification still running after this long is taken for abandoned (its process ended) and may be started again."""


@dataclass(frozen=True)
class VerdictRow:
    """One verification: when it began and who asked; when it finished, with its outcome (JSON) or error."""

    id: int
    started_at: datetime
    finished_at: datetime | None
    by: str
    outcome: str | None
    error: str | None


def begin(connection: Connection, by: str) -> int | None:
    """Record a verification begun by ``by``; its id, or None while another one runs (begun under ABANDONED_S ago)."""
    at = now(connection)
    running = connection.execute(
        select(audit_verdicts.c.id).where(
            and_(
                audit_verdicts.c.finished_at.is_(None),
                audit_verdicts.c.started_at > at - timedelta(seconds=ABANDONED_S),
            )
        )
    ).first()
    if running is not None:
        return None
    inserted = connection.execute(insert(audit_verdicts).values(started_at=at, by_person=by))
    key = inserted.inserted_primary_key
    return int(key[0]) if key is not None else None


def finish(connection: Connection, verdict_id: int, *, outcome: str | None, error: str | None) -> None:
    """Record how a verification ended: its outcome as JSON, or the name of the error that stopped it."""
    connection.execute(
        update(audit_verdicts)
        .where(audit_verdicts.c.id == verdict_id)
        .values(finished_at=now(connection), outcome=outcome, error=error)
    )


def latest(connection: Connection) -> VerdictRow | None:
    """The most recently begun verification, finished or not."""
    row = connection.execute(select(audit_verdicts).order_by(audit_verdicts.c.id.desc()).limit(1)).first()
    if row is None:
        return None
    return VerdictRow(
        int(row.id), aware(row.started_at), aware_or_none(row.finished_at), row.by_person, row.outcome, row.error
    )
