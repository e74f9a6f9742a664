"""The replica registry: every running daemon's row, renewed with its leases, so the live ones can share groups.

A replica's row lapses like a lease (``expires_at``, on the same clock as the leases: the database's on
PostgreSQL), so "live" means the same thing for both: a replica SIGKILLed or SIGSTOPped drops out of the registry
about when its leases expire, and the others then share its groups. Rows of replicas gone for longer than
:data:`FORGET_AFTER` are deleted by the next heartbeat, so ``syncd status`` shows recent ones only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from syncd.store.leases import now
from syncd.store.schema import replicas
from syncd.store.times import aware

FORGET_AFTER = timedelta(days=1)
"""How long the row of a replica that stopped heartbeating is kept (shown by ``syncd status`` as not live)."""


@dataclass(frozen=True)
class Replica:
    """One daemon's registry row: its id (its lease holder name), where it runs, and its heartbeat."""

    replica_id: str
    host: str
    pid: int
    started_at: datetime
    seen_at: datetime
    expires_at: datetime

    def live(self, at: datetime) -> bool:
        """Whether its heartbeat has not lapsed at ``at``."""
        return at < self.expires_at


def _replica(row: Any) -> Replica:  # noqa: ANN401 - a SQLAlchemy row
    return Replica(row.replica_id, row.host, row.pid, aware(row.started_at), aware(row.seen_at), aware(row.expires_at))


def heartbeat(connection: Connection, replica_id: str, host: str, pid: int, ttl_s: float) -> None:
    """Register the replica or renew its row for ``ttl_s``; forget replicas gone longer than FORGET_AFTER."""
    at = now(connection)
    expires = at + timedelta(seconds=ttl_s)
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    values = {"replica_id": replica_id, "host": host, "pid": pid, "started_at": at, "seen_at": at}
    connection.execute(
        dialect.insert(replicas)
        .values(**values, expires_at=expires)
        .on_conflict_do_update(index_elements=["replica_id"], set_={"seen_at": at, "expires_at": expires})
    )
    connection.execute(delete(replicas).where(replicas.c.expires_at < at - FORGET_AFTER))


def leave(connection: Connection, replica_id: str) -> None:
    """Mark the replica gone now (a clean shutdown): the others share its groups without waiting for its TTL."""
    connection.execute(update(replicas).where(replicas.c.replica_id == replica_id).values(expires_at=now(connection)))


def registry(connection: Connection) -> list[Replica]:
    """Every replica row (live or not: compare ``expires_at`` with :func:`~syncd.store.leases.now`), by id."""
    return [_replica(row) for row in connection.execute(select(replicas).order_by(replicas.c.replica_id))]
