"""One sync pass of one group: read what changed, match it to items, plan each item, apply, commit, advance.

Per pass (DESIGN.md, data flow): each member's connector reports records changed since its cursor; each record is
matched to an item by its link (or adopted by its marker after a lost create, or born as a new item) and decoded
by the member's codec; the other members' current views of every touched item are fetched in one batch per
member; the pure planner decides; each plan is journaled, applied through the connectors, and its base values,
link versions and audit events are committed in one transaction; cursors advance last, once every item before
them is committed. A record whose version equals its link's is syncd's own write coming back: it is skipped, so
nothing echoes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ulid import ULID

from syncd.audit import AuditEvent, append
from syncd.connector import Connector
from syncd.errors import ConnectorError
from syncd.mapping import Group, MappingProblem
from syncd.merge import Item, check_side, plan
from syncd.model import ChangeBatch, Record
from syncd.plan import Archive, Create, Plan, Step, Unlink, View, Write
from syncd.store import Store, Tx


@dataclass
class PassReport:
    """What one pass did: plans, remote writes made, values that could not be mapped, items that failed."""

    group: str
    plans: list[Plan] = field(default_factory=list)
    writes: int = 0
    problems: list[MappingProblem] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    lags: list[float] = field(default_factory=list)
    """Per mirror written: seconds from the change in its tool to the mirror's commit (the propagation lag)."""

    @property
    def ok(self) -> bool:
        """Whether every item synced (problems are reported values, not failures)."""
        return not self.failures


@dataclass
class _Touched:
    views: dict[str, View] = field(default_factory=dict)
    seen: dict[str, Record] = field(default_factory=dict)
    deleted: dict[str, str] = field(default_factory=dict)
    out_of_scope: dict[str, str] = field(default_factory=dict)


def endpoint_key(group: str, member: str) -> str:
    """The store's name of one member's place in one group."""
    return f"{group}/{member}"


