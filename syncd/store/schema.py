"""The state store's tables (SQLAlchemy Core): what syncd remembers between passes, and the audit trail.

- ``items``: one row per mirrored item (``sync_id``) and its group.
- ``links``: where each item lives: (item, endpoint) -> ref and the version syncd last saw or wrote there.
  Unique on (endpoint, ref) and on (sync_id, endpoint): the database itself refuses a duplicate mirror.
- ``base``: per item and field, the canonical value every endpoint last agreed on (the 3-way merge's ancestor).
- ``echoes``: per item, endpoint and field, a value syncd wrote there that the base does not hold yet (its plan
  failed part-way, or a crash cut it short): syncd's own write, never to be taken for a person's change there.
- ``cursors``: per endpoint, where its change feed was read up to (advanced only after the changes commit).
- ``journal``: plans written before they are applied, so a crash is finished or undone on the next start.
- ``quarantine``: items that failed, how often (strikes) and the last error; ``held`` once they stop being tried.
- ``conflicts``: fields held by the ``manual`` rule, each endpoint's value, and a person's decision once made.
- ``comments``: per endpoint, each comment syncd knows: an original (origin = itself, with its Markdown body) or
  a copy of one (origin = the original's endpoint and id), so nothing is copied twice and nothing echoes.
- ``leases``: per group, the one process allowed to write it (``holder``), until ``expires_at``, and ``token``, the
  fencing token: bumped at each change of holder, checked by every commit of the group's work.
- ``replicas``: per running daemon (its replica id, the lease holder name), its host and pid, when it started,
  its last heartbeat (``seen_at``) and when that lapses (``expires_at``): the live ones share the groups.
- ``hook_secrets``: per department whose tool agrees a webhook's secret in a handshake (Asana), the webhook's
  target and id and its secret, so every replica verifies deliveries and a restart keeps the webhook; and while a
  replica registers one, who (``pending_by``) and until when: any replica then answers the tool's handshake.
- ``rate_budgets``: per tool credential, a token bucket (``tokens`` at ``stamp``) every replica on PostgreSQL takes
  its requests from, so together they stay within the tool's budget (see :mod:`syncd.store.budgets`).
- ``guards``: mass changes held for a person (see :mod:`syncd.guard`): per group and affected endpoint, the items
  and the destructive steps held, the state (pending, confirmed, rejected), who decided and when, and ``open``: the
  items a decided guard still has to be applied to (``settled_at`` once none are left).
- ``notifications``: the outbox of events that wait for a person (see :mod:`syncd.notices`): one row per event and
  target, unique by ``key``, written with the event's cause; ``claimed_by`` / ``claimed_until`` while a daemon
  delivers it, ``sent_at`` once sent, ``attempts``, ``due_at`` and ``error`` while its target fails.
- ``audit``: append-only, hash-chained events, each with the ``hash_format`` it was chained in (see
  :mod:`syncd.audit`); ``audit_head`` holds the chain's last seq and hash, locked by each append;
  ``audit_terms`` indexes the values inside each event's content that the listing filters on.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    }
)

items = Table(
    "items",
    metadata,
    Column("sync_id", String(32), primary_key=True),
    Column("group_name", String(200), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

links = Table(
    "links",
    metadata,
    Column("sync_id", String(32), primary_key=True),
    Column("endpoint", String(200), primary_key=True),
    Column("ref", String(200), nullable=False),
    Column("version", String(200), nullable=False),
    Column("synced_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("endpoint", "ref"),
)

base = Table(
    "base",
    metadata,
    Column("sync_id", String(32), primary_key=True),
    Column("field", String(100), primary_key=True),
    Column("value", JSON, nullable=True),
)

echoes = Table(
    "echoes",
    metadata,
    Column("sync_id", String(32), primary_key=True),
    Column("endpoint", String(200), primary_key=True),
    Column("field", String(100), primary_key=True),
    Column("value", JSON, nullable=True),
)

endpoint_state = Table(
    "endpoint_state",
    metadata,
    Column("endpoint", String(200), primary_key=True),
    Column("failing_since", DateTime(timezone=True), nullable=False),
    Column("checked_at", DateTime(timezone=True), nullable=False),
    Column("error", Text, nullable=False),
)
"""Endpoints whose tool could not be read at their last pass: since when, and what it said (no row: answering)."""

behind = Table(
    "behind",
    metadata,
    Column("sync_id", String(32), primary_key=True),
    Column("endpoint", String(200), primary_key=True),
    Column("field", String(100), primary_key=True),
    Column("value", JSON, nullable=True),
)
"""Values a mirror still holds from an older base: its tool could not be read while the others agreed on a new one."""

refused = Table(
    "refused",
    metadata,
    Column("sync_id", String(32), primary_key=True),
    Column("endpoint", String(200), primary_key=True),
    Column("field", String(100), primary_key=True),
    Column("value", JSON, nullable=True),
    Column("held", JSON, nullable=True),
    Column("message", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
"""Values a tool refused for one mirror (the base's ``value``; the mirror still ``held`` another): left out there
until the value changes, and shown by ``syncd status`` with the tool's ``message``."""

cursors = Table(
    "cursors",
    metadata,
    Column("endpoint", String(200), primary_key=True),
    Column("cursor", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

journal = Table(
    "journal",
    metadata,
    Column("plan_id", String(32), primary_key=True),
    Column("sync_id", String(32), nullable=False),
    Column("group_name", String(200), nullable=False),
    Column("steps", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("sync_id", String(32), primary_key=True),
    Column("group_name", String(200), nullable=False, index=True),
    Column("strikes", Integer, nullable=False),
    Column("error", Text, nullable=False),
    Column("held", Boolean, nullable=False),
    Column("first_at", DateTime(timezone=True), nullable=False),
    Column("last_at", DateTime(timezone=True), nullable=False),
)

conflicts = Table(
    "conflicts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("sync_id", String(32), nullable=False, index=True),
    Column("group_name", String(200), nullable=False),
    Column("field", String(100), nullable=False),
    Column("base", JSON, nullable=True),
    Column("values", JSON, nullable=False),
    # open: waiting for a person; decided: a person chose ``take``, the next pass applies it; closed.
    Column("state", String(20), nullable=False, index=True),
    Column("take", String(200), nullable=True),
    Column("resolved_by", String(200), nullable=True),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

comments = Table(
    "comments",
    metadata,
    Column("endpoint", String(200), primary_key=True),
    Column("comment_id", String(100), primary_key=True),
    Column("sync_id", String(32), nullable=False, index=True),
    Column("origin_endpoint", String(200), nullable=False),
    Column("origin_id", String(100), nullable=False),
    Column("author", String(400), nullable=True),
    Column("body", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

leases = Table(
    "leases",
    metadata,
    Column("group_name", String(200), primary_key=True),
    Column("holder", String(300), nullable=False),
    Column("token", Integer, nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("renewed_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

replicas = Table(
    "replicas",
    metadata,
    Column("replica_id", String(300), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

hook_secrets = Table(
    "hook_secrets",
    metadata,
    Column("department", String(200), primary_key=True),
    Column("target", String(2000), nullable=True),
    Column("webhook", String(100), nullable=True),
    Column("secret", Text, nullable=True),
    Column("agreed_at", DateTime(timezone=True), nullable=True),
    Column("offered", Text, nullable=True),
    Column("pending_by", String(300), nullable=True),
    Column("pending_until", DateTime(timezone=True), nullable=True),
)

rate_budgets = Table(
    "rate_budgets",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("stamp", DateTime(timezone=True), nullable=False),
)

audit = Table(
    "audit",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("group_name", String(200), nullable=True),
    Column("sync_id", String(32), nullable=True),
    Column("content", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # 1: SHA-256 of the content (rows written before 0009), 2: SHA-256 of every column, 3: HMAC of every column.
    Column("hash_format", Integer, nullable=False, server_default="1"),
    # Filter, then newest first by seq: an equality's matches are already in seq order in these (0013).
    Index("ix_audit_kind_seq", "kind", "seq"),
    Index("ix_audit_group_name_seq", "group_name", "seq"),
    Index("ix_audit_sync_id_seq", "sync_id", "seq"),
    Index("ix_audit_at_seq", "at", "seq"),
)

audit_terms = Table(
    "audit_terms",
    metadata,
    Column("term_kind", String(20), nullable=False),
    Column("value", String(200), nullable=False),
    Column("seq", Integer, nullable=False),
    Index("ix_audit_terms_term_kind_value_seq", "term_kind", "value", "seq", unique=True),
    Index("ix_audit_terms_seq", "seq"),
)
"""An index of the values inside each event's content the listing filters on (ref, department, person, field):
one row per (kind, value, seq), derived from the content by :func:`syncd.audit.terms` and written with the event.
Not hashed and not evidence: ``syncd audit verify`` checks it against the content, ``syncd audit reindex``
rebuilds it."""

guards = Table(
    "guards",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("group_name", String(200), nullable=False, index=True),
    Column("endpoint", String(200), nullable=False),
    Column("sources", JSON, nullable=False),
    # sync_id -> {source, what, ref, source_ref, title, reason}: what would be done to the item, and why.
    Column("items", JSON, nullable=False),
    Column("linked", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    # pending: held for a person; confirmed: the next passes apply it; rejected: the next passes keep the mirrors.
    Column("state", String(20), nullable=False, index=True),
    Column("open", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("decided_by", String(200), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("settled_at", DateTime(timezone=True), nullable=True),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("key", String(500), nullable=False, unique=True),
    Column("target", String(300), nullable=False),
    Column("department", String(200), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("group_name", String(200), nullable=True),
    Column("sync_id", String(32), nullable=True),
    Column("text", Text, nullable=False),
    # [[label, path under public_url], ...]: the pages where a person decides.
    Column("links", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False, index=True),
    Column("attempts", Integer, nullable=False),
    Column("claimed_by", String(300), nullable=True),
    Column("claimed_until", DateTime(timezone=True), nullable=True),
    Column("sent_at", DateTime(timezone=True), nullable=True, index=True),
    Column("error", Text, nullable=True),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

GENESIS = "0" * 64
"""The previous hash of the first audit event."""

audit_verdicts = Table(
    "audit_verdicts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("by_person", String(300), nullable=False),
    Column("outcome", Text, nullable=True),
    Column("error", String(200), nullable=True),
)
