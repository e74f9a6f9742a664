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
from collections import deque
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, insert, select, update

from syncd.redact import redact
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
    # Redaction (issue 17): the message may quote a tool's text; masked before it is hashed, so the chain holds it.
    event = dataclasses.replace(event, message=redact(event.message)) if event.message else event
    head = tx.connection.execute(select(audit_head).where(audit_head.c.id == 1).with_for_update()).one()
    seq = int(head.seq) + 1
    content = _content(event)
    digest = _digest(head.hash, seq, content)
    tx.connection.execute(
        insert(audit).values(
            seq=seq,
            at=event.at.astimezone(UTC),  # UTC, so time filters compare alike on SQLite (no zones there)
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


def _recorded(row: Row[Any]) -> Recorded:
    content = dict(row.content)
    content["at"] = datetime.fromisoformat(content["at"])
    return Recorded(row.seq, AuditEvent(**content), row.prev_hash, row.hash)


def _matches(
    content: dict[str, Any], *, ref: str | None, department: str | None, person: str | None, field: str | None
) -> bool:
    """The filters on values inside the JSON content, checked in Python: JSON queries differ between databases."""
    if ref is not None and ref not in (content.get("refs") or {}).values():
        return False
    if department is not None and department not in (content.get("endpoint"), content.get("origin")):
        return False
    if person is not None and (content.get("person") or "").casefold() != person.casefold():
        return False
    if field is not None and content.get("field") != field:
        # A write or create names no single field: its new value is the mapping of the fields it wrote.
        new = content.get("new")
        return content.get("field") is None and isinstance(new, dict) and field in new
    return True


def query(
    store: Store,
    *,
    sync_id: str | None = None,
    ref: str | None = None,
    group: str | None = None,
    department: str | None = None,
    person: str | None = None,
    field: str | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
) -> list[Recorded]:
    """Stored events matching every given filter, oldest first; with ``limit``, only the newest that many.

    ``department`` matches the endpoint written or the origin of the change; ``person`` ignores case (people are
    e-mail addresses); ``field`` also matches a write or create that wrote that field. ``since`` is inclusive and
    ``until`` exclusive, so consecutive windows never count an event twice; both must be timezone-aware.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must not be negative, not {limit}")
    if any(bound is not None and bound.tzinfo is None for bound in (since, until)):
        raise ValueError("since and until must be timezone-aware: a naive time would be read in the local zone")
    statement = select(audit)
    if sync_id is not None:
        statement = statement.where(audit.c.sync_id == sync_id)
    if group is not None:
        statement = statement.where(audit.c.group_name == group)
    if kind is not None:
        statement = statement.where(audit.c.kind == kind)
    if since is not None:
        statement = statement.where(audit.c.at >= since.astimezone(UTC))
    if until is not None:
        statement = statement.where(audit.c.at < until.astimezone(UTC))
    in_python = any(value is not None for value in (ref, department, person, field))
    if limit is not None and not in_python:
        # Everything is filtered in SQL: read only the newest rows, then put them back in chain order.
        with store.transaction() as tx:
            rows = tx.connection.execute(statement.order_by(audit.c.seq.desc()).limit(limit)).all()
        return [_recorded(row) for row in reversed(rows)]
    kept: deque[Row[Any]] = deque(maxlen=limit)
    with store.transaction() as tx:
        for row in tx.connection.execute(statement.order_by(audit.c.seq)):
            if _matches(row.content, ref=ref, department=department, person=person, field=field):
                kept.append(row)
    return [_recorded(row) for row in kept]


def events(store: Store, *, sync_id: str | None = None, group: str | None = None) -> list[Recorded]:
    """Stored events, oldest first, optionally of one item or group."""
    return query(store, sync_id=sync_id, group=group)
