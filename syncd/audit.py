"""The audit log: one append-only event per decision and per remote write, hash-chained so tampering shows.

Each event is appended inside the store transaction that commits the state it describes (so the log and the
state never disagree). Its hash covers the previous event's hash, its seq, every column ``syncd audit`` filters on
(``at``, ``kind``, ``group_name``, ``sync_id``) and a canonical JSON serialisation of its content (sorted keys, ISO
times), so editing, deleting, inserting or reordering a row breaks the chain at that row, which :func:`verify`
finds. Appends take a row lock on the chain head (``audit_head``): concurrent writers, threads or replicas on
PostgreSQL, queue up and the chain never forks. Values are canonical field values only: never a credential.

Hash formats, recorded per event in ``hash_format`` (never upgraded in place: re-chaining would launder edits):

- 1: SHA-256 of the content alone (events written before migration 0009). The columns are still checked against
  the content, which holds the same values.
- 2: SHA-256 of every column: written when no ``audit_key`` is configured. Anyone who can write to the database
  can recompute it, so only an exported checkpoint (:func:`head`) shows a re-chained log.
- 3: HMAC-SHA256 of every column with ``audit_key``, a secret kept out of the database: a re-chained log no longer
  verifies. A format never goes down along the chain, so stripping the key from new events is found too.

Cutting the end of the log and moving the head back leaves a chain that verifies in every format: that is what
the checkpoints are for (``syncd audit head``, the daemon's ``audit.head`` log line, ``syncd_audit_head_seq``).

Reading (issue 19: pages at a million events): every filter runs in the database. The values inside the content
that ``syncd audit`` filters on (refs, departments, people, fields) are indexed in ``audit_terms`` by :func:`terms`,
written with the event; :class:`AuditFilter` holds the filters and :meth:`AuditFilter.matches` says in Python
what they mean; :func:`page` reads newest-first keyset pages, :func:`export` streams in chain order. The index is
derived, never evidence: :func:`verify` checks it against the verified content and :func:`reindex` rebuilds it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Generator, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Select, delete, false, func, insert, select, text, update

from syncd.redact import redact
from syncd.store import Store, Tx
from syncd.store.schema import GENESIS, audit, audit_head, audit_terms

CONTENT_SHA256, COLUMNS_SHA256, COLUMNS_HMAC = 1, 2, 3
"""The hash formats (see the module docstring)."""


@dataclass(frozen=True)
class AuditEvent:
    """What happened to one item (or endpoint), why, and on whose change."""

    kind: str
    """write, create, archive, unlink, restore, conflict, decision, skip, quarantine, guard."""
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
    """Who made the change (e-mail), when one person made all of it; a decision's: who decided."""
    people: dict[str, str] | None = None
    """Field -> who made the change of it this event carries, from the origin tool's history (a write may carry
    several people's changes; ``person`` is set only when they are one). None on events written before it."""
    decided_by: dict[str, str] | None = None
    """Field -> who decided the held conflict whose outcome this write applies (``syncd conflicts resolve``)."""
    rule: str | None = None
    loser: Any = None
    """A conflict's losing value: never lost, it is here."""
    outcome: str = "applied"
    config_version: str | None = None
    message: str | None = None
    at: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))


_FIELDS = frozenset(each.name for each in dataclasses.fields(AuditEvent))


@dataclass(frozen=True)
class Recorded:
    """An event as stored: its place in the chain and its hashes."""

    seq: int
    event: AuditEvent
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head at one moment, exported where the database's administrators cannot rewrite it."""

    seq: int
    hash: str

    def to_json(self) -> str:
        """One JSON line, as ``syncd audit head`` prints it and ``--checkpoint`` reads it back."""
        return json.dumps({"seq": self.seq, "hash": self.hash})


@dataclass(frozen=True)
class _Stored:
    """One audit row, every column read and type-checked: what a hash format covers."""

    seq: int
    at: datetime
    kind: str
    group_name: str | None
    sync_id: str | None
    content: dict[str, Any]
    prev_hash: str
    hash: str
    hash_format: int


class _Unreadable(Exception):  # noqa: N818 - a verdict about a row, raised to leave the parsing early
    """A row whose columns are not what syncd writes: missing, of the wrong type, or not JSON."""


def _content(event: AuditEvent) -> dict[str, Any]:
    content = asdict(event)
    content["at"] = event.at.astimezone(UTC).isoformat()
    return content


