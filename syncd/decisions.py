"""People's decisions: a held conflict resolved, a quarantined item retried, a mass change confirmed or rejected.

One module for every way in (the ``syncd conflicts|quarantine|guard`` commands and the web page), so a decision
is recorded the same way whoever makes it and wherever: found by id (or a unique prefix), checked, written with
its audit event naming who decided, in one transaction under the group's lease (or at once while a running
daemon holds the group, see :func:`decision_store`). Only the store is touched; the group's next pass applies it.
What cannot be done raises :class:`~syncd.errors.CommandRefused` with a sentence for a person.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from syncd.audit import AuditEvent, append
from syncd.errors import CommandRefused
from syncd.leasing import Leases
from syncd.store import HeldConflict, Quarantined, Store, Tx, guards
from syncd.store.guards import Guard
from syncd.store.schema import conflicts


def decision_store(leases: Leases, group: str, *, wait_s: float) -> Store:
    """Where a person's decision for a group is written (a conflict resolved, an item released, a guard decided).

    Under the group's lease when this process can take it (waiting up to ``wait_s`` for a ``syncd once`` to
    finish), and fenced. A running daemon holds its groups' leases for as long as it runs, so while a live daemon
    replica holds the group the decision is written without it: one short transaction recording the person's
    choice, which that daemon's next pass reads and applies. Such a write cannot race a pass into a wrong state:
    a pass never reopens a decided conflict, never re-holds a released item beyond a fresh strike, and never
    changes the items of a guard once it is decided (the store's updates are conditional on it).
    """
    store = leases.store
    now, rows = store.holders()
    current = next((row for row in rows if row.group == group and row.live(now)), None)
    if current is not None and current.holder != leases.holder:
        at, replicas = store.replicas()
        if any(replica.replica_id == current.holder and replica.live(at) for replica in replicas):
            return store
    return store.fenced(leases.take(group, wait_s=wait_s))


# ----- held conflicts --------------------------------------------------------------------------------------


def find_conflict(tx: Tx, conflict_id: str) -> HeldConflict:
    """The conflict an id or a unique prefix of it names; refused saying whether none or several match."""
    wanted = conflict_id.strip()
    if not wanted:
        raise CommandRefused("a conflict id is required: `syncd conflicts list` shows them")
    found = tx.conflict(wanted)
    if found is not None and found.id.startswith(wanted):  # the store matches with LIKE, where _ is a wildcard
        return found
    matching = (
        tx.connection.execute(
            select(conflicts.c.id).where(conflicts.c.id.startswith(wanted, autoescape=True)).order_by(conflicts.c.id)
        )
        .scalars()
        .all()
    )
    if len(matching) > 1:
        shown = ", ".join(matching[:5]) + (", ..." if len(matching) > 5 else "")
        raise CommandRefused(
            f"conflict id {wanted!r} is ambiguous: {len(matching)} conflicts start with it ({shown}); type more"
        )
    raise CommandRefused(f"no conflict {wanted!r}: `syncd conflicts list --all` shows every conflict id")


def conflict_members(tx: Tx, conflict: HeldConflict) -> list[str]:
    """The departments a conflict can take: the ones that changed the field, then the others holding the item."""
    prefix = f"{conflict.group}/"
    holding = [key.removeprefix(prefix) for key in tx.links(conflict.sync_id) if key.startswith(prefix)]
    return list(dict.fromkeys([*conflict.values, *sorted(holding)]))


@dataclass(frozen=True)
class Resolved:
    """A recorded conflict decision: the conflict as it was before, who decided, and what it could take."""

    conflict: HeldConflict
    take: str
    person: str
    members: list[str]


def conflict_group(store: Store, conflict_id: str) -> str:
    """The group of the conflict an id names (read without a lease, to know which lease to take)."""
    with store.transaction() as tx:
        return find_conflict(tx, conflict_id).group


def resolve_conflict(leases: Leases, conflict_id: str, take: str, person: str, *, wait_s: float) -> Resolved:
    """Decide a held conflict: its field takes ``take``'s value everywhere on the group's next pass (audited)."""
    group = conflict_group(leases.store, conflict_id)
    with decision_store(leases, group, wait_s=wait_s).transaction() as tx:
        conflict = find_conflict(tx, conflict_id)
        if conflict.state == "closed":
            raise CommandRefused(
                f"conflict {conflict.id} is closed: {conflict.field} of item {conflict.sync_id} agrees everywhere "
                "again, nothing is left to decide"
            )
        members = conflict_members(tx, conflict)
        if take not in members:
            raise CommandRefused(
                f"{take!r} does not hold item {conflict.sync_id} in group {conflict.group}: "
                f"--take one of {', '.join(members)}"
            )
        tx.decide_conflict(conflict.id, take, person)
        append(
            tx,
            AuditEvent(
                "decision",
                group=conflict.group,
                sync_id=conflict.sync_id,
                field=conflict.field,
                origin=take,
                person=person,
                rule="manual",
                outcome="decided",
                message="applied by the next pass",
            ),
        )
    return Resolved(conflict, take, person, members)


# ----- quarantined items ------------------------------------------------------------------------------------


def _quarantined(tx: Tx, item: str) -> Quarantined:
    entry = tx.quarantine_entry(item)
    if entry is None:
        raise CommandRefused(f"item {item!r} is not quarantined: `syncd quarantine list` shows the items that are")
    return entry


def quarantine_group(store: Store, item: str) -> str:
    """The group of a quarantined item (read without a lease, to know which lease to take)."""
    with store.transaction() as tx:
        return _quarantined(tx, item).group


def retry_item(leases: Leases, item: str, person: str, *, wait_s: float) -> Quarantined:
    """Release a quarantined item (its strikes reset) so its group's next pass tries it again (audited).

    The entry is read again under the lease: a pass may have cleared it meanwhile.
    """
    group = quarantine_group(leases.store, item)
    with decision_store(leases, group, wait_s=wait_s).transaction() as tx:
        entry = _quarantined(tx, item)
        tx.release(item)
        append(
            tx,
            AuditEvent(
                "release",
                group=entry.group,
                sync_id=item,
                old={"strikes": entry.strikes, "held": entry.held, "error": entry.error},
                person=person,
                message="retried on the next pass",
            ),
        )
    return entry


# ----- mass-change guards -----------------------------------------------------------------------------------


def find_guard(tx: Tx, guard_id: str) -> Guard:
    """The guard an id or a unique prefix of it names; refused saying whether none or several match."""
    wanted = guard_id.strip()
    if not wanted:
        raise CommandRefused("a guard id is required: `syncd guard list` shows them")
    found = [guard for guard in guards.matching(tx, wanted) if guard.id.startswith(wanted)]
    if len(found) == 1:
        return found[0]
    if found:
        shown = ", ".join(guard.id for guard in found[:5])
        raise CommandRefused(
            f"guard id {wanted!r} is ambiguous: {len(found)} guards start with it ({shown}); type more"
        )
    raise CommandRefused(f"no guard {wanted!r}: `syncd guard list --all` shows every guard id")


def guard_of(store: Store, guard_id: str) -> Guard:
    """The guard an id names, read without a lease (to know its group, or to check who may decide it)."""
    with store.transaction() as tx:
        return find_guard(tx, guard_id)


def decide_guard(leases: Leases, guard_id: str, state: str, person: str, *, wait_s: float) -> Guard:
    """Confirm or reject a pending mass change (``state``: confirmed or rejected), audited with who decided."""
    if state not in ("confirmed", "rejected"):
        raise CommandRefused(f"a guard is confirmed or rejected, not {state!r}")
    group = guard_of(leases.store, guard_id).group
    with decision_store(leases, group, wait_s=wait_s).transaction() as tx:
        guard = find_guard(tx, guard_id)
        if guard.state != "pending":
            raise CommandRefused(
                f"guard {guard.id} was already {guard.state} by {guard.decided_by or 'unknown'}: "
                "a decision is not taken back (`syncd guard show` says what it did)"
            )
        guards.decide(tx, guard.id, state, person)
        append(
            tx,
            AuditEvent(
                "guard",
                group=guard.group,
                endpoint=guard.endpoint,
                new={"guard": guard.id, "items": len(guard.items)},
                origin=",".join(guard.sources) or None,
                person=person,
                outcome=state,
                message=f"{guard.reason}; applied by the next pass",
            ),
        )
    return guard
