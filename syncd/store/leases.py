"""Group leases in the store: one writer per group, and the fencing token every commit of its work checks.

A lease row names its holder (a replica id, ``host:pid:suffix``), when it expires, and a token that grows by one
each time the lease changes hands (or its holder takes it again after letting it expire). A process that stalls
past its lease (paused, partitioned, SIGSTOPped) keeps an old token; :func:`fence`, run first in each of its
transactions, then refuses it, so it can never commit after another process took over.

Time is the database's on PostgreSQL (``clock_timestamp()``: replicas on several hosts agree on it whatever their
own clocks say) and this host's UTC clock on SQLite (one host by construction). Acquiring is race-free on both: on
PostgreSQL the row is created if absent (``INSERT ... ON CONFLICT DO NOTHING``) and then locked (``SELECT ... FOR
UPDATE``); on SQLite every transaction starts with ``BEGIN IMMEDIATE`` and so runs alone. The fence reads the row
``FOR SHARE`` on PostgreSQL: a takeover waits for the commits in flight, which therefore land before it, never
after. A holder stopped inside such a transaction (SIGSTOP, a frozen VM) would hold that lock, and so its groups,
for as long as it is stopped: every transaction that locks a lease row is therefore bounded by the lease's TTL of
idleness (``idle_in_transaction_session_timeout``), after which PostgreSQL ends the session, rolls it back and
lets the takeover through. The stopped holder's commit then fails, as the fence would have made it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from syncd.errors import LeaseLost, holder_host_pid
from syncd.store.schema import leases
from syncd.store.times import aware

NEVER = datetime(1970, 1, 1, tzinfo=UTC)
"""The times of a lease row nobody has held yet (free since forever)."""


@dataclass(frozen=True)
class Lease:
    """One holder's lease of one group, as it was taken or last seen; ``token`` is the fencing token."""

    group: str
    holder: str
    token: int
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime

    @property
    def host(self) -> str:
        """The host of the holding process."""
        return holder_host_pid(self.holder)[0]

    @property
    def pid(self) -> str:
        """The process id of the holder, on its host."""
        return holder_host_pid(self.holder)[1]

    def live(self, now: datetime) -> bool:
        """Whether the lease is held at ``now`` (a released or expired lease is free)."""
        return bool(self.holder) and now < self.expires_at


def _lease(row: Any) -> Lease:  # noqa: ANN401 - a SQLAlchemy row
    return Lease(
        row.group_name,
        row.holder,
        row.token,
        aware(row.acquired_at),
        aware(row.renewed_at),
        aware(row.expires_at),
    )


def now(connection: Connection) -> datetime:
    """The lease clock: the database's on PostgreSQL, this host's UTC clock on SQLite."""
    if connection.dialect.name == "postgresql":
        return aware(connection.execute(text("SELECT clock_timestamp()")).scalar_one())
    return datetime.now(UTC)


def bound_idleness(connection: Connection, ttl_s: float) -> None:
    """On PostgreSQL, end this transaction's session if its client leaves it idle for ``ttl_s`` (see above).

    ``SET LOCAL``: only this transaction, and the pool's connection is back to the server's default after it. At
    least a second, so that a tiny TTL never ends a transaction that is merely busy between two statements.
    """
    if connection.dialect.name == "postgresql":
        milliseconds = str(math.ceil(max(1.0, ttl_s) * 1000))
        connection.execute(
            text("SELECT set_config('idle_in_transaction_session_timeout', :ms, true)"), {"ms": milliseconds}
        )


def _ttl_s(lease: Lease) -> float:
    return (lease.expires_at - lease.renewed_at).total_seconds()


def _locked(connection: Connection, group: str, ttl_s: float) -> Lease:
    """The group's lease row, created free if absent, locked until the transaction ends (at most ``ttl_s`` idle)."""
    bound_idleness(connection, ttl_s)
    values = {
        "group_name": group,
        "holder": "",
        "token": 0,
        "acquired_at": NEVER,
        "renewed_at": NEVER,
        "expires_at": NEVER,
    }
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(dialect.insert(leases).values(**values).on_conflict_do_nothing(index_elements=["group_name"]))
    row = connection.execute(select(leases).where(leases.c.group_name == group).with_for_update()).one()
    return _lease(row)


def acquire(connection: Connection, group: str, holder: str, ttl_s: float) -> Lease | None:
    """Take the group's lease if it is free or expired (a new token), renew it if ``holder`` has it; else None."""
    at = now(connection)
    current = _locked(connection, group, ttl_s)
    expires = at + timedelta(seconds=ttl_s)
    if current.live(at) and current.holder != holder:
        return None
    values: dict[str, Any]
    if current.live(at):
        values = {"renewed_at": at, "expires_at": expires}
    else:
        values = {"holder": holder, "token": current.token + 1, "acquired_at": at, "renewed_at": at}
        values["expires_at"] = expires
    connection.execute(update(leases).where(leases.c.group_name == group).values(**values))
    row = connection.execute(select(leases).where(leases.c.group_name == group)).one()
    return _lease(row)


def renew(connection: Connection, lease: Lease) -> bool:
    """Extend a lease still held with its token by its TTL; False if it expired or changed hands (it is lost)."""
    ttl_s = _ttl_s(lease)
    at = now(connection)
    current = _locked(connection, lease.group, ttl_s)
    if not (current.live(at) and (current.holder, current.token) == (lease.holder, lease.token)):
        return False
    connection.execute(
        update(leases)
        .where(leases.c.group_name == lease.group)
        .values(renewed_at=at, expires_at=at + timedelta(seconds=ttl_s))
    )
    return True


def release(connection: Connection, lease: Lease) -> None:
    """Free a lease now if it is still this one (the token is kept, so the next holder's is higher)."""
    at = now(connection)
    connection.execute(
        update(leases)
        .where(leases.c.group_name == lease.group, leases.c.holder == lease.holder, leases.c.token == lease.token)
        .values(expires_at=at)
    )


def holders(connection: Connection) -> list[Lease]:
    """Every group's lease row (live or not: compare ``expires_at`` with :func:`now`), by group."""
    return [_lease(row) for row in connection.execute(select(leases).order_by(leases.c.group_name))]


def fence(connection: Connection, lease: Lease) -> None:
    """Raise LeaseLost unless ``lease`` is still its group's live lease; run first in a transaction that commits.

    On PostgreSQL the row is read ``FOR SHARE``: the group's own transactions do not wait for one another, and a
    takeover (``FOR UPDATE``) waits until they have committed, or until a holder stopped mid-transaction has been
    idle for the TTL (:func:`bound_idleness`).
    """
    bound_idleness(connection, _ttl_s(lease))
    at = now(connection)
    row = connection.execute(
        select(leases).where(leases.c.group_name == lease.group).with_for_update(read=True)
    ).first()
    current = _lease(row) if row is not None else None
    if current is None or not current.live(at) or (current.holder, current.token) != (lease.holder, lease.token):
        raise LeaseLost(lease.group, lease.token)