def _canonical(value: Any) -> str:  # noqa: ANN401 - any JSON value of the log
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _digest(row: _Stored, key: bytes | None) -> str | None:
    """The hash ``row`` must carry in its format; None for a keyed row when no key is at hand."""
    if row.hash_format == CONTENT_SHA256:
        return hashlib.sha256(f"{row.prev_hash}\n{row.seq}\n{_canonical(row.content)}".encode()).hexdigest()
    covered = {
        "format": row.hash_format,
        "prev_hash": row.prev_hash,
        "seq": row.seq,
        "at": row.at.astimezone(UTC).isoformat(),
        "kind": row.kind,
        "group_name": row.group_name,
        "sync_id": row.sync_id,
        "content": row.content,
    }
    message = _canonical(covered).encode()
    if row.hash_format == COLUMNS_SHA256:
        return hashlib.sha256(message).hexdigest()
    return None if key is None else hmac.new(key, message, hashlib.sha256).hexdigest()


def append(tx: Tx, event: AuditEvent) -> Recorded:
    """Add one event at the end of the chain, in the caller's transaction (keyed if the store has a key)."""
    # Redaction (issue 17): the message may quote a tool's text; masked before it is hashed, so the chain holds it.
    event = dataclasses.replace(event, message=redact(event.message)) if event.message else event
    head = tx.connection.execute(select(audit_head).where(audit_head.c.id == 1).with_for_update()).one()
    content = _content(event)
    row = _Stored(
        seq=int(head.seq) + 1,
        at=event.at.astimezone(UTC),  # UTC, so time filters compare alike on SQLite (no zones there)
        kind=event.kind,
        group_name=event.group,
        sync_id=event.sync_id,
        content=content,
        prev_hash=head.hash,
        hash="",
        hash_format=COLUMNS_SHA256 if tx.audit_key is None else COLUMNS_HMAC,
    )
    digest = _digest(row, tx.audit_key)
    assert digest is not None  # a keyed format is chosen only with a key
    tx.connection.execute(insert(audit).values(**{**asdict(row), "hash": digest}))
    tx.connection.execute(insert(audit_terms), _term_rows(row.seq, content))
    tx.connection.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=row.seq, hash=digest))
    return Recorded(row.seq, event, head.hash, digest)


def head(store: Store) -> Checkpoint | None:
    """The chain's head now, to export as a checkpoint; None if its row was deleted."""
    found = store.audit_head()
    return None if found is None else Checkpoint(*found)


@dataclass(frozen=True)
class Verification:
    """The outcome of checking the chain: where it first breaks, if anywhere, and why; how well it is protected."""

    ok: bool
    events: int
    first_bad_seq: int | None = None
    reason: str | None = None
    keyed: int = 0
    """Events whose HMAC was checked with the key."""
    unkeyed: int = 0
    """Events chained by plain SHA-256 (formats 1 and 2): someone with database write access could re-chain them."""
    unchecked: int = 0
    """Keyed events whose HMAC could not be checked: no key was given."""
    checkpoints: int = 0
    """Checkpoints the chain was found to still contain."""
    in_index: bool = False
    """The finding is in the index of the content (audit_terms), not in the chain: the events verify, but a listing
    filtered by ref, department, person or field would hide or add the event named (``syncd audit reindex``)."""


_READ = "SELECT seq, at, kind, group_name, sync_id, content, prev_hash, hash, hash_format FROM audit ORDER BY seq"
"""Through the driver, not the typed table: a corrupt value must become a verdict, not an exception on fetch."""


