"""The state store: SQLite (WAL) by default, PostgreSQL for several replicas, one schema, Alembic migrations.

:class:`Store` opens the database from a SQLAlchemy URL and migrates it; :meth:`Store.transaction` yields a
:class:`Tx` whose methods read and write items, links, base values, cursors and the journal inside ONE database
transaction (committed when the block ends, rolled back on any exception), so a pass commits base values, link
versions and audit events together or not at all. The tables are in :mod:`syncd.store.schema`. Error texts
(refusals, failing endpoints, strikes) pass :func:`syncd.redact.redact` on their way in: a tool's text may echo a
credential, and a store dump or ``syncd status`` must not.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Engine,
    create_engine,
    delete,
    event,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import ConnectionPoolEntry

from syncd.errors import DuplicateLink as DuplicateLink
from syncd.errors import LeaseLost as LeaseLost
from syncd.errors import SchemaTooNew
from syncd.errors import StoreUnavailable as StoreUnavailable
from syncd.plan import Refusal
from syncd.redact import redact
from syncd.store import budgets as _budgets
from syncd.store import hooks as _hooks
from syncd.store import leases as _leases
from syncd.store import replicas as _replicas
from syncd.store import verdicts as _verdicts
from syncd.store.hooks import HookSecret as HookSecret
from syncd.store.leases import Lease
from syncd.store.replicas import Replica as Replica
from syncd.store.schema import (
    base,
    behind,
    comments,
    conflicts,
    cursors,
    echoes,
    endpoint_state,
    items,
    journal,
    links,
    quarantine,
    refused,
)
from syncd.store.times import aware
from syncd.store.verdicts import VerdictRow as VerdictRow


@dataclass(frozen=True)
class Link:
    """Where an item lives at one endpoint, and the version syncd last saw or wrote there."""

    sync_id: str
    endpoint: str
    ref: str
    version: str
    synced_at: datetime | None = None
    """The tool's modification time of the record the item's base was last agreed from (None: not known).

    A person's change there after this time is news even when it put back the base's value (moved away and back).
    """


def _refusal(row: Any) -> Refusal:  # noqa: ANN401 - a SQLAlchemy row
    return Refusal(row.field, row.value, row.held, row.message, aware(row.at))


CHUNK = 500
"""Values per ``IN (...)`` of a batch read: well under every database's limit on bound parameters."""


