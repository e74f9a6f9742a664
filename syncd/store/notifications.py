"""The ``notifications`` outbox: events waiting to be delivered to a target, read and written by short transactions.

:func:`add` runs inside the transaction that records the event (a :class:`~syncd.store.Tx`) and adds nothing when
the event's row exists already (``INSERT ... ON CONFLICT DO NOTHING`` on its key: two passes, or two replicas,
recording one event make one row, and neither transaction fails). The daemon's notifier then :func:`claim` s the
due rows of the targets whose digest window has passed (on PostgreSQL with ``SELECT ... FOR UPDATE SKIP LOCKED``,
so two replicas never claim one row), sends them outside any transaction, and marks them :func:`sent` or
:func:`failed` (retried later, with back-off). A claim lapses at ``claimed_until``: a daemon that died between
claiming and sending leaves its rows to the next one. Times are the lease clock's (:func:`syncd.store.leases.now`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from ulid import ULID

from syncd.notices import Event, Queued, Route
from syncd.redact import redact
from syncd.store.leases import now as clock
from syncd.store.schema import notifications
from syncd.store.times import aware

if TYPE_CHECKING:
    from syncd.store import Tx

BATCH = 500
"""Rows claimed at most per round; more wait for the next round (a digest of 500 lines is already too long)."""


def _insert(connection: Connection) -> sqlite.Insert | postgresql.Insert:
    if connection.dialect.name == "postgresql":
        return postgresql.insert(notifications)
    return sqlite.insert(notifications)


def add(tx: Tx, route: Route, event: Event) -> int:
    """Queue ``event`` for ``route``'s target unless it is queued already; 1 if a row was added, else 0."""
    now = clock(tx.connection)
    statement = (
        _insert(tx.connection)
        .values(
            id=str(ULID()),
            key=f"{event.key}/{route.target}",
            target=route.target,
            department=route.department,
            kind=event.kind,
            group_name=event.group,
            sync_id=event.sync_id,
            text=redact(event.text),
            links=[list(link) for link in event.links],
            created_at=now,
            due_at=now,
            attempts=0,
        )
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return 1 if tx.connection.execute(statement).rowcount else 0


def _queued(row: Any) -> Queued:  # noqa: ANN401 - a SQLAlchemy row
    links = [list(link) for link in row.links]
    return Queued(row.id, row.target, row.department, row.kind, row.text, links, aware(row.created_at), row.attempts)


def claim(
    connection: Connection, holder: str, *, digest_s: float, claim_s: float, targets: set[str] | None = None
) -> dict[str, list[Queued]]:
    """Claim, for ``claim_s`` seconds, every due row of each target whose oldest due row is ``digest_s`` old.

    Target -> its rows, oldest first. Rows of a target still inside its digest window are left: the window
    collects a burst into one message. ``targets``: only these (the configured ones; rows of a target removed
    from the configuration stay unsent).
    """
    now = clock(connection)
    free = or_(notifications.c.claimed_until.is_(None), notifications.c.claimed_until < now)
    query = (
        select(notifications)
        .where(notifications.c.sent_at.is_(None), notifications.c.due_at <= now, free)
        .order_by(notifications.c.created_at, notifications.c.id)
        .limit(BATCH)
    )
    if targets is not None:
        query = query.where(notifications.c.target.in_(sorted(targets)))
    if connection.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    due: dict[str, list[Queued]] = defaultdict(list)
    for row in connection.execute(query):
        due[row.target].append(_queued(row))
    ready = {
        target: rows
        for target, rows in due.items()
        if rows[0].attempts > 0 or (now - rows[0].created_at).total_seconds() >= digest_s
    }
    ids = [row.id for rows in ready.values() for row in rows]
    if ids:
        connection.execute(
            update(notifications)
            .where(notifications.c.id.in_(ids))
            .values(claimed_by=holder, claimed_until=now + timedelta(seconds=claim_s))
        )
    return ready


def sent(connection: Connection, ids: list[str], holder: str) -> int:
    """Mark the rows ``holder`` claimed and delivered as sent; how many were still its own."""
    return int(
        connection.execute(
            update(notifications)
            .where(notifications.c.id.in_(ids), notifications.c.claimed_by == holder)
            .values(sent_at=clock(connection), claimed_by=None, claimed_until=None, error=None)
        ).rowcount
    )


def release(connection: Connection, ids: list[str], holder: str) -> None:
    """Hand back rows ``holder`` claimed and will not send (it is stopping), due at once for the next deliverer."""
    connection.execute(
        update(notifications)
        .where(notifications.c.id.in_(ids), notifications.c.claimed_by == holder)
        .values(claimed_by=None, claimed_until=None)
    )


def failed(connection: Connection, ids: list[str], holder: str, error: str, backoff_s: float) -> None:
    """Release the rows a failed delivery claimed, due again in ``backoff_s`` seconds, with the (redacted) error."""
    connection.execute(
        update(notifications)
        .where(notifications.c.id.in_(ids), notifications.c.claimed_by == holder)
        .values(
            attempts=notifications.c.attempts + 1,
            due_at=clock(connection) + timedelta(seconds=backoff_s),
            claimed_by=None,
            claimed_until=None,
            error=redact(error),
        )
    )