def _text(value: object, column: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise _Unreadable(f"its {column} is {type(value).__name__}, not text")
    return value


def _instant(value: object, column: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise _Unreadable(f"its {column} is not a time") from None
    if not isinstance(value, datetime):
        raise _Unreadable(f"its {column} is {type(value).__name__}, not a time")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # SQLite keeps UTC without its zone


def _parse(raw: Sequence[Any]) -> _Stored:
    """The row's columns as syncd wrote them, or _Unreadable saying which one is not."""
    seq, at, kind, group_name, sync_id, content, prev_hash, digest, hash_format = raw
    if isinstance(content, str):
        try:
            content = json.loads(content)
        except ValueError:
            raise _Unreadable("its content is not JSON") from None
    if not isinstance(content, dict):
        raise _Unreadable("its content is not a JSON object")
    if not _FIELDS.issuperset(content) or not {"kind", "at"}.issubset(content):
        raise _Unreadable("its content is not an audit event (fields missing or unknown)")
    if hash_format not in (CONTENT_SHA256, COLUMNS_SHA256, COLUMNS_HMAC) or isinstance(hash_format, bool):
        raise _Unreadable(f"its hash format {hash_format!r} is not one syncd writes")
    return _Stored(
        seq=seq,
        at=_instant(at, "time"),
        kind=str(_text(kind, "kind")),
        group_name=_text(group_name, "group_name", optional=True),
        sync_id=_text(sync_id, "sync_id", optional=True),
        content=content,
        prev_hash=str(_text(prev_hash, "prev_hash")),
        hash=str(_text(digest, "hash")),
        hash_format=hash_format,
    )


def _column_edited(row: _Stored) -> str | None:
    """Which filtered column no longer says what the (hashed) content says, if any."""
    content = row.content
    written = {"kind": content.get("kind"), "group_name": content.get("group"), "sync_id": content.get("sync_id")}
    for column, value in written.items():
        if getattr(row, column) != value:
            return column
    try:
        return None if row.at == _instant(content.get("at"), "content's time") else "at"
    except _Unreadable:
        return "at"


class _Chain:
    """Walks the rows in seq order, checking each against the one before; the first finding ends the walk."""

    def __init__(self, key: bytes | None) -> None:
        self.key = key
        self.previous, self.expected_seq, self.format = GENESIS, 1, CONTENT_SHA256
        self.hashes: dict[int, str] = {}
        self.indexed: list[int] = []
        """Per seq (from 1), a fingerprint of the terms its content must have in audit_terms."""
        self.keyed = self.unkeyed = self.unchecked = 0

    def finding(self, raw: Sequence[Any]) -> tuple[int, str] | None:
        """The seq and reason of what is wrong with this row, or None (and the row is taken as the new end)."""
        seq = raw[0]
        if not isinstance(seq, int) or isinstance(seq, bool):
            return self.expected_seq, f"event {self.expected_seq} cannot be read: its seq is {seq!r}"
        if seq != self.expected_seq:
            return self.expected_seq, f"event {self.expected_seq} is missing"
        try:
            row = _parse(raw)
        except _Unreadable as unreadable:
            return seq, f"it cannot be read: {unreadable}"
        reason = self._reason(row)
        if reason is not None:
            return seq, reason
        self.previous, self.expected_seq, self.format = row.hash, seq + 1, row.hash_format
        self.hashes[seq] = row.hash
        self.indexed.append(hash(frozenset(terms(row.content))))
        return None

    def _reason(self, row: _Stored) -> str | None:
        """What is wrong with a readable row in its place, or None (and it is counted by how it was checked)."""
        if row.prev_hash != self.previous:
            return "its link to the previous event was changed"
        column = _column_edited(row)
        if column is not None:
            return f"its {column} column was changed after it was written (it no longer matches its content)"
        if row.hash_format < self.format:
            return f"it is chained in hash format {row.hash_format}, older than format {self.format} before it"
        expected = _digest(row, self.key)
        if expected is None:
            self.unchecked += 1
        elif not hmac.compare_digest(expected.encode(), row.hash.encode()):
            if row.hash_format == COLUMNS_HMAC:  # the one finding a wrong key also gives: say so
                return "its content was changed after it was written (or audit_key is not the key it was written with)"
            return "its content was changed after it was written"
        elif row.hash_format == COLUMNS_HMAC:
            self.keyed += 1
        else:
            self.unkeyed += 1
        return None


def _head_finding(found: Sequence[Any] | None, last: int, last_hash: str) -> tuple[int | None, str] | None:
    """What is wrong with the chain head, given the chain's last event, or None."""
    if found is None:
        return None, f"its head (the audit_head row) was deleted; the last event is {last}"
    seq, digest = found
    if not isinstance(seq, int) or not isinstance(digest, str):
        return None, "its head (the audit_head row) cannot be read"
    if seq > last:
        return last + 1, "events at the end of the chain were removed"
    if seq < last:
        return seq + 1, f"its head was moved back to event {seq}: events after it are no longer part of the chain"
    if digest != last_hash:
        return last or None, "its head's hash was changed"
    return None


def _checkpoint_finding(chain: _Chain, checkpoint: Checkpoint) -> tuple[int, str] | None:
    """Whether the chain still holds the checkpoint's event with the checkpoint's hash."""
    last = chain.expected_seq - 1
    if checkpoint.seq == 0:
        return None if checkpoint.hash == GENESIS else (1, "the checkpoint of event 0 names a hash no chain starts at")
    if checkpoint.seq > last:
        return last + 1, (
            f"the chain ends at event {last}, but a checkpoint says event {checkpoint.seq} was written: "
            "events were removed from the end and the head moved back"
        )
    if chain.hashes[checkpoint.seq] != checkpoint.hash:
        return checkpoint.seq, "its hash differs from the checkpoint: the chain was rewritten up to here"
    return None


_INDEX_EDITED = (
    "its entries in the audit index (audit_terms) differ from its content, so a listing filtered by ref, department, "
    "person or field would hide or add it; the events themselves verify: `syncd audit reindex` rebuilds the index"
)


def _index_finding(store: Store, indexed: list[int]) -> tuple[int, str] | None:
    """The first event whose audit_terms rows are not the terms of its (verified) content, or None.

    Streamed in seq order from a read-only snapshot taken after the chain's: rows past the chain's end belong to
    events appended since, and rows of no event (seq below 1) match nothing, so both are left alone.
    """
    last = len(indexed)
    nothing = hash(frozenset())
    read = (
        select(audit_terms.c.seq, audit_terms.c.term_kind, audit_terms.c.value)
        .where(audit_terms.c.seq >= 1, audit_terms.c.seq <= last)
        .order_by(audit_terms.c.seq)
    )
    done = 0
    with store.reading() as connection, connection.execution_options(yield_per=10_000).execute(read) as result:
        for seq, rows in groupby(result, key=itemgetter(0)):
            skipped = next((each for each in range(done + 1, seq) if indexed[each - 1] != nothing), None)
            if skipped is not None:
                return skipped, _INDEX_EDITED
            if hash(frozenset((kind, value) for _, kind, value in rows)) != indexed[seq - 1]:
                return seq, _INDEX_EDITED
            done = seq
    skipped = next((each for each in range(done + 1, last + 1) if indexed[each - 1] != nothing), None)
    return None if skipped is None else (skipped, _INDEX_EDITED)


def verify(store: Store, checkpoints: Iterable[Checkpoint] = ()) -> Verification:
    """Recompute the whole chain (HMACs with the store's key), find each checkpoint in it, then check the index.

    The first finding wins and names the event; an unreadable row is a finding too, never an exception. The index
    of the content (audit_terms) is checked last, against the content just verified: a finding there says so.
    """
    with store.transaction() as tx:
        rows = tx.connection.exec_driver_sql(_READ).all()
        found = tx.connection.exec_driver_sql("SELECT seq, hash FROM audit_head WHERE id = 1").first()
    chain = _Chain(store.audit_key)

    def verdict(ok: bool, seq: int | None = None, reason: str | None = None, checked: int = 0) -> Verification:
        return Verification(
            ok, len(rows), seq, reason, chain.keyed, chain.unkeyed, chain.unchecked, checkpoints=checked
        )

    for raw in rows:
        finding = chain.finding(raw)
        if finding is not None:
            return verdict(False, *finding)
    at_head = _head_finding(found, chain.expected_seq - 1, chain.previous)
    if at_head is not None:
        return verdict(False, *at_head)
    checked = 0
    for checkpoint in checkpoints:
        missing = _checkpoint_finding(chain, checkpoint)
        if missing is not None:
            return verdict(False, *missing, checked=checked)
        checked += 1
    in_index = _index_finding(store, chain.indexed)
    if in_index is not None:
        return dataclasses.replace(verdict(False, *in_index, checked=checked), in_index=True)
    return verdict(True, checked=checked)


def _recorded(row: Row[Any]) -> Recorded:
    content = dict(row.content)
    content["at"] = datetime.fromisoformat(content["at"])
    return Recorded(row.seq, AuditEvent(**content), row.prev_hash, row.hash)


# ----- the index of what is inside the content (audit_terms) ------------------------------------------------------

REF, DEPARTMENT, PERSON, FIELD, READER = "ref", "department", "person", "field", "reader"
"""The kinds of term :func:`terms` derives from an event's content, one per filter on values inside it (``reader``:
each department whose readers may see the event, :func:`concerned`)."""

_LONGEST = 200
"""The longest value audit_terms holds as written; a longer one is held as its digest (equality is kept)."""


def _term_value(value: str) -> str:
    return value if len(value) <= _LONGEST else "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def concerned(content: dict[str, Any]) -> set[str]:
    """The departments an event concerns, whose readers may see it: where it acts and whose change it carries.

    Its endpoint (the department written), each department of its origin (a guard's or a deletion's lists several,
    comma-separated) and the department of each of its refs; empty names are none. The web page's permissions.
    """
    origin = content.get("origin")
    refs = content.get("refs")
    named = [content.get("endpoint"), *(origin.split(",") if isinstance(origin, str) else [])]
    named += list(refs) if isinstance(refs, dict) else []
    return {name for name in named if isinstance(name, str) and name}


def terms(content: dict[str, Any]) -> set[tuple[str, str]]:
    """The (kind, value) pairs a filter on values inside this content matches it by: exactly :func:`_matches`.

    ref: every ref; department: the endpoint and the origin; person: the person, each per-field person and each
    decider, casefolded (a missing one as "", as ``_matches`` reads it); field: the field, or, for an event that
    names none, each field a write's ``new`` wrote; reader: each department it concerns (:func:`concerned`).
    """
    found: set[tuple[str, str]] = {(READER, name) for name in concerned(content)}
    refs = content.get("refs") or {}
    if isinstance(refs, dict):
        found.update((REF, value) for value in refs.values() if isinstance(value, str))
    found.update(
        (DEPARTMENT, value) for value in (content.get("endpoint"), content.get("origin")) if isinstance(value, str)
    )
    named = [content.get("person")]
    for mapping in (content.get("people"), content.get("decided_by")):
        if isinstance(mapping, dict):
            named += mapping.values()
    found.update((PERSON, (each or "").casefold()) for each in named if each is None or isinstance(each, str))
    field, new = content.get("field"), content.get("new")
    if isinstance(field, str):
        found.add((FIELD, field))
    elif field is None and isinstance(new, dict):
        found.update((FIELD, name) for name in new if isinstance(name, str))
    return {(kind, _term_value(value)) for kind, value in found}


def _term_rows(seq: int, content: dict[str, Any], kinds: frozenset[str] | None = None) -> list[dict[str, Any]]:
    return [
        {"term_kind": kind, "value": value, "seq": seq}
        for kind, value in sorted(terms(content))
        if kinds is None or kind in kinds
    ]


def _stored_content(value: object) -> dict[str, Any] | None:
    """A row's content as the driver returns it (text on SQLite, parsed on PostgreSQL); None if it is not an object."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def fill_terms(
    connection: Connection, *, after: int = 0, batch: int = 5_000, kinds: frozenset[str] | None = None
) -> int:
    """Derive audit_terms for every event after seq ``after``, in batches; the number of rows written.

    With ``kinds``, only terms of those kinds (a migration adding a kind). Reads the content through the driver:
    an unreadable row gets no terms (``verify`` names it as tampering).
    Used by migration 0013's backfill, 0015's (reader terms) and by :func:`reindex`.
    """
    read = text("SELECT seq, content FROM audit WHERE seq > :after ORDER BY seq LIMIT :batch")
    written = 0
    while True:
        rows = connection.execute(read, {"after": after, "batch": batch}).all()
        if not rows:
            return written
        values = [
            each
            for seq, raw in rows
            if (content := _stored_content(raw)) is not None
            for each in _term_rows(seq, content, kinds)
        ]
        if values:
            connection.execute(insert(audit_terms), values)
        written += len(values)
        after = rows[-1][0]


def reindex(store: Store) -> int:
    """Rebuild audit_terms from the events' content, under the chain's head lock; the number of rows written.

    The index is derived data, never evidence: this is how it is repaired after ``verify`` found it edited.
    """
    with store.transaction() as tx:
        tx.connection.execute(select(audit_head.c.seq).where(audit_head.c.id == 1).with_for_update()).first()
        tx.connection.execute(delete(audit_terms))
        return fill_terms(tx.connection)


# ----- filters, pages and exports ---------------------------------------------------------------------------------


def _matches(
    content: dict[str, Any],
    *,
    ref: str | None,
    department: str | None,
    person: str | None,
    field: str | None,
    readers: frozenset[str] | None = None,
) -> bool:
    """The filters on values inside the JSON content, as Python: what :func:`terms` and the SQL of a page implement."""
    if readers is not None and not concerned(content) & readers:
        return False
    if ref is not None and ref not in (content.get("refs") or {}).values():
        return False
    if department is not None and department not in (content.get("endpoint"), content.get("origin")):
        return False
    if person is not None:
        # Named as the change's author, one of a write's per-field people, or who decided what it applies.
        named = [content.get("person"), *(content.get("people") or {}).values()]
        named += (content.get("decided_by") or {}).values()
        if person.casefold() not in {(each or "").casefold() for each in named}:
            return False
    if field is not None and content.get("field") != field:
        # A write or create names no single field: its new value is the mapping of the fields it wrote.
        new = content.get("new")
        return content.get("field") is None and isinstance(new, dict) and field in new
    return True


@dataclass(frozen=True)
class AuditFilter:
    """What ``syncd audit`` and the web page filter the log by; every given filter must match (None: any).

    ``department`` matches the endpoint written or the origin of the change; ``person`` matches the event's person,
    one of its per-field ``people`` or who decided what it applies, ignoring case (people are e-mail addresses);
    ``field`` also matches a write or create that wrote that field. ``since`` is inclusive and ``until`` exclusive,
    so consecutive windows never count an event twice; both must be timezone-aware. ``readers`` is what a person
    who may read only those departments sees: events concerning one of them (:func:`concerned`; an empty set
    matches nothing).
    """

    sync_id: str | None = None
    ref: str | None = None
    group: str | None = None
    department: str | None = None
    person: str | None = None
    field: str | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    readers: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if any(bound is not None and bound.tzinfo is None for bound in (self.since, self.until)):
            raise ValueError("since and until must be timezone-aware: a naive time would be read in the local zone")

    def matches(self, recorded: Recorded) -> bool:
        """Whether the event passes every filter, decided in Python: the meaning the SQL of :func:`page` has."""
        event = recorded.event
        columns = ((self.sync_id, event.sync_id), (self.group, event.group), (self.kind, event.kind))
        if any(wanted is not None and wanted != value for wanted, value in columns):
            return False
        if self.since is not None and event.at < self.since:
            return False
        if self.until is not None and event.at >= self.until:
            return False
        content = _content(event)
        return _matches(
            content,
            ref=self.ref,
            department=self.department,
            person=self.person,
            field=self.field,
            readers=self.readers,
        )

    def terms(self) -> list[tuple[str, str]]:
        """The index entries an event must have, most selective first (the first one drives the query)."""
        wanted = [
            (REF, self.ref),
            (PERSON, None if self.person is None else self.person.casefold()),
            (FIELD, self.field),
            (DEPARTMENT, self.department),
        ]
        if self.readers is not None and len(self.readers) == 1:
            wanted.append((READER, next(iter(self.readers))))
        return [(kind, _term_value(value)) for kind, value in wanted if value is not None]


_ANY = AuditFilter()


_NARROW = 100_000
"""A time window of fewer events than this is first read as the range of seqs it spans (one index-only scan)."""


def _window(connection: Connection, filters: AuditFilter) -> tuple[int, int] | None:
    """The first and last seq of the events in the time window, when it is narrow; None when there is no bound.

    Times need not grow with seq (an event carries its own time), so the range is read, not guessed: a page of a
    week long past then walks that week's seqs, not every event since.
    """
    if filters.since is None and filters.until is None:
        return None
    inside = []
    if filters.since is not None:
        inside.append(audit.c.at >= filters.since.astimezone(UTC))
    if filters.until is not None:
        inside.append(audit.c.at < filters.until.astimezone(UTC))
    sample = select(audit.c.seq).where(*inside).limit(_NARROW).subquery()
    count, first, last = connection.execute(select(func.count(), func.min(sample.c.seq), func.max(sample.c.seq))).one()
    if count >= _NARROW:
        return None
    return (first, last) if count else (1, 0)


def _select(
    connection: Connection, filters: AuditFilter, *, newest_first: bool, beyond: int | None, limit: int | None
) -> Select[Any]:
    """The events matching ``filters`` past seq ``beyond`` in the given order: every filter in SQL.

    The query walks one index in seq order and stops after ``limit`` matches, checking the other filters per row:
    an item's events (sync_id, seq) when an item is given, else the first value term's (kind, value, seq), else the
    audit table by its indexes on (kind|group, seq) and its primary key; within a narrow time window's seqs. A deep
    page costs what the first does.
    """
    conditions: list[ColumnElement[bool]] = []
    for column, wanted in (
        (audit.c.sync_id, filters.sync_id),
        (audit.c.group_name, filters.group),
        (audit.c.kind, filters.kind),
    ):
        if wanted is not None:
            conditions.append(column == wanted)
    if filters.since is not None:
        conditions.append(audit.c.at >= filters.since.astimezone(UTC))
    if filters.until is not None:
        conditions.append(audit.c.at < filters.until.astimezone(UTC))
    required = filters.terms()
    order: ColumnElement[int] = audit.c.seq
    statement = select(audit)
    if required and filters.sync_id is None:
        (kind, value), required = required[0], required[1:]
        driver = audit_terms.alias("driver")
        statement = select(audit).select_from(driver.join(audit, audit.c.seq == driver.c.seq))
        conditions += [driver.c.term_kind == kind, driver.c.value == value]
        order = driver.c.seq
    for number, (kind, value) in enumerate(required):
        term = audit_terms.alias(f"term{number}")
        found = select(term.c.seq).where(term.c.term_kind == kind, term.c.value == value, term.c.seq == audit.c.seq)
        conditions.append(found.exists())
    if filters.readers is not None and len(filters.readers) != 1:  # one reader's department is a term above
        readable = audit_terms.alias("readable")
        values = sorted(_term_value(each) for each in filters.readers)
        seen = select(readable.c.seq).where(
            readable.c.term_kind == READER, readable.c.value.in_(values), readable.c.seq == audit.c.seq
        )
        conditions.append(seen.exists() if values else false())
    # The bounds on both sides of the join: PostgreSQL does not carry them across a merge join's equality.
    sides = {audit.c.seq, order}
    if beyond is not None:
        conditions += [seq < beyond if newest_first else seq > beyond for seq in sides]
    window = _window(connection, filters)
    if window is not None:
        conditions += [bound for seq in sides for bound in (seq >= window[0], seq <= window[1])]
    statement = statement.where(*conditions).order_by(order.desc() if newest_first else order)
    return statement if limit is None else statement.limit(limit)


def page(
    store: Store, filters: AuditFilter = _ANY, *, before: int | None = None, limit: int = 50
) -> tuple[list[Recorded], int | None]:
    """One page of matching events, newest first, older than seq ``before`` (None: from the newest).

    Returns the events and the ``before`` of the next page (None when this is the last): keyset paging, so a page
    deep in a log of millions costs what the first does, and events appended meanwhile never shift a page.
    """
    if limit < 1:
        raise ValueError(f"a page holds at least one event, not {limit}")
    with store.reading() as connection:
        rows = connection.execute(_select(connection, filters, newest_first=True, beyond=before, limit=limit + 1)).all()
    more = len(rows) > limit
    found = [_recorded(row) for row in rows[:limit]]
    return found, found[-1].seq if more else None


def export(store: Store, filters: AuditFilter = _ANY, *, batch: int = 1_000) -> Generator[Recorded, None, None]:
    """Every matching event in chain order (oldest first), read in batches from one snapshot: never all at once.

    Close it (``.close()``, or let it be collected) when a download stops part-way: that ends the snapshot.
    """
    with store.reading() as connection:
        statement = _select(connection, filters, newest_first=False, beyond=None, limit=None)
        with connection.execution_options(yield_per=batch).execute(statement) as result:
            for row in result:
                yield _recorded(row)


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
    readers: frozenset[str] | None = None,
    limit: int | None = None,
) -> list[Recorded]:
    """Stored events matching every given filter (see :class:`AuditFilter`), oldest first.

    With ``limit``, only the newest that many (still oldest first). Kept for its callers; pages use :func:`page`.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must not be negative, not {limit}")
    filters = AuditFilter(sync_id, ref, group, department, person, field, kind, since, until, readers)
    if limit is None:
        return list(export(store, filters))
    if limit == 0:
        return []
    with store.reading() as connection:
        rows = connection.execute(_select(connection, filters, newest_first=True, beyond=None, limit=limit)).all()
    return [_recorded(row) for row in reversed(rows)]


def events(store: Store, *, sync_id: str | None = None, group: str | None = None) -> list[Recorded]:
    """Stored events, oldest first, optionally of one item or group."""
    return query(store, sync_id=sync_id, group=group)
