"""Webhook secrets agreed in a handshake (Asana), kept in the store so that every replica can verify deliveries.

Asana sends a webhook's secret once, in the handshake while the webhook is created, to whichever replica the load
balancer picks, and signs every later delivery with it; any replica may receive those. So the secret lives here, per
department, with the webhook it belongs to and its target: every replica reads it (at start, and again when a
delivery does not verify with the one it has), and a restart keeps the webhook instead of replacing it.

While a replica registers a department's webhook it marks the row pending (``pending_by`` until
``pending_until``, on the lease clock): one registration at a time, and any replica answers the handshake only
then, so nobody else can have a webhook established toward syncd. A replica that answers a handshake for another
keeps the secret it saw in ``offered``, for the registering replica in case the create's answer lacks it.

The secret is a credential: :class:`HookSecret` never shows it, and whoever reads it registers it with
:func:`syncd.redact.remember` before anything can print it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from syncd.redact import remember
from syncd.store.leases import now
from syncd.store.schema import hook_secrets

HANDSHAKE_S = 60.0
"""How long a registration may keep its department pending: the create call and its handshake, with room."""


@dataclass(frozen=True)
class HookSecret:
    """A department's webhook (its target and id in the tool) and the secret its handshake agreed (never shown)."""

    department: str
    target: str
    webhook: str
    secret: str = field(repr=False)


def _ensure_row(connection: Connection, department: str) -> None:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(dialect.insert(hook_secrets).values(department=department).on_conflict_do_nothing())


def agreed(connection: Connection, department: str) -> HookSecret | None:
    """The department's stored webhook secret, if one was agreed."""
    row = connection.execute(select(hook_secrets).where(hook_secrets.c.department == department)).first()
    if row is None or row.secret is None or row.webhook is None or row.target is None:
        return None
    remember(row.secret)
    return HookSecret(department, row.target, row.webhook, row.secret)


def claim(connection: Connection, department: str, holder: str) -> bool:
    """Mark the department's registration as ``holder``'s for HANDSHAKE_S; False while another one's runs."""
    _ensure_row(connection, department)
    at = now(connection)
    free = or_(
        hook_secrets.c.pending_until.is_(None),
        hook_secrets.c.pending_until < at,
        hook_secrets.c.pending_by == holder,
    )
    done = connection.execute(
        update(hook_secrets)
        .where(and_(hook_secrets.c.department == department, free))
        .values(pending_by=holder, pending_until=at + timedelta(seconds=HANDSHAKE_S), offered=None)
    )
    return bool(done.rowcount)


def pending(connection: Connection, department: str) -> bool:
    """Whether some replica is registering the department's webhook now (its handshake may arrive anywhere)."""
    until: datetime | None = connection.execute(
        select(hook_secrets.c.pending_until).where(hook_secrets.c.department == department)
    ).scalar_one_or_none()
    if until is None:
        return False
    if until.tzinfo is None:
        until = until.replace(tzinfo=now(connection).tzinfo)
    return now(connection) < until


def offer(connection: Connection, department: str, secret: str) -> None:
    """Keep a handshake's secret seen by this replica for the one registering (only while it is pending)."""
    remember(secret)
    connection.execute(
        update(hook_secrets)
        .where(and_(hook_secrets.c.department == department, hook_secrets.c.pending_by.is_not(None)))
        .values(offered=secret)
    )


def offered(connection: Connection, department: str) -> str | None:
    """The secret a handshake answered by any replica offered during the pending registration, if any."""
    secret: str | None = connection.execute(
        select(hook_secrets.c.offered).where(hook_secrets.c.department == department)
    ).scalar_one_or_none()
    if secret is not None:
        remember(secret)
    return secret


def agree(connection: Connection, hook: HookSecret) -> None:
    """Store the webhook's agreed secret and end the registration."""
    _ensure_row(connection, hook.department)
    connection.execute(
        update(hook_secrets)
        .where(hook_secrets.c.department == hook.department)
        .values(
            target=hook.target,
            webhook=hook.webhook,
            secret=hook.secret,
            agreed_at=now(connection),
            offered=None,
            pending_by=None,
            pending_until=None,
        )
    )


def finish(connection: Connection, department: str, holder: str) -> None:
    """End ``holder``'s registration of the department without a new secret (it kept a webhook, or failed)."""
    connection.execute(
        update(hook_secrets)
        .where(and_(hook_secrets.c.department == department, hook_secrets.c.pending_by == holder))
        .values(offered=None, pending_by=None, pending_until=None)
    )
