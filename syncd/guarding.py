"""The guard stage of a pass, between plan and apply: mass changes held for a person, the rest let through.

Every pass goes through it (full scans, change feeds, webhook hints, folded rounds), after every item is planned
and before any is applied, so the count sees the pass's whole change. Per affected endpoint
(:mod:`syncd.guard` says what is destructive and when it trips):

- items a **pending** guard of that endpoint already holds stay held, and new destructive steps toward it join
  that guard (updated, never a second one), whatever their number: a mass change is still under way there;
- otherwise new destructive steps that trip open a pending guard (an audit event ``guard``, outcome ``held``);
- items of a **confirmed** guard are applied as planned; of a **rejected** one, without the steps toward that
  endpoint and with their cause undone at its source (:func:`syncd.guard.rejected`: a restore, a create again, an
  unlink for good); the guard settles once every one of its items is committed (an item another guard still
  holds stays open in both).

A dry run (``syncd plan``) goes through the same stage and stores nothing: what would be held is reported.

An item with a held step waits whole: nothing of it is applied or committed (links, versions and base stay as
they were), and it is planned again on each pass until the guard is decided. Committing the rest of it would let
the base claim what the tools do not hold (the archived flag, a deleted record's link) and lose the held change.
Every other item, including non-destructive writes to the guarded endpoint, syncs as usual.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from ulid import ULID

from syncd.audit import AuditEvent, append
from syncd.guard import Destructive, Rejection, Threshold, destructive, rejected
from syncd.mapping import Group
from syncd.merge import GroupPolicy
from syncd.notices import Outbox, guard_hold
from syncd.pass_data import Hold, PassReport, Touched
from syncd.plan import Plan
from syncd.store import Store, Tx
from syncd.store import guards as stored
from syncd.store.guards import Guard
from syncd.store.schema import audit, links

Work = list[tuple[Plan, Touched]]


def _recent(tx: Tx, group: str, window_s: float) -> dict[str, dict[str, datetime]]:
    """Member -> item -> when it was last archived, deleted or unlinked there in the last ``window_s`` seconds.

    Read from the audit log.
    """
    if window_s <= 0:
        return {}
    since = datetime.now(UTC) - timedelta(seconds=window_s)
    rows = tx.connection.execute(
        select(audit.c.sync_id, audit.c.at, audit.c.content)
        .where(audit.c.group_name == group, audit.c.kind.in_(("archive", "delete", "unlink")), audit.c.at >= since)
        .order_by(audit.c.seq.desc())
        .limit(RECENT_LIMIT)
    )
    found: dict[str, dict[str, datetime]] = defaultdict(dict)
    for sync_id, at, content in rows.all():
        endpoint = content.get("endpoint") if isinstance(content, dict) else None
        if isinstance(content, dict) and content.get("person"):
            continue  # a person's own decision (a rejected recreate unlinked), not a change to hold
        if isinstance(endpoint, str) and sync_id:
            found[endpoint].setdefault(str(sync_id), at if at.tzinfo is not None else at.replace(tzinfo=UTC))
    return found


RECENT_LIMIT = 100_000
"""At most this many recent events are read for the window: far more than any threshold needs to trip."""


def _grouped(tx: Tx, group: str) -> dict[str, int]:
    """Member -> how many items it links (the whole a threshold's share is of)."""
    rows = tx.connection.execute(
        select(links.c.endpoint, func.count())
        .where(links.c.endpoint.startswith(f"{group}/", autoescape=True))
        .group_by(links.c.endpoint)
    )
    return {str(key).split("/", 1)[1]: int(count) for key, count in rows.all()}


def restorable(group: Group) -> set[str]:
    """Members whose tool can undo an archive in this group.

    All, except where restoring needs the item's status (Jira's archive moved the issue to a done status) and the
    group maps no status there to move it back to.
    """
    status = group.policy.fields.get("status")
    return {
        member
        for member, codec in group.codecs.items()
        if not codec.capabilities.restore_needs_status or (status is not None and status.holds(member))
    }


class Guarding:
    """The guard stage of one pass of one group."""

    def __init__(
        self,
        group: str,
        store: Store,
        report: PassReport,
        thresholds: Mapping[str, Threshold],
        *,
        config_version: str = "",
        policy: GroupPolicy | None = None,
        restorable: Collection[str] = (),
        moves_status: Collection[str] = (),
        outbox: Outbox | None = None,
    ) -> None:
        self.group = group
        self.store = store
        self.report = report
        self.thresholds = thresholds
        self.config_version = config_version
        self.policy = policy
        self.restorable = frozenset(restorable)
        """Members whose tool can undo an archive for this group (:func:`restorable`)."""
        self.moves_status = frozenset(moves_status)
        """Members whose tool's archive moves the item's status (undone with the archive)."""
        self.naming: dict[tuple[str, str], Guard] = {}
        """(item, endpoint) -> the unsettled guard naming it, as this pass found them."""
        self.outbox = outbox or Outbox()
        self.decided: dict[str, set[str]] = defaultdict(set)
        """Guard id -> items of a decided guard let through this pass (settled once committed)."""

    def guarded(self) -> set[str]:
        """Every item an unsettled guard of the group names: planned again each pass until it settles."""
        with self.store.transaction() as tx:
            return {sync_id for guard in stored.active(tx, self.group) for sync_id in guard.open}

    def screen(
        self, work: Sequence[tuple[Plan, Touched]], emptied: Mapping[str, str], *, dry_run: bool = False
    ) -> Work:
        """The work to apply: held items left out, rejected steps taken out; guards opened or grown on the way.

        With ``dry_run`` (``syncd plan``) nothing is stored: what the guards would hold goes to ``report.holds``.
        """
        found = {plan.sync_id: destructive(plan, item) for plan, item in work}
        window = max((threshold.window_s for threshold in self.thresholds.values()), default=Threshold().window_s)
        with self.store.transaction() as tx:
            active = stored.active(tx, self.group)
            linked = _grouped(tx, self.group)
            bases = tx.bases(sync_id for sync_id, steps in found.items() if steps)  # what a hold or undo details
            recent = _recent(tx, self.group, window) if any(found.values()) else {}
        now = datetime.now(UTC)
        before: dict[str, int] = {}
        verdicts, new = self._verdicts(active, found)
        pending = {guard.endpoint: guard for guard in active if guard.state == "pending"}
        holding: dict[str, dict[str, dict[str, Any]]] = {
            endpoint: dict(guard.items) for endpoint, guard in pending.items()
        }
        items = {plan.sync_id: item for plan, item in work}
        opened: dict[str, str] = {}
        surging = self._surging(new, linked)
        for endpoint, steps in sorted(new.items()):
            threshold = self.thresholds.get(endpoint, Threshold())
            earlier = {
                sync_id
                for sync_id, at in recent.get(endpoint, {}).items()
                if (now - at).total_seconds() <= threshold.window_s
            }
            count = len({d.sync_id for d in steps} | earlier)
            before[endpoint] = len(earlier - {d.sync_id for d in steps})
            if endpoint in pending or threshold.trips(count, linked.get(endpoint, 0)):
                holds = list(steps)
            else:
                # Under the endpoint's threshold, but from a source whose listing emptied or that changed in mass.
                holds = [d for d in steps if d.source in emptied or d.source in surging]
            if not holds:
                continue
            holding.setdefault(endpoint, {})
            for d in holds:
                detail = d.detail(items[d.sync_id], bases.get(d.sync_id))
                if d.what == "archive" and d.source not in items[d.sync_id].deleted:
                    # Whether a rejection can undo it at its source: `syncd guard reject` says so when it cannot.
                    detail["restorable"] = d.source in self.restorable
                holding[endpoint][d.sync_id] = detail
                verdicts[(d.sync_id, endpoint)] = "pending"
            if endpoint not in pending:
                opened[endpoint] = self._why(
                    endpoint, holds, linked.get(endpoint, 0), threshold, emptied, before=before.get(endpoint, 0)
                )
        # A pending guard's item whose plan no longer changes the endpoint that way settled itself (a person undid
        # the archive meanwhile): it leaves the guard.
        for endpoint in pending:
            for sync_id in list(holding[endpoint]):
                if sync_id in found and not any(d.endpoint == endpoint for d in found[sync_id]):
                    del holding[endpoint][sync_id]
        if dry_run:
            self._preview(pending, holding, opened)
        else:
            self._store(pending, holding, opened, linked)
        return self._let_through(work, found, verdicts, bases)

    def _preview(
        self,
        pending: Mapping[str, Guard],
        holding: Mapping[str, dict[str, dict[str, Any]]],
        opened: Mapping[str, str],
    ) -> None:
        """What a pass would hold, per endpoint: in its pending guard, or in a guard it would open."""
        for endpoint, items in sorted(holding.items()):
            if not items:
                continue
            guard = pending.get(endpoint)
            why = guard.reason if guard is not None else opened[endpoint]
            held = {sync_id: str(detail["what"]) for sync_id, detail in sorted(items.items())}
            self.report.holds.append(Hold(endpoint, guard.id if guard is not None else None, why, held))

    def _surging(self, new: Mapping[str, list[Destructive]], linked: Mapping[str, int]) -> set[str]:
        """Sources whose own items, counted once however many endpoints they reach, trip the source's threshold.

        One mass deletion can split into consequences of different kinds (archives at some endpoints, recreates
        of items modified elsewhere at another), each under an endpoint's threshold: counted at its source, it
        is still one mass change.
        """
        by_source: dict[str, set[str]] = defaultdict(set)
        for steps in new.values():
            for d in steps:
                by_source[d.source].add(d.sync_id)
        return {
            source
            for source, ids in by_source.items()
            if self.thresholds.get(source, Threshold()).trips(len(ids), linked.get(source, 0))
        }

    def _verdicts(
        self, active: Sequence[Guard], found: Mapping[str, list[Destructive]]
    ) -> tuple[dict[tuple[str, str], str], dict[str, list[Destructive]]]:
        """(item, endpoint) -> the state of the guard naming it; and per endpoint the destructive steps none names."""
        naming: dict[tuple[str, str], Guard] = {}
        for guard in active:
            for sync_id in guard.open:
                naming.setdefault((sync_id, guard.endpoint), guard)
        self.naming = naming
        verdicts: dict[tuple[str, str], str] = {}
        new: dict[str, list[Destructive]] = defaultdict(list)
        for sync_id, steps in found.items():
            for d in steps:
                named = naming.get((sync_id, d.endpoint))
                if named is None:
                    new[d.endpoint].append(d)
                else:
                    verdicts[(sync_id, d.endpoint)] = named.state
        # A decided guard's item planned this pass is settled once committed (with its step, or without one left).
        for (sync_id, _), named in naming.items():
            if named.state != "pending" and sync_id in found:
                self.decided[named.id].add(sync_id)
        return verdicts, new

    def _why(
        self,
        endpoint: str,
        steps: Sequence[Destructive],
        linked: int,
        threshold: Threshold,
        emptied: Mapping[str, str],
        *,
        before: int = 0,
    ) -> str:
        """The guard's reason, as a person reads it."""
        kinds = defaultdict(set)
        for d in steps:
            kinds[d.what].add(d.sync_id)
        what = ", ".join(f"{len(ids)} {kind}{'s' if len(ids) != 1 else ''}" for kind, ids in sorted(kinds.items()))
        sources = sorted({d.source for d in steps})
        said = [emptied[source] for source in sources if source in emptied]
        if said:
            return f"{what} at {endpoint} from {', '.join(sources)}, whose listing emptied: {'; '.join(said)}"
        count = len({d.sync_id for d in steps})
        limits = f"(more than {threshold.max_items} and {threshold.max_share:.0%})"
        if before:
            return (
                f"{what} at {endpoint} from {', '.join(sources)}, after {before} applied there in the last "
                f"{threshold.window_s:.0f} s: {count + before} of {linked} linked items {limits}"
            )
        return f"{what} at {endpoint} from {', '.join(sources)} in one pass: {count} of {linked} linked items {limits}"

    def _store(
        self,
        pending: Mapping[str, Guard],
        holding: Mapping[str, dict[str, dict[str, Any]]],
        opened: Mapping[str, str],
        linked: Mapping[str, int],
    ) -> None:
        """Open the new guards, update the pending ones that changed; audit each (one event per guard)."""
        with self.store.transaction() as tx:
            for endpoint, items in sorted(holding.items()):
                guard = pending.get(endpoint)
                if guard is None:
                    guard_id = str(ULID())
                    stored.hold(
                        tx,
                        guard_id,
                        group=self.group,
                        endpoint=endpoint,
                        items=items,
                        linked=linked.get(endpoint, 0),
                        reason=opened[endpoint],
                    )
                    self._audit(tx, guard_id, endpoint, items, said=f"held: {opened[endpoint]}")
                    sources = {str(detail["source"]) for detail in items.values()}
                    event = guard_hold(
                        guard_id,
                        group=self.group,
                        endpoint=endpoint,
                        sources=sorted(sources),
                        items=len(items),
                        reason=opened[endpoint],
                    )
                    self.outbox.record(tx, event)
                elif items != guard.items:
                    stored.replace_items(tx, guard.id, items, linked=linked.get(endpoint, 0))
                    if not items:
                        stored.still_open(tx, guard.id, [], settle=True)
                        said = "settled: nothing is left to hold"
                        self._audit(tx, guard.id, endpoint, items, said=said, outcome="settled")
                        continue
                    self._audit(tx, guard.id, endpoint, items, said=f"now {len(items)} items held")
                    guard_id = guard.id
                else:
                    guard_id = guard.id
                if items:
                    self.report.guards.append(guard_id)

    def _audit(
        self, tx: Tx, guard_id: str, endpoint: str, items: Mapping[str, Any], *, said: str, outcome: str = "held"
    ) -> None:
        """One ``guard`` audit event: held (with the commands to decide), or settled."""
        decide = f"; decide: syncd guard show {guard_id}, then syncd guard confirm|reject {guard_id}"
        append(
            tx,
            AuditEvent(
                "guard",
                group=self.group,
                endpoint=endpoint,
                new={"guard": guard_id, "items": len(items)},
                origin=",".join(sorted({str(d["source"]) for d in items.values()})) or None,
                outcome=outcome,
                config_version=self.config_version,
                message=said + (decide if outcome == "held" else ""),
            ),
        )

    def _let_through(
        self,
        work: Sequence[tuple[Plan, Touched]],
        found: Mapping[str, list[Destructive]],
        verdicts: Mapping[tuple[str, str], str],
        bases: Mapping[str, Mapping[str, Any]],
    ) -> Work:
        kept: Work = []
        for plan, item in work:
            states = {d.endpoint: verdicts.get((plan.sync_id, d.endpoint)) for d in found[plan.sync_id]}
            if "pending" in states.values():
                self.report.held.add(plan.sync_id)
                continue
            refused = {
                endpoint: Rejection(named.id, named.decided_by or "unknown")
                for endpoint, state in states.items()
                if state == "rejected" and (named := self.naming.get((plan.sync_id, endpoint))) is not None
            }
            if refused:
                base = bases.get(plan.sync_id)
                undone = rejected(
                    plan,
                    item,
                    refused,
                    base,
                    policy=self.policy,
                    restorable=self.restorable,
                    moves_status=self.moves_status,
                )
                kept.append((undone, item))
            else:
                kept.append((plan, item))
        return kept

    def settle(self) -> None:
        """After apply: decided guards forget the items committed this pass; a guard with none left settles."""
        if not self.decided:
            return
        with self.store.transaction() as tx:
            for guard in stored.active(tx, self.group):
                # An item another guard still holds was not applied: it stays open here until it is.
                done = {
                    s
                    for s in self.decided.get(guard.id, set())
                    if s not in self.report.failures and s not in self.report.held
                }
                if guard.state == "pending" or not done:
                    continue
                left = [sync_id for sync_id in guard.open if sync_id not in done]
                stored.still_open(tx, guard.id, left, settle=not left)
                if not left:
                    self._audit(
                        tx, guard.id, guard.endpoint, guard.items, said=f"{guard.state} and applied", outcome="settled"
                    )


__all__ = ["Guarding", "restorable"]
