"""What the web page shows, read from the store: audit pages a person may see, an item, the queues, the chain.

Read permission maps an audit event to departments by where it acts and whose change it carries: its
``endpoint`` (the department written), its ``origin`` (the department whose change it propagates; a guard's lists
several, comma-separated) and the departments of its ``refs``. A person sees an event when they may read one of
those; an event naming no department (none is written today) is shown only to people who read every department.
The database applies this rule (``AuditFilter.readers``, indexed by :func:`syncd.audit.concerned`); :func:`may_read`
is the same rule in Python.
Held conflicts concern the departments whose values differ, a quarantined item the departments holding it, a
mass change the department whose mirrors it would change; a person sees and decides them by the same rule.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from syncd.audit import AuditEvent, AuditFilter, Checkpoint, Recorded, Verification, concerned, head, query, verify
from syncd.audit import page as audit_page_of
from syncd.config import Config
from syncd.connector import Capabilities, browse_url
from syncd.merge import ARCHIVED
from syncd.store import HeldConflict, Quarantined, Store, guards
from syncd.store.guards import Guard
from syncd.ui.identity import Identity

PAGE = 50
"""Events per audit page."""


def visible_filter(identity: Identity, filters: AuditFilter) -> AuditFilter | None:
    """The filters with the person's permissions added, for the database; None if they can match nothing seen.

    A person who may read only some departments gets ``readers``: every event concerning one of them.
    """
    readers = None if identity.reads_all else identity.visible()
    if readers is not None and filters.department is not None and filters.department not in readers:
        return None
    return replace(filters, readers=readers)


def departments_of(event: AuditEvent) -> set[str]:
    """The departments an audit event concerns (see the module docstring)."""
    return concerned({"endpoint": event.endpoint, "origin": event.origin, "refs": event.refs})


def may_read(identity: Identity, event: AuditEvent) -> bool:
    """Whether a person may see an audit event."""
    return identity.reads_all or identity.reads(departments_of(event))


@dataclass(frozen=True)
class AuditPage:
    """One page of events, newest first, and the seq the next (older) page starts before, if there is one."""

    events: list[Recorded]
    older: int | None


def audit_page(
    store: Store, identity: Identity, filters: AuditFilter, *, before: int | None = None, page: int = PAGE
) -> AuditPage:
    """The newest ``page`` events a person may see that match the filters, older than event ``before``.

    One keyset query (:func:`syncd.audit.page`): filters and permissions in the database, paged by seq, so a deep
    page costs what the first does and events written meanwhile never shift one.
    """
    wanted = visible_filter(identity, filters)
    if wanted is None:
        return AuditPage([], None)
    events, older = audit_page_of(store, wanted, before=before, limit=page)
    return AuditPage(events, older)


@dataclass(frozen=True)
class Tool:
    """One department holding an item: its ref, where to open it, and the values the store last saw there."""

    department: str
    tool: str
    ref: str
    url: str | None
    values: dict[str, Any]
    refused: dict[str, str] = field(default_factory=dict)
    """Field -> the tool's message, for values that tool refused."""


@dataclass(frozen=True)
class ItemView:
    """An item's page: its group, its mirrors, the agreed values, its conflicts and its (visible) timeline."""

    sync_id: str
    group: str
    tools: list[Tool]
    base: dict[str, Any]
    conflicts: list[HeldConflict]
    quarantined: Quarantined | None
    timeline: list[Recorded]


def item_view(
    store: Store, config: Config, capabilities: Mapping[str, Capabilities], identity: Identity, sync_id: str
) -> ItemView | None:
    """The item as the store last saw it in each tool, or None if unknown or not visible to this person.

    A mirror holds the agreed (base) value of each field, except where its tool could not be read while the
    others agreed (``behind``: it still holds the older value) or refused a value (it holds what it had).
    """
    with store.transaction() as tx:
        group = tx.item_group(sync_id)
        if group is None:
            return None
        links = tx.links(sync_id)
        base = tx.base(sync_id) or {}
        behind = tx.behind(sync_id)
        refusals = tx.refusals(sync_id)
        held = tx.conflicts(sync_id=sync_id, states=("open", "decided", "closed"))
        quarantined = tx.quarantine_entry(sync_id)
    prefix = f"{group}/"
    members = sorted(key.removeprefix(prefix) for key in links if key.startswith(prefix))
    if not identity.reads(members):
        return None
    agreed = {name: value for name, value in base.items() if name != ARCHIVED}
    tools = []
    for member in members:
        key = prefix + member
        department = config.departments.get(member)
        kind = department.connection.tool if department is not None else "?"
        url = None
        if department is not None and kind in capabilities:
            connection = department.connection
            workspace = str(getattr(connection, "board", None) or getattr(connection, "project", ""))
            url = browse_url(capabilities[kind], connection.base_url, workspace, links[key].ref)
        refused = refusals.get(key, {})
        values = {**agreed, **behind.get(key, {}), **{name: refusal.held for name, refusal in refused.items()}}
        name = capabilities[kind].name if kind in capabilities else kind
        messages = {name_: refusal.message for name_, refusal in refused.items()}
        tools.append(Tool(member, name, links[key].ref, url, values, messages))
    readers = None if identity.reads_all else identity.visible()
    timeline = query(store, sync_id=sync_id, readers=readers, limit=500)
    return ItemView(sync_id, group, tools, agreed, held, quarantined, list(reversed(timeline)))


