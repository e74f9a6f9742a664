"""The ``guards`` table: mass changes held for a person, read and written inside one :class:`~syncd.store.Tx`.

A guard is opened by a pass (:mod:`syncd.guard` says when), grows while it is pending (later passes add the
items they would change the same way at that endpoint instead of opening another), is decided by a person
(``syncd guard confirm|reject``) and is settled by the pass that applied the decision to its last open item.
Its own module beside the ``Tx`` so the table's rules read in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update

from syncd.store.schema import guards
from syncd.store.times import aware, aware_or_none

if TYPE_CHECKING:
    from syncd.store import Tx

STATES = ("pending", "confirmed", "rejected")


@dataclass(frozen=True)
class Guard:
    """One held mass change toward one endpoint of one group."""

    id: str
    group: str
    endpoint: str
    """The member whose mirrors the held steps would archive, unlink or recreate."""
    sources: list[str]
    """The members whose archives or deletions the held steps come from."""
    items: dict[str, dict[str, Any]]
    """sync_id -> what: ``what`` (archive, unlink, recreate), ``ref``, ``source``, ``source_ref``, ``title``,
    ``reason``."""
    linked: int
    reason: str
    state: str
    open: list[str]
    """Items a decided guard has not been applied to yet (all of them while it is pending)."""
    created_at: datetime
    updated_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    settled_at: datetime | None


def _guard(row: Any) -> Guard:  # noqa: ANN401 - a SQLAlchemy row
    created, updated = aware(row.created_at), aware(row.updated_at)
    return Guard(
        row.id,
        row.group_name,
        row.endpoint,
        list(row.sources),
        dict(row.items),
        row.linked,
        row.reason,
        row.state,
        list(row.open),
        created,
        updated,
        row.decided_by,
        aware_or_none(row.decided_at),
        aware_or_none(row.settled_at),
    )


def active(tx: Tx, group: str | None = None) -> list[Guard]:
    """Guards a pass must heed: pending ones, and decided ones not applied to every item yet; oldest first."""
    query = select(guards).where(guards.c.settled_at.is_(None)).order_by(guards.c.created_at, guards.c.id)
    if group is not None:
        query = query.where(guards.c.group_name == group)
    return [_guard(row) for row in tx.connection.execute(query)]


def listing(tx: Tx, group: str | None = None, *, settled: bool = False) -> list[Guard]:
    """Guards for people: pending first, then decided ones; with ``settled``, the settled ones too."""
    query = select(guards).order_by(guards.c.created_at, guards.c.id)
    if group is not None:
        query = query.where(guards.c.group_name == group)
    if not settled:
        query = query.where(guards.c.settled_at.is_(None))
    found = [_guard(row) for row in tx.connection.execute(query)]
    return sorted(found, key=lambda guard: (guard.state != "pending", guard.settled_at is not None))


def matching(tx: Tx, prefix: str) -> list[Guard]:
    """Guards whose id starts with ``prefix`` (people type a unique prefix)."""
    query = select(guards).where(guards.c.id.startswith(prefix, autoescape=True)).order_by(guards.c.id)
    return [_guard(row) for row in tx.connection.execute(query)]


def hold(
    tx: Tx,
    guard_id: str,
    *,
    group: str,
    endpoint: str,
    items: Mapping[str, Mapping[str, Any]],
    linked: int,
    reason: str,
) -> None:
    """Open a pending guard over ``items``."""
    now = datetime.now(UTC)
    tx.connection.execute(
        insert(guards).values(
            id=guard_id,
            group_name=group,
            endpoint=endpoint,
            sources=sorted({str(detail["source"]) for detail in items.values()}),
            items={key: dict(value) for key, value in items.items()},
            linked=linked,
            reason=reason,
            state="pending",
            open=sorted(items),
            created_at=now,
            updated_at=now,
        )
    )


def replace_items(tx: Tx, guard_id: str, items: Mapping[str, Mapping[str, Any]], *, linked: int) -> None:
    """A pending guard's items as the latest pass found them (more were added, or some settled themselves).

    Only while it is still pending: a person who decided it meanwhile decided on the items they were shown.
    """
    tx.connection.execute(
        update(guards)
        .where(guards.c.id == guard_id, guards.c.state == "pending")
        .values(
            items={key: dict(value) for key, value in items.items()},
            sources=sorted({str(detail["source"]) for detail in items.values()}),
            open=sorted(items),
            linked=linked,
            updated_at=datetime.now(UTC),
        )
    )


def decide(tx: Tx, guard_id: str, state: str, person: str) -> None:
    """A person confirmed or rejected a pending guard; the group's next pass applies the decision."""
    now = datetime.now(UTC)
    tx.connection.execute(
        update(guards)
        .where(guards.c.id == guard_id, guards.c.state == "pending")
        .values(state=state, decided_by=person, decided_at=now, updated_at=now)
    )


def still_open(tx: Tx, guard_id: str, open_items: Sequence[str], *, settle: bool) -> None:
    """The items a guard has left to apply; ``settle`` ends it (decided and applied, or nothing left to hold)."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {"open": sorted(open_items), "updated_at": now}
    if settle:
        values["settled_at"] = now
    tx.connection.execute(update(guards).where(guards.c.id == guard_id).values(**values))