class Pass:
    """One pass over one group (``run`` it once; a new pass is a new object)."""

    def __init__(
        self, group: Group, connectors: Mapping[str, Connector], store: Store, *, config_version: str = ""
    ) -> None:
        self.group = group
        self.connectors = connectors
        self.store = store
        self.config_version = config_version
        self.report = PassReport(group.name)

    def run(self, *, dry_run: bool = False, hints: Mapping[str, Sequence[str]] | None = None) -> PassReport:
        """Read, plan and (unless ``dry_run``) apply; cursors advance only after a full, committed pass.

        ``hints`` (member -> refs, from webhooks) makes a targeted pass: only those items are read, in one batch
        per member, and no cursor moves (the next full pass still reads every change, at least once).
        """
        if hints is not None:
            batches = {member: self._hinted(member, hints.get(member, ())) for member in self.group.codecs}
        else:
            with self.store.transaction() as tx:
                cursors = {m: tx.cursor(endpoint_key(self.group.name, m)) for m in self.group.codecs}
            batches = {member: self.connectors[member].changes(cursor) for member, cursor in cursors.items()}
        with self.store.transaction() as tx:
            touched = self._collect(batches, tx)
            self._complete(touched, tx)
            bases = {sync_id: tx.base(sync_id) for sync_id in touched}
        for sync_id, item in sorted(touched.items()):
            base = bases[sync_id]
            item.views = {m: self.group.codecs[m].align(view, base) for m, view in item.views.items()}
            decided = plan(
                self.group.policy, Item(sync_id, bases[sync_id], item.views, item.deleted, item.out_of_scope)
            )
            self.report.plans.append(decided)
            if not dry_run:
                self._execute(decided, item)
        if not dry_run and not self.report.failures and hints is None:
            with self.store.transaction() as tx:
                for member, batch in batches.items():
                    tx.set_cursor(endpoint_key(self.group.name, member), batch.cursor)
        return self.report

    # ----- reading -----------------------------------------------------------------------------------------

    def _hinted(self, member: str, refs: Sequence[str]) -> ChangeBatch:
        """The hinted refs of one member as a change batch (a ref that no longer exists reads as deleted)."""
        unique = list(dict.fromkeys(refs))
        records = tuple(self.connectors[member].fetch(unique)) if unique else ()
        found = {record.ref for record in records}
        return ChangeBatch(records, tuple(ref for ref in unique if ref not in found), cursor={})

    def _collect(self, batches: Mapping[str, ChangeBatch], tx: Tx) -> dict[str, _Touched]:
        touched: dict[str, _Touched] = defaultdict(_Touched)
        for member, batch in batches.items():
            codec = self.group.codecs[member]
            key = endpoint_key(self.group.name, member)
            listed: set[str] = set()
            for record in batch.records:
                listed.add(record.ref)
                link = tx.find_link(key, record.ref)
                if link is not None and link.version == record.version:
                    continue  # syncd's own write coming back, or nothing new since: no echo
                if not codec.in_scope(record):
                    if link is not None:
                        touched[link.sync_id].out_of_scope[member] = record.ref
                    continue
                # A known item by its link; a lost create adopted by its marker; otherwise a new item.
                sync_id = link.sync_id if link is not None else (record.marker or str(ULID()))
                view, problems = codec.decode(record)
                self.report.problems += problems
                touched[sync_id].views[member] = view
                touched[sync_id].seen[member] = record
            for ref in batch.deleted:
                link = tx.find_link(key, ref)
                if link is not None:
                    touched[link.sync_id].deleted[member] = ref
            if batch.full_scan:
                linked = tx.endpoint_links(key)
                # A listing missing most linked items is an outage, not a mass deletion.
                check_side(key, len(linked), sum(1 for link in linked if link.ref in listed))
                for link in linked:
                    if link.ref not in listed:
                        touched[link.sync_id].deleted[member] = link.ref
        return dict(touched)

    def _complete(self, touched: Mapping[str, _Touched], tx: Tx) -> None:
        """Fetch the current view of each touched item at the members that did not report it (a batch each)."""
        wanted: dict[str, dict[str, str]] = defaultdict(dict)
        for sync_id, item in touched.items():
            for key, link in tx.links(sync_id).items():
                member = key.split("/", 1)[1]
                if member in item.views or member in item.deleted or member in item.out_of_scope:
                    continue
                wanted[member][link.ref] = sync_id
        for member, refs in wanted.items():
            codec = self.group.codecs[member]
            found = {record.ref: record for record in self.connectors[member].fetch(list(refs))}
            for ref, sync_id in refs.items():
                record = found.get(ref)
                if record is None:
                    touched[sync_id].deleted[member] = ref
                elif not codec.in_scope(record):
                    touched[sync_id].out_of_scope[member] = ref
                else:
                    view, problems = codec.decode(record)
                    self.report.problems += problems
                    touched[sync_id].views[member] = view
                    touched[sync_id].seen[member] = record

    # ----- writing -----------------------------------------------------------------------------------------

    def _execute(self, decided: Plan, item: _Touched) -> None:
        plan_id = str(ULID())
        with self.store.transaction() as tx:
            tx.journal_add(plan_id, decided.sync_id, self.group.name, [_step_json(step) for step in decided.steps])
        results: list[tuple[Step, Record | None]] = []
        try:
            for step in decided.steps:
                results.append((step, self._apply(decided.sync_id, step)))
        except ConnectorError as error:
            self.report.failures[decided.sync_id] = str(error)
        with self.store.transaction() as tx:
            self._commit(tx, decided, item, results, failed=decided.sync_id in self.report.failures)
            tx.journal_done(plan_id)
        self._measure(decided, item, results)

    def _measure(self, decided: Plan, item: _Touched, results: list[tuple[Step, Record | None]]) -> None:
        """The propagation lag of each mirror written: commit time minus the origin change's time in its tool."""
        now = datetime.now(UTC)
        for step, written in results:
            if written is None or not isinstance(step, Write | Create):
                continue
            origins = {decided.origins[name] for name in step.values if name in decided.origins}
            times = [item.views[o].modified for o in origins if o in item.views] or [
                view.modified for view in item.views.values() if view.endpoint != step.endpoint
            ]
            if times:
                self.report.lags.append(max(0.0, (now - max(times)).total_seconds()))

    def _apply(self, sync_id: str, step: Step) -> Record | None:
        connector = self.connectors[step.endpoint]
        codec = self.group.codecs[step.endpoint]
        if isinstance(step, Write):
            fields, problems = codec.encode(step.values)
            self.report.problems += problems
            self.report.writes += 1
            return connector.update(step.ref, fields) if fields else None
        if isinstance(step, Create):
            fields, problems = codec.encode(step.values)
            self.report.problems += problems
            self.report.writes += 1
            return connector.create(fields, sync_id)
        if isinstance(step, Archive):
            self.report.writes += 1
            return connector.archive(step.ref)
        return None

    def _commit(
        self, tx: Tx, decided: Plan, item: _Touched, results: list[tuple[Step, Record | None]], *, failed: bool
    ) -> None:
        """Links, versions, base values and audit events of one item, in the caller's transaction."""
        group = self.group.name
        sync_id = decided.sync_id
        if tx.item_group(sync_id) is None:
            tx.new_item(sync_id, group)
        links = tx.links(sync_id)
        for member, record in item.seen.items():
            key = endpoint_key(group, member)
            # After a failure the item keeps its identity (links) but not the versions it was read at, so the
            # next pass reads it as changed and plans it again instead of skipping it as already synced.
            version = "" if failed else record.version
            if key in links:
                tx.set_version(sync_id, key, version)
            else:
                tx.link(sync_id, key, record.ref, version)
        for member in (*item.deleted, *item.out_of_scope):
            tx.unlink(sync_id, endpoint_key(group, member))
        for step, written in results:
            key = endpoint_key(group, step.endpoint)
            if isinstance(step, Unlink):
                tx.unlink(sync_id, key)
            elif isinstance(step, Create) and written is not None:
                tx.link(sync_id, key, written.ref, written.version)
            elif written is not None:
                tx.set_version(sync_id, key, written.version)
            append(tx, self._event(decided, step, written))
        for conflict in decided.conflicts:
            losers = {k: v for k, v in conflict.values.items() if k != conflict.winner}
            append(
                tx,
                AuditEvent(
                    "conflict",
                    group=group,
                    sync_id=sync_id,
                    field=conflict.field,
                    new=conflict.result,
                    origin=conflict.winner,
                    rule=conflict.rule,
                    loser=losers or None,
                    outcome="held" if conflict.held else "decided",
                    config_version=self.config_version,
                ),
            )
        if not failed:
            tx.set_base(sync_id, decided.base)

    def _event(self, decided: Plan, step: Step, record: Record | None) -> AuditEvent:
        values = step.values if isinstance(step, Write | Create) else None
        origin_member = next(iter(decided.origins.values()), None)
        return AuditEvent(
            type(step).__name__.lower(),
            group=self.group.name,
            sync_id=decided.sync_id,
            endpoint=step.endpoint,
            refs={step.endpoint: record.ref} if record is not None else {},
            new=values,
            origin=origin_member,
            outcome="applied",
            config_version=self.config_version,
            message=step.reason,
        )


def _step_json(step: Step) -> dict[str, Any]:
    return {"kind": type(step).__name__, **asdict(step)}