@dataclass(frozen=True)
class Queues:
    """What waits for a person, as this person may see it, each with whether they may decide it."""

    conflicts: list[tuple[HeldConflict, list[str], bool]]
    """Each open or decided conflict, the departments it can take, and whether this person may decide it."""
    quarantined: list[tuple[Quarantined, bool]]
    guards: list[tuple[Guard, bool]]


def conflict_departments(conflict: HeldConflict) -> set[str]:
    """The departments a held conflict concerns: those whose values differ."""
    return set(conflict.values)


def queues(store: Store, identity: Identity) -> Queues:
    """The held conflicts, quarantined items and pending mass changes this person may see."""
    with store.transaction() as tx:
        held = tx.conflicts()
        failing = tx.quarantined(held=True)
        pending = guards.active(tx)
        links = tx.links_of([conflict.sync_id for conflict in held] + [entry.sync_id for entry in failing])
    shown_conflicts = []
    for conflict in held:
        prefix = f"{conflict.group}/"
        linked = links.get(conflict.sync_id, {})
        members = list(
            dict.fromkeys([*conflict.values, *sorted(k.removeprefix(prefix) for k in linked if k.startswith(prefix))])
        )
        concerned = conflict_departments(conflict)
        if identity.reads(concerned):
            shown_conflicts.append((conflict, members, identity.decides(concerned)))
    shown_items = []
    for entry in failing:
        prefix = f"{entry.group}/"
        holding = {key.removeprefix(prefix) for key in links.get(entry.sync_id, {}) if key.startswith(prefix)}
        if identity.reads_all or identity.reads(holding):
            shown_items.append((entry, identity.decides(holding)))
    shown_guards = [
        (guard, identity.decides({guard.endpoint}) and guard.state == "pending")
        for guard in pending
        if identity.reads({guard.endpoint})
    ]
    return Queues(shown_conflicts, shown_items, shown_guards)


def quarantine_departments(store: Store, sync_id: str) -> set[str]:
    """The departments holding a quarantined item (who may retry it)."""
    with store.transaction() as tx:
        group = tx.item_group(sync_id)
        links = tx.links(sync_id)
    prefix = f"{group}/"
    return {key.removeprefix(prefix) for key in links if key.startswith(prefix)}


@dataclass(frozen=True)
class Verdict:
    """The chain's last verification: its outcome, when it ran, who asked; or that one is running."""

    verification: Verification | None
    started_at: datetime
    finished_at: datetime | None
    by: str
    error: str | None = None


class ChainState:
    """The chain's verification, computed on demand on a thread of its own; its verdict kept in the store.

    Verifying recomputes every event's hash: on 1,000,000 events that takes far longer than a page may, so a
    page shows the last verdict with when it was computed, and a button starts a new one. The verdict lives in the
    store (:mod:`syncd.store.verdicts`), so every replica's page shows the same one and one runs at a time.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def last(self) -> Verdict | None:
        """The verification begun last (by any replica), finished or running; None before the first."""
        row = self._store.last_verdict()
        if row is None:
            return None
        outcome = Verification(**json.loads(row.outcome)) if row.outcome else None
        return Verdict(outcome, row.started_at, row.finished_at, row.by, error=row.error)

    def start(self, by: str) -> bool:
        """Start verifying unless a verification is running; False if one already is."""
        verdict_id = self._store.begin_verdict(by)
        if verdict_id is None:
            return False
        threading.Thread(target=self._run, args=(verdict_id,), name="syncd-ui-verify", daemon=True).start()
        return True

    def _run(self, verdict_id: int) -> None:
        try:
            outcome, error = json.dumps(dataclasses.asdict(verify(self._store))), None
        except Exception as failure:  # the page says it failed and why, by the error's name (never its text)
            outcome, error = None, type(failure).__name__
        self._store.finish_verdict(verdict_id, outcome=outcome, error=error)

    def checkpoint(self) -> Checkpoint | None:
        """The chain's head now (cheap: one row)."""
        return head(self._store)