def _chunks(values: Iterable[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(values))
    for start in range(0, len(unique), CHUNK):
        yield unique[start : start + CHUNK]


def _base_object(dialect: str) -> ColumnElement[Any]:
    """An item's base rows as one JSON object, field -> value, aggregated by the database (grouped by item).

    SQLite: the stored JSON texts joined verbatim (not re-encoded by ``json()``), so Python decodes exactly the text
    it would decode row by row; a value stored as SQL NULL reads as ``null``, as the column's own decoding reads it.
    PostgreSQL: ``json_object_agg`` over the ``json`` column, which the driver decodes as it decodes the column.
    """
    if dialect == "sqlite":
        pairs = func.json_quote(base.c.field).concat(":").concat(func.coalesce(base.c.value, literal_column("'null'")))
        joined = literal("{").concat(func.group_concat(pairs, ",")).concat("}")
        return type_coerce(joined, JSON)
    return type_coerce(func.json_object_agg(base.c.field, base.c.value), JSON)


_LINK = (links.c.sync_id, links.c.endpoint, links.c.ref, links.c.version, links.c.synced_at)
"""A link's columns in :func:`_link`'s order (select these, never ``links``, whose order a migration may change)."""


def _link(row: Any) -> Link:  # noqa: ANN401 - a SQLAlchemy row of _LINK
    """The link of a row of :data:`_LINK`, unpacked by position: a pass reads thousands, by name costs more."""
    sync_id, endpoint, ref, version, synced_at = row
    return Link(sync_id, endpoint, ref, version, aware(synced_at) if synced_at else None)


@dataclass(frozen=True)
class JournalEntry:
    """A plan recorded before it was applied."""

    plan_id: str
    sync_id: str
    group: str
    steps: Any
    created_at: datetime


@dataclass(frozen=True)
class Quarantined:
    """An item that failed: how often in a row (strikes), the last error, and whether it is held out of passes."""

    sync_id: str
    group: str
    strikes: int
    error: str
    held: bool
    first_at: datetime
    last_at: datetime


@dataclass(frozen=True)
class HeldConflict:
    """A field the ``manual`` rule held: each endpoint's value, and the department a person chose, once chosen."""

    id: str
    sync_id: str
    group: str
    field: str
    base: Any
    values: dict[str, Any]
    state: str
    """``open`` (waiting for a person), ``decided`` (the next pass applies ``take``), ``closed``."""
    take: str | None
    resolved_by: str | None
    opened_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CommentRow:
    """A comment at an endpoint: an original (origin is itself; body kept) or a copy of the origin's comment."""

    endpoint: str
    comment_id: str
    sync_id: str
    origin_endpoint: str
    origin_id: str
    author: str | None = None
    body: str | None = None

    @property
    def original(self) -> bool:
        """Whether a person wrote it here (rather than syncd copying it here)."""
        return (self.origin_endpoint, self.origin_id) == (self.endpoint, self.comment_id)


def _sqlite_pragmas(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:  # noqa: ANN401 - DB-API object
    """WAL (readers never block the writer), enforced foreign keys, and waiting instead of failing when busy."""
    dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event below opens every transaction
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")  # first: switching a fresh file to WAL waits for another opener
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin_immediate(connection: Connection) -> None:
    """Take SQLite's write lock when a transaction starts, not at its first write.

    Otherwise two transactions can both read the audit chain's head and then both append after it; SQLite ignores
    ``SELECT ... FOR UPDATE``, so this is how its writers queue up (PostgreSQL uses the row lock instead). A
    :meth:`Store.reading` transaction only reads: it begins deferred, so it neither waits for nor holds up a writer.
    """
    connection.exec_driver_sql("BEGIN" if connection.get_execution_options().get(_READ_ONLY) else "BEGIN IMMEDIATE")


_READ_ONLY = "syncd_read_only"
"""The execution option that marks a :meth:`Store.reading` connection."""


MIGRATION_LOCK = 0x73796E6364
"""The PostgreSQL advisory lock key migrations run under ("syncd" in ASCII): one migrating process at a time."""


class Store:
    """One state database."""

    def __init__(self, url: str, *, audit_key: bytes | None = None, **engine_options: Any) -> None:  # noqa: ANN401 - passed to create_engine
        self.url = url
        self.audit_key = audit_key
        """The audit chain's HMAC key (:mod:`syncd.audit`), from the configuration, never from this database."""
        self.engine: Engine = create_engine(url, **engine_options)
        self._channel_scope: str | None = None
        database = self.engine.url.database
        if self.engine.dialect.name == "sqlite" and database and database != ":memory:":
            try:
                Path(database).parent.mkdir(parents=True, exist_ok=True)  # `sqlite:///var/syncd.db` on a fresh clone
            except OSError as exc:
                raise StoreUnavailable(
                    f"cannot create the store's directory {Path(database).parent}: {exc.strerror}"
                ) from exc
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin_immediate)

    lease: Lease | None = None
    """The group lease every transaction of this view checks first (see :meth:`fenced`); None: not fenced."""

    def migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic ``upgrade head``), from the installed package.

        One process at a time: on PostgreSQL under an advisory lock held until the migration commits (so two
        replicas starting on an empty database do not both create ``alembic_version``); on SQLite the migration's
        transaction begins with ``BEGIN IMMEDIATE``, which already excludes every other writer. A schema newer
        than this package's head is refused (SchemaTooNew): an older syncd must not write a newer store.
        """
        config = AlembicConfig()
        config.set_main_option("script_location", str(resources.files("syncd.store").joinpath("migrations")))
        script = ScriptDirectory.from_config(config)
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            found = MigrationContext.configure(connection).get_current_revision()
            known = {revision.revision for revision in script.walk_revisions()}
            if found is not None and found not in known:
                raise SchemaTooNew(found, script.get_current_head() or "none")
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """One database transaction: committed when the block ends, rolled back if it raises.

        On a :meth:`fenced` view the lease is checked first, in the same transaction: LeaseLost, and nothing of
        the block is committed, once another process holds the group.
        """
        with self.engine.begin() as connection:
            tx = Tx(connection, audit_key=self.audit_key)
            if self.lease is not None:
                tx.fence(self.lease)
            yield tx

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """One read-only snapshot: for listings and exports that may take long (the audit log's pages, its export).

        On SQLite it begins deferred (WAL readers never block the writer, nor wait for it); it is never fenced.
        """
        with self.engine.connect() as connection:
            connection.execution_options(**{_READ_ONLY: True})
            with connection.begin():
                yield connection

    def fenced(self, lease: Lease) -> Store:
        """A view of this store (the same connection pool) whose every transaction checks ``lease`` first.

        What a pass hands its stages instead of the store, so no stage can commit for a group it lost. Closing
        the view closes the store.
        """
        view = copy.copy(self)
        view.lease = lease
        return view

    # ----- group leases (each call its own short transaction; see syncd.store.leases) --------------------------

    def acquire(self, group: str, holder: str, ttl_s: float) -> Lease | None:
        """Take a free or expired group lease (a new token) or renew ``holder``'s own; None if another holds it."""
        with self.engine.begin() as connection:
            return _leases.acquire(connection, group, holder, ttl_s)

    def renew(self, lease: Lease) -> bool:
        """Extend a lease by its TTL if still held with its token; False once it is lost."""
        with self.engine.begin() as connection:
            return _leases.renew(connection, lease)

    def release(self, lease: Lease) -> None:
        """Free a lease (if it is still this one), so another process need not wait for it to expire."""
        with self.engine.begin() as connection:
            _leases.release(connection, lease)

    def holders(self) -> tuple[datetime, list[Lease]]:
        """The lease clock's time now, and every group's lease row (live where ``expires_at`` is later)."""
        with self.engine.begin() as connection:
            return _leases.now(connection), _leases.holders(connection)

    # ----- the replica registry and hints between replicas (see syncd.store.replicas) --------------------------

    def heartbeat(self, replica_id: str, host: str, pid: int, ttl_s: float) -> tuple[datetime, list[Replica]]:
        """Register or renew this replica for ``ttl_s``; the lease clock's time and every replica row after."""
        with self.engine.begin() as connection:
            _replicas.heartbeat(connection, replica_id, host, pid, ttl_s)
            return _leases.now(connection), _replicas.registry(connection)

    def leave(self, replica_id: str) -> None:
        """Mark a replica gone now (its clean shutdown), so the others need not wait for its heartbeat to lapse."""
        with self.engine.begin() as connection:
            _replicas.leave(connection, replica_id)

    def replicas(self) -> tuple[datetime, list[Replica]]:
        """The lease clock's time now, and every replica row (live where ``expires_at`` is later)."""
        with self.engine.begin() as connection:
            return _leases.now(connection), _replicas.registry(connection)

    @property
    def shared(self) -> bool:
        """Whether replicas on several hosts can share this store (PostgreSQL; SQLite is one host's file)."""
        return self.engine.dialect.name == "postgresql"

    def channel(self, name: str) -> str:
        """``name`` scoped to this store's schema, so stores in several schemas of one database do not hear each other.

        Notifications reach every session of the database; the replicas of one deployment share a schema.
        """
        if self._channel_scope is None:
            with self.engine.begin() as connection:
                schema = str(connection.execute(text("SELECT current_schema()")).scalar_one())
            self._channel_scope = hashlib.sha256(schema.encode()).hexdigest()[:12]
        return f"{name}_{self._channel_scope}"

    def notify(self, channel: str, payload: str) -> None:
        """Send a PostgreSQL notification to every session listening on ``channel`` (delivered at commit)."""
        with self.engine.begin() as connection:
            connection.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload})

    def listen(self, channel: str, received: Callable[[str], None], stop: threading.Event) -> None:
        """Hand each notification on ``channel`` to ``received`` until ``stop`` is set (PostgreSQL; blocks).

        On a connection of its own, outside the pool (a session that LISTENs must stay open and idle); checked
        for ``stop`` each second. Raises whatever the driver raises when the connection fails (the caller retries).
        """
        import psycopg  # noqa: PLC0415 - only a PostgreSQL store listens
        from psycopg import sql  # noqa: PLC0415 - likewise

        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            while not stop.is_set():
                for note in connection.notifies(timeout=1.0):
                    received(note.payload)
                    if stop.is_set():
                        return

    # ----- shared rate budgets and webhook secrets (see syncd.store.budgets, syncd.store.hooks) -----------------

    def take_budget(self, key: str, capacity: float, rate: float, cost: int) -> float:
        """Take ``cost`` of a credential's bucket shared by the replicas; the seconds to wait first (PostgreSQL).

        Each statement commits on its own (autocommit): the bucket's row is locked only while the database runs the
        statement. In a transaction, a replica paused between the statement and its commit (SIGSTOP, a frozen VM)
        would hold the row, and every replica's every request to that tool would wait for as long as it stayed
        paused, opening the window between each write's version check and the write itself.
        """
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            return _budgets.take(connection, key, capacity=capacity, rate=rate, cost=cost)

    def begin_verdict(self, by: str) -> int | None:
        """Record a chain verification begun by ``by``; its id, or None while another one runs."""
        with self.engine.begin() as connection:
            return _verdicts.begin(connection, by)

    def finish_verdict(self, verdict_id: int, *, outcome: str | None, error: str | None) -> None:
        """Record how a chain verification ended (its outcome as JSON, or the error's name)."""
        with self.engine.begin() as connection:
            _verdicts.finish(connection, verdict_id, outcome=outcome, error=error)

    def last_verdict(self) -> VerdictRow | None:
        """The chain verification begun last, whichever replica ran it."""
        with self.engine.begin() as connection:
            return _verdicts.latest(connection)

    def hook_secret(self, department: str) -> HookSecret | None:
        """The department's webhook secret agreed in a handshake, if any (registered for redaction as read)."""
        with self.engine.begin() as connection:
            return _hooks.agreed(connection, department)

    def claim_handshake(self, department: str, holder: str) -> bool:
        """Begin registering the department's webhook as ``holder``; False while another registration runs."""
        with self.engine.begin() as connection:
            return _hooks.claim(connection, department, holder)

    def handshake_pending(self, department: str) -> bool:
        """Whether a replica is registering the department's webhook now (its handshake may reach any replica)."""
        with self.engine.begin() as connection:
            return _hooks.pending(connection, department)

    def offer_hook_secret(self, department: str, secret: str) -> None:
        """Keep the secret of a handshake answered here for the replica registering the webhook."""
        with self.engine.begin() as connection:
            _hooks.offer(connection, department, secret)

    def offered_hook_secret(self, department: str) -> str | None:
        """The secret a handshake answered by any replica offered during the current registration."""
        with self.engine.begin() as connection:
            return _hooks.offered(connection, department)

    def agree_hook_secret(self, hook: HookSecret) -> None:
        """Store a webhook's agreed secret and end its registration."""
        with self.engine.begin() as connection:
            _hooks.agree(connection, hook)

    def finish_handshake(self, department: str, holder: str) -> None:
        """End ``holder``'s registration of the department without storing a secret."""
        with self.engine.begin() as connection:
            _hooks.finish(connection, department, holder)

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    # ----- outside any transaction (the daemon's health checks and metrics) ------------------------------

    def ping(self) -> None:
        """Ask the database for ``SELECT 1``; raises whatever the driver raises when it does not answer."""
        self._scalar("SELECT 1")

    def held_count(self) -> int:
        """How many items quarantine holds; 0 while the database has no quarantine table (not migrated yet)."""
        if self.engine.dialect.name == "sqlite":
            exists = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'quarantine'"
        else:
            exists = "SELECT count(*) FROM information_schema.tables WHERE table_name = 'quarantine'"
        if not self._scalar(exists):
            return 0
        return int(self._scalar("SELECT count(*) FROM quarantine WHERE held") or 0)

    def unsent_notifications(self) -> int:
        """How many outbox rows wait to be delivered (:mod:`syncd.store.notifications`), failing ones included."""
        return int(self._scalar("SELECT count(*) FROM notifications WHERE sent_at IS NULL") or 0)

    def audit_head(self) -> tuple[int, str] | None:
        """The audit chain's last seq and hash (the checkpoint to export); None while there is no head row."""
        row = self._row("SELECT seq, hash FROM audit_head WHERE id = 1")
        return None if row is None else (int(row[0]), str(row[1]))

    def _scalar(self, sql: str) -> Any:  # noqa: ANN401 - whatever the database answers
        """One value through the DB-API connection (see :meth:`_row`)."""
        row = self._row(sql)
        return row[0] if row else None

    def _row(self, sql: str) -> Any:  # noqa: ANN401 - whatever the database answers
        """One row through the DB-API connection: no SQLAlchemy transaction, so no SQLite write lock is taken.

        A scrape or a readiness probe must neither wait for a pass's write lock nor hold one up.
        """
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(sql)
                row = cursor.fetchone()
            finally:
                cursor.close()
        finally:
            connection.close()
        return row


