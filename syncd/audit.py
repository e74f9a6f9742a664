"""The audit log: one append-only event per decision and per remote write, hash-chained so tampering shows.

Each event is appended inside the store transaction that commits the state it describes (so the log and the
state never disagree). Its hash is SHA-256 over the previous event's hash and a canonical JSON serialisation of
its content (sorted keys, ISO times), so editing, deleting, inserting or reordering a row breaks the chain at
that row, which :func:`verify` finds. Appends take a row lock on the chain head (``audit_head``): concurrent
writers, threads or replicas on PostgreSQL, queue up and the chain never forks. Values are canonical field values
only: never a credential.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update

from syncd.store import Store, Tx
from syncd.store.schema import GENESIS, audit, audit_head


@dataclass(frozen=True)
class AuditEvent:
    """What happened to one item (or endpoint), why, and on whose change."""

    kind: str
    """write, create, archive, unlink, conflict, decision, skip, quarantine."""
    group: str | None = None
    sync_id: str | None = None
    endpoint: str | None = None
    refs: dict[str, str] = dataclasses.field(default_factory=dict)
    field: str | None = None
    old: Any = None
    new: Any = None
    origin: str | None = None
    """The department whose change this propagates."""
    person: str | None = None
    rule: str | None = None
    loser: Any = None
    """A conflict's losing value: never lost, it is here."""
    outcome: str = "applied"
    config_version: str | None = None
    message: str | None = None
    at: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class Recorded:
    """An event as stored: its place in the chain and its hashes."""

    seq: int
    event: AuditEvent
    prev_hash: str
    hash: str


def _content(event: AuditEvent) -> dict[str, Any]:
    content = asdict(event)
    content["at"] = event.at.astimezone(UTC).isoformat()
    return content


def _digest(prev_hash: str, seq: int, content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(f"{prev_hash}\n{seq}\n{canonical}".encode()).hexdigest()


def append(tx: Tx, event: AuditEvent) -> Recorded:
    """Add one event at the end of the chain, in the caller's transaction."""
    head = tx.connection.execute(select(audit_head).where(audit_head.c.id == 1).with_for_update()).one()
    seq = int(head.seq) + 1
    content = _content(event)
    digest = _digest(head.hash, seq, content)
    tx.connection.execute(
        insert(audit).values(
            seq=seq,
            at=event.at,
            kind=event.kind,
            group_name=event.group,
            sync_id=event.sync_id,
            content=content,
            prev_hash=head.hash,
            hash=digest,
        )
    )
    tx.connection.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=digest))
    return Recorded(seq, event, head.hash, digest)


@dataclass(frozen=True)
class Verification:
    """The outcome of checking the chain: where it first breaks, if anywhere, and why."""

    ok: bool
    events: int
    first_bad_seq: int | None = None
    reason: str | None = None


def verify(store: Store) -> Verification:
    """Recompute the whole chain; report the first event whose content, order or link was changed."""
    with store.transaction() as tx:
        rows = tx.connection.execute(select(audit).order_by(audit.c.seq)).all()
        head = tx.connection.execute(select(audit_head).where(audit_head.c.id == 1)).one()
    previous, expected_seq = GENESIS, 1
    for row in rows:
        if row.seq != expected_seq:
            return Verification(False, len(rows), expected_seq, f"event {expected_seq} is missing")
        if row.prev_hash != previous:
            return Verification(False, len(rows), row.seq, "its link to the previous event was changed")
        if _digest(previous, row.seq, row.content) != row.hash:
            return Verification(False, len(rows), row.seq, "its content was changed after it was written")
        previous, expected_seq = row.hash, expected_seq + 1
    if head.seq != len(rows) or head.hash != previous:
        return Verification(False, len(rows), len(rows) + 1, "events at the end of the chain were removed")
    return Verification(True, len(rows))


def events(store: Store, *, sync_id: str | None = None, group: str | None = None) -> list[Recorded]:
    """Stored events, oldest first, optionally of one item or group."""
    query = select(audit).order_by(audit.c.seq)
    if sync_id is not None:
        query = query.where(audit.c.sync_id == sync_id)
    if group is not None:
        query = query.where(audit.c.group_name == group)
    with store.transaction() as tx:
        rows = tx.connection.execute(query).all()
    recorded = []
    for row in rows:
        content = dict(row.content)
        content["at"] = datetime.fromisoformat(content["at"])
        recorded.append(Recorded(row.seq, AuditEvent(**content), row.prev_hash, row.hash))
    return recorded