class Tx:
    """Reads and writes inside one transaction (see :meth:`Store.transaction`)."""

    def __init__(self, connection: Connection, *, audit_key: bytes | None = None) -> None:
        self.connection = connection
        self.audit_key = audit_key
        """The key :func:`syncd.audit.append` signs each event with (None: the chain is unkeyed)."""

    def fence(self, lease: Lease) -> None:
        """Raise LeaseLost unless ``lease`` still holds its group (same holder and token, not expired)."""
        _leases.fence(self.connection, lease)

    # ----- items and links ------------------------------------------------------------------------------

    def new_item(self, sync_id: str, group: str) -> None:
        """Register an item of a group."""
        self.connection.execute(insert(items).values(sync_id=sync_id, group_name=group, created_at=datetime.now(UTC)))

    def item_group(self, sync_id: str) -> str | None:
        """The group of an item, or None if the item is unknown."""
        return self.connection.execute(select(items.c.group_name).where(items.c.sync_id == sync_id)).scalar()

    def link(self, sync_id: str, endpoint: str, ref: str, version: str) -> None:
        """Record where the item lives at an endpoint; DuplicateLink if the endpoint or the ref is taken."""
        try:
            with self.connection.begin_nested():
                self.connection.execute(
                    insert(links).values(sync_id=sync_id, endpoint=endpoint, ref=ref, version=version)
                )
        except IntegrityError as exc:
            raise DuplicateLink(sync_id, endpoint, ref) from exc

    def set_version(self, sync_id: str, endpoint: str, version: str) -> None:
        """Remember the version syncd last saw or wrote (so its own write is not taken for an outside edit)."""
        self.connection.execute(
            update(links).where(links.c.sync_id == sync_id, links.c.endpoint == endpoint).values(version=version)
        )

    def set_synced(self, sync_id: str, endpoint: str, at: datetime) -> None:
        """Remember the tool's time of the record a committed base was agreed from (see :attr:`Link.synced_at`)."""
        self.connection.execute(
            update(links)
            .where(links.c.sync_id == sync_id, links.c.endpoint == endpoint)
            .values(synced_at=at.astimezone(UTC))  # SQLite keeps no offset: UTC, made aware again on reading
        )

    def unlink(self, sync_id: str, endpoint: str) -> None:
        """Forget the item's link at an endpoint (it was deleted there, or left the scope)."""
        self.connection.execute(delete(links).where(links.c.sync_id == sync_id, links.c.endpoint == endpoint))
        self.connection.execute(delete(echoes).where(echoes.c.sync_id == sync_id, echoes.c.endpoint == endpoint))
        self.connection.execute(delete(refused).where(refused.c.sync_id == sync_id, refused.c.endpoint == endpoint))

    def find_link(self, endpoint: str, ref: str) -> Link | None:
        """The link of a ref at an endpoint."""
        row = self.connection.execute(select(*_LINK).where(links.c.endpoint == endpoint, links.c.ref == ref)).first()
        return _link(row) if row else None

    def links(self, sync_id: str) -> dict[str, Link]:
        """Every link of an item, by endpoint."""
        rows = self.connection.execute(select(*_LINK).where(links.c.sync_id == sync_id))
        return {row.endpoint: _link(row) for row in rows}

    def find_links(self, endpoint: str, refs: Iterable[str]) -> dict[str, Link]:
        """The links of many refs at an endpoint (ref -> link; an unlinked ref is absent), a few queries in all."""
        found: dict[str, Link] = {}
        for chunk in _chunks(refs):
            query = select(*_LINK).where(links.c.endpoint == endpoint, links.c.ref.in_(chunk))
            for row in self.connection.execute(query).all():
                link = _link(row)
                found[link.ref] = link
        return found

    def links_of(self, sync_ids: Iterable[str]) -> dict[str, dict[str, Link]]:
        """Every link of many items (item -> endpoint -> link; an item without links maps to nothing)."""
        found: dict[str, dict[str, Link]] = {}
        for chunk in _chunks(sync_ids):
            for row in self.connection.execute(select(*_LINK).where(links.c.sync_id.in_(chunk))).all():
                link = _link(row)
                found.setdefault(link.sync_id, {})[link.endpoint] = link
        return found

    def each_endpoint_link(self, endpoint: str) -> Iterator[Link]:
        """Every link at an endpoint, streamed from the database in slices (a full scan's deletion check)."""
        query = select(*_LINK).where(links.c.endpoint == endpoint).execution_options(yield_per=CHUNK)
        for row in self.connection.execute(query):
            yield _link(row)

    def count_endpoint_links(self, endpoint: str) -> int:
        """How many links an endpoint has (a full scan that found them all listed streams none of them)."""
        query = select(func.count()).select_from(links).where(links.c.endpoint == endpoint)
        return int(self.connection.execute(query).scalar_one())

    def endpoint_links(self, endpoint: str) -> list[Link]:
        """Every link at an endpoint (for the mass-delete guard and full scans)."""
        rows = self.connection.execute(select(*_LINK).where(links.c.endpoint == endpoint).order_by(links.c.ref))
        return [_link(row) for row in rows]

    # ----- base values ------------------------------------------------------------------------------------

    def base(self, sync_id: str) -> dict[str, Any] | None:
        """The canonical values the endpoints last agreed on, or None for an item never synced."""
        rows = self.connection.execute(select(base.c.field, base.c.value).where(base.c.sync_id == sync_id)).all()
        return {row.field: row.value for row in rows} if rows else None

    def bases(self, sync_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The base values of many items (item -> values; an item never synced is absent).

        Each item's fields arrive as one JSON object built by the database: a pass reads every touched item's base,
        and one value to decode per item instead of one per field is most of that read's cost.
        """
        values = _base_object(self.connection.dialect.name)
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(sync_ids):
            query = select(base.c.sync_id, values).where(base.c.sync_id.in_(chunk)).group_by(base.c.sync_id)
            found.update(self.connection.execute(query).all())
        return found

    def per_endpoint(self, table: str, sync_ids: Iterable[str]) -> dict[str, dict[str, dict[str, Any]]]:
        """Item -> endpoint -> field -> value of many items, from ``echoes``, ``behind`` or ``refused`` (refusals).

        The batch form of :meth:`echoes`, :meth:`behind` and :meth:`refusals`: a pass reads them for every item it
        plans in a few queries instead of three per item.
        """
        source = {"echoes": echoes, "behind": behind, "refused": refused}[table]
        found: dict[str, dict[str, dict[str, Any]]] = {}
        for chunk in _chunks(sync_ids):
            for row in self.connection.execute(select(source).where(source.c.sync_id.in_(chunk))):
                value = _refusal(row) if source is refused else row.value
                found.setdefault(row.sync_id, {}).setdefault(row.endpoint, {})[row.field] = value
        return found

    def set_base(self, sync_id: str, values: Mapping[str, Any]) -> None:
        """Replace an item's base values."""
        self.connection.execute(delete(base).where(base.c.sync_id == sync_id))
        if values:
            self.connection.execute(
                insert(base), [{"sync_id": sync_id, "field": name, "value": value} for name, value in values.items()]
            )

    def echoes(self, sync_id: str) -> dict[str, dict[str, Any]]:
        """Endpoint -> field -> value syncd wrote there that the base does not hold yet (see :meth:`add_echoes`)."""
        rows = self.connection.execute(select(echoes).where(echoes.c.sync_id == sync_id)).all()
        found: dict[str, dict[str, Any]] = {}
        for row in rows:
            found.setdefault(row.endpoint, {})[row.field] = row.value
        return found

    def add_echoes(self, sync_id: str, endpoint: str, values: Mapping[str, Any]) -> None:
        """Remember values syncd wrote at an endpoint while the item's base stays as it was (a plan that failed).

        Seen there again, they are syncd's own write, not a change made at that endpoint: otherwise the next pass
        would weigh syncd's copy of one person's edit against another person's newer edit, and by ``latest`` the
        copy (written later) would win.
        """
        for name, value in values.items():
            where = (echoes.c.sync_id == sync_id, echoes.c.endpoint == endpoint, echoes.c.field == name)
            self.connection.execute(delete(echoes).where(*where))
            self.connection.execute(insert(echoes).values(sync_id=sync_id, endpoint=endpoint, field=name, value=value))

    def drop_echoes(self, sync_id: str, endpoint: str, fields: Iterable[str]) -> None:
        """Forget some fields' echoes at one endpoint: what the mirror holds there is no longer known to be syncd's."""
        names = list(fields)
        if names:
            where = (echoes.c.sync_id == sync_id, echoes.c.endpoint == endpoint, echoes.c.field.in_(names))
            self.connection.execute(delete(echoes).where(*where))

    def clear_echoes(self, sync_id: str) -> None:
        """Forget an item's echoes: its base now holds what every endpoint was given."""
        self.connection.execute(delete(echoes).where(echoes.c.sync_id == sync_id))

    def behind(self, sync_id: str) -> dict[str, dict[str, Any]]:
        """Endpoint -> field -> the value its mirror holds from an older base (its tool could not be read since)."""
        rows = self.connection.execute(select(behind).where(behind.c.sync_id == sync_id)).all()
        found: dict[str, dict[str, Any]] = {}
        for row in rows:
            found.setdefault(row.endpoint, {})[row.field] = row.value
        return found

    def set_behind(self, sync_id: str, held: Mapping[str, Mapping[str, Any]]) -> None:
        """Replace an item's record of what mirrors it could not update still hold (endpoint -> field -> value)."""
        self.connection.execute(delete(behind).where(behind.c.sync_id == sync_id))
        for endpoint, values in held.items():
            for name, value in values.items():
                self.connection.execute(
                    insert(behind).values(sync_id=sync_id, endpoint=endpoint, field=name, value=value)
                )

    # ----- refused values ------------------------------------------------------------------------------

    def refusals(self, sync_id: str) -> dict[str, dict[str, Refusal]]:
        """Endpoint -> field -> the value its tool refused for this item's mirror, and what the mirror holds."""
        rows = self.connection.execute(select(refused).where(refused.c.sync_id == sync_id)).all()
        found: dict[str, dict[str, Refusal]] = {}
        for row in rows:
            found.setdefault(row.endpoint, {})[row.field] = _refusal(row)
        return found

    def refuse(self, sync_id: str, endpoint: str, refusal: Refusal) -> None:
        """Remember that a tool refused a value for one mirror (replacing an older refusal of the same field)."""
        where = (refused.c.sync_id == sync_id, refused.c.endpoint == endpoint, refused.c.field == refusal.field)
        self.connection.execute(delete(refused).where(*where))
        self.connection.execute(
            insert(refused).values(
                sync_id=sync_id,
                endpoint=endpoint,
                field=refusal.field,
                value=refusal.value,
                held=refusal.held,
                message=redact(refusal.message),
                at=refusal.at.astimezone(UTC),
            )
        )

    def forget_refusal(self, sync_id: str, endpoint: str, name: str) -> None:
        """The mirror took this field's value after all (it changed, or the tool accepts it now)."""
        where = (refused.c.sync_id == sync_id, refused.c.endpoint == endpoint, refused.c.field == name)
        self.connection.execute(delete(refused).where(*where))

    def refused_in(self, group: str) -> list[tuple[str, str, Refusal]]:
        """Every refusal of a group's items: (sync_id, endpoint, refusal), oldest first."""
        rows = self.connection.execute(
            select(refused)
            .join(items, items.c.sync_id == refused.c.sync_id)
            .where(items.c.group_name == group)
            .order_by(refused.c.at, refused.c.sync_id, refused.c.endpoint, refused.c.field)
        ).all()
        return [(row.sync_id, row.endpoint, _refusal(row)) for row in rows]

    # ----- endpoint state -------------------------------------------------------------------------------

    def endpoint_failing(self, endpoint: str, error: str) -> None:
        """Record that an endpoint's tool could not be read (keeping since when it fails)."""
        now, error = datetime.now(UTC), redact(error)
        changed = self.connection.execute(
            update(endpoint_state).where(endpoint_state.c.endpoint == endpoint).values(checked_at=now, error=error)
        ).rowcount
        if not changed:
            self.connection.execute(
                insert(endpoint_state).values(endpoint=endpoint, failing_since=now, checked_at=now, error=error)
            )

    def endpoint_answers(self, endpoint: str) -> None:
        """Record that an endpoint's tool was read again."""
        self.connection.execute(delete(endpoint_state).where(endpoint_state.c.endpoint == endpoint))

    def failing_endpoints(self) -> dict[str, tuple[datetime, str]]:
        """Endpoint -> (failing since, what its tool said) for every endpoint that could not be read last time."""
        rows = self.connection.execute(select(endpoint_state)).all()
        return {row.endpoint: (aware(row.failing_since), row.error) for row in rows}

    # ----- cursors ----------------------------------------------------------------------------------------

    def cursor(self, endpoint: str) -> dict[str, Any] | None:
        """Where an endpoint's change feed was read up to (None: never read)."""
        value = self.connection.execute(select(cursors.c.cursor).where(cursors.c.endpoint == endpoint)).scalar()
        return dict(value) if value is not None else None

    def set_cursor(self, endpoint: str, cursor: Mapping[str, Any]) -> None:
        """Advance an endpoint's cursor (call only after the changes before it committed)."""
        now = datetime.now(UTC)
        changed = self.connection.execute(
            update(cursors).where(cursors.c.endpoint == endpoint).values(cursor=dict(cursor), updated_at=now)
        ).rowcount
        if not changed:
            self.connection.execute(insert(cursors).values(endpoint=endpoint, cursor=dict(cursor), updated_at=now))

    # ----- journal ----------------------------------------------------------------------------------------

    def journal_add(self, plan_id: str, sync_id: str, group: str, steps: Any) -> None:  # noqa: ANN401 - JSON steps
        """Record a plan before applying it."""
        self.connection.execute(
            insert(journal).values(
                plan_id=plan_id, sync_id=sync_id, group_name=group, steps=steps, created_at=datetime.now(UTC)
            )
        )

    def journal_pending(self) -> list[JournalEntry]:
        """Plans recorded but not finished (a crash interrupted them), oldest first."""
        rows = self.connection.execute(select(journal).order_by(journal.c.created_at, journal.c.plan_id))
        return [JournalEntry(r.plan_id, r.sync_id, r.group_name, r.steps, r.created_at) for r in rows]

    def journal_step(self, plan_id: str, index: int, **progress: Any) -> None:  # noqa: ANN401 - JSON values
        """Note how far one step of a recorded plan got (``started``, ``done_version``), for recovery to read.

        The entry is read for update: an item's writes to different tools note their steps at once, and on
        PostgreSQL two notes read before either wrote would each write back the steps without the other's note.
        (SQLite's ``BEGIN IMMEDIATE`` already runs one writer at a time.)
        """
        query = select(journal.c.steps).where(journal.c.plan_id == plan_id).with_for_update()
        row = self.connection.execute(query).first()
        if row is None:
            return
        steps = [dict(step) for step in row.steps]
        steps[index] = {**steps[index], **progress}
        self.connection.execute(update(journal).where(journal.c.plan_id == plan_id).values(steps=steps))

    def journal_done(self, plan_id: str) -> None:
        """Forget a plan once its effects are committed."""
        self.connection.execute(delete(journal).where(journal.c.plan_id == plan_id))

    def journal_for(self, group: str) -> list[JournalEntry]:
        """The unfinished plans of one group, oldest first."""
        return [entry for entry in self.journal_pending() if entry.group == group]

    # ----- quarantine -------------------------------------------------------------------------------------

    def strike(self, sync_id: str, group: str, error: str, *, counts: bool, limit: int) -> Quarantined:
        """Record a failure of an item; after ``limit`` counting failures in a row it is held out of passes.

        A retriable failure (the tool was down or throttling) is remembered, so the item is retried, but does not
        count towards holding it: an outage must not quarantine everything it touched.
        """
        now, error = datetime.now(UTC), redact(error)
        row = self.connection.execute(select(quarantine).where(quarantine.c.sync_id == sync_id)).first()
        strikes = (row.strikes if row else 0) + (1 if counts else 0)
        values = {"strikes": strikes, "error": error, "held": strikes >= limit, "last_at": now, "group_name": group}
        if row is None:
            self.connection.execute(insert(quarantine).values(sync_id=sync_id, first_at=now, **values))
        else:
            self.connection.execute(update(quarantine).where(quarantine.c.sync_id == sync_id).values(**values))
        found = self.quarantine_entry(sync_id)
        assert found is not None
        return found

    def quarantine_entry(self, sync_id: str) -> Quarantined | None:
        """An item's failure record, if it has one."""
        row = self.connection.execute(select(quarantine).where(quarantine.c.sync_id == sync_id)).first()
        return _quarantined(row) if row else None

    def quarantined(self, group: str | None = None, *, held: bool | None = None) -> list[Quarantined]:
        """Failure records (of a group; only held or only retrying ones), oldest failure first."""
        query = select(quarantine).order_by(quarantine.c.first_at, quarantine.c.sync_id)
        if group is not None:
            query = query.where(quarantine.c.group_name == group)
        if held is not None:
            query = query.where(quarantine.c.held == held)
        return [_quarantined(row) for row in self.connection.execute(query)]

    def release(self, sync_id: str) -> bool:
        """Let a held item be tried again on the next pass (strikes reset); False if it was not quarantined."""
        return bool(
            self.connection.execute(
                update(quarantine).where(quarantine.c.sync_id == sync_id).values(held=False, strikes=0)
            ).rowcount
        )

    def clear_failure(self, sync_id: str) -> None:
        """Forget an item's failures once it synced."""
        self.connection.execute(delete(quarantine).where(quarantine.c.sync_id == sync_id))

    # ----- conflicts held for a person -----------------------------------------------------------------------

    def hold_conflict(
        self,
        conflict_id: str,
        *,
        sync_id: str,
        group: str,
        field: str,
        base_value: Any,  # noqa: ANN401 - a canonical (JSON-like) value
        values: Mapping[str, Any],
    ) -> tuple[HeldConflict, bool]:
        """Queue a held conflict, or refresh the open one of the same field; True when it is new or changed."""
        now = datetime.now(UTC)
        current = self.connection.execute(
            select(conflicts).where(
                conflicts.c.sync_id == sync_id, conflicts.c.field == field, conflicts.c.state != "closed"
            )
        ).first()
        if current is None:
            self.connection.execute(
                insert(conflicts).values(
                    id=conflict_id,
                    sync_id=sync_id,
                    group_name=group,
                    field=field,
                    base=base_value,
                    values=dict(values),
                    state="open",
                    opened_at=now,
                    updated_at=now,
                )
            )
            changed = True
        else:
            conflict_id, changed = current.id, dict(current.values) != dict(values)
            if changed:
                self.connection.execute(
                    update(conflicts).where(conflicts.c.id == current.id).values(values=dict(values), updated_at=now)
                )
        found = self.conflict(conflict_id)
        assert found is not None
        return found, changed

    def conflict(self, conflict_id: str) -> HeldConflict | None:
        """One queued conflict by id (a unique prefix of it is enough, as people type them)."""
        rows = self.connection.execute(
            select(conflicts).where(conflicts.c.id.startswith(conflict_id, autoescape=True))
        ).all()
        return _held(rows[0]) if len(rows) == 1 else None

    def conflicts(
        self, *, group: str | None = None, sync_id: str | None = None, states: tuple[str, ...] = ("open", "decided")
    ) -> list[HeldConflict]:
        """Queued conflicts, oldest first (by default the ones not closed yet)."""
        query = select(conflicts).where(conflicts.c.state.in_(states)).order_by(conflicts.c.opened_at, conflicts.c.id)
        if group is not None:
            query = query.where(conflicts.c.group_name == group)
        if sync_id is not None:
            query = query.where(conflicts.c.sync_id == sync_id)
        return [_held(row) for row in self.connection.execute(query)]

    def decide_conflict(self, conflict_id: str, take: str, person: str | None) -> None:
        """A person chose which department's value the field takes; the next pass of the group applies it."""
        self.connection.execute(
            update(conflicts)
            .where(conflicts.c.id == conflict_id)
            .values(state="decided", take=take, resolved_by=person, updated_at=datetime.now(UTC))
        )

    def close_conflict(self, conflict_id: str) -> None:
        """The field agrees everywhere again (a decision applied, or people settled it themselves)."""
        self.connection.execute(
            update(conflicts).where(conflicts.c.id == conflict_id).values(state="closed", updated_at=datetime.now(UTC))
        )

    # ----- comments -----------------------------------------------------------------------------------------

    def comment_rows(self, sync_id: str) -> list[CommentRow]:
        """Every comment syncd knows on an item, at every endpoint (keys are endpoint keys, ``group/member``)."""
        rows = self.connection.execute(
            select(comments).where(comments.c.sync_id == sync_id).order_by(comments.c.created_at, comments.c.comment_id)
        )
        return [
            CommentRow(r.endpoint, r.comment_id, r.sync_id, r.origin_endpoint, r.origin_id, r.author, r.body)
            for r in rows
        ]

    def add_comment_row(self, row: CommentRow) -> None:
        """Remember an original comment, or the copy of one at an endpoint."""
        self.connection.execute(
            insert(comments).values(
                endpoint=row.endpoint,
                comment_id=row.comment_id,
                sync_id=row.sync_id,
                origin_endpoint=row.origin_endpoint,
                origin_id=row.origin_id,
                author=row.author,
                body=row.body,
                created_at=datetime.now(UTC),
            )
        )


def _quarantined(row: Any) -> Quarantined:  # noqa: ANN401 - a SQLAlchemy row
    return Quarantined(
        row.sync_id, row.group_name, row.strikes, row.error, bool(row.held), aware(row.first_at), aware(row.last_at)
    )


def _held(row: Any) -> HeldConflict:  # noqa: ANN401 - a SQLAlchemy row
    return HeldConflict(
        row.id,
        row.sync_id,
        row.group_name,
        row.field,
        row.base,
        dict(row.values),
        row.state,
        row.take,
        row.resolved_by,
        aware(row.opened_at),
        aware(row.updated_at),
    )


__all__ = [
    "CommentRow",
    "DuplicateLink",
    "HeldConflict",
    "JournalEntry",
    "Lease",
    "LeaseLost",
    "Link",
    "Quarantined",
    "Store",
    "StoreUnavailable",
    "Tx",
]
