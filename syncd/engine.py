"""One sync pass of one group: read what changed, match it to items, plan each item, apply, commit, advance.

Per pass (DESIGN.md, data flow): each member's connector reports records changed since its cursor; each record is
matched to an item by its link (or adopted by its marker after a lost create, or born as a new item) and decoded
by the member's codec; the other members' current views of every touched item are fetched in one batch per
member; the pure planner decides; each plan is journaled, applied through the connectors, and its base values,
link versions and audit events are committed in one transaction by the :mod:`~syncd.executor`; cursors advance
last, once every item before them is committed or recorded as failed (and retried by id). A record at the version
syncd last saw that still holds the item's base is syncd's own write coming back, or nothing new: it is skipped, so
nothing echoes (versions save work; the state decides). A member whose tool cannot be read is left out of the pass,
not the group: the others sync between themselves and it catches up from its own cursor.
"""

from __future__ import annotations

import concurrent.futures
import functools
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ulid import ULID

from syncd.connector import Connector
from syncd.errors import ConnectorError, FatalError
from syncd.executor import Executor, PassReport, Touched, endpoint_key
from syncd.fanout import each
from syncd.mapping import Group
from syncd.merge import Item, changes, check_side, heed, plan, same
from syncd.model import ChangeBatch, FieldChange, Record, last_changes
from syncd.plan import Plan, Refusal, View
from syncd.store import CHUNK, Link, Store, Tx

__all__ = ["Pass", "PassReport", "endpoint_key"]


def _by_member(rows: Mapping[str, Any]) -> dict[str, Any]:
    """A store mapping keyed by endpoint key ("group/member"), keyed by member."""
    return {key.split("/", 1)[1]: values for key, values in rows.items()}


TIMED_RULES = frozenset({"latest", "merge-text", "prefer"})
"""Rules whose decision can come down to which change was later (merge-text and prefer fall back to latest)."""


class Pass:
    """One pass over one group (``run`` it once; a new pass is a new object)."""

    def __init__(
        self,
        group: Group,
        connectors: Mapping[str, Connector],
        store: Store,
        *,
        config_version: str = "",
        quarantine_after: int = 3,
        pool: concurrent.futures.Executor | None = None,
        connectors_for_thread: Callable[[], Mapping[str, Connector]] | None = None,
    ) -> None:
        """Set up a pass; with ``pool``, items are applied in parallel.

        A backfill is bound by API latency, not by syncd: each pool thread uses its own connectors from
        ``connectors_for_thread``, since SDK clients are not thread-safe.
        """
        if pool is not None and connectors_for_thread is None:
            raise ValueError("a pool needs connectors_for_thread: SDK clients must not be shared between threads")
        self.group = group
        self.connectors = connectors
        self.store = store
        self.config_version = config_version
        self.quarantine_after = quarantine_after
        self.pool = pool
        self.connectors_for_thread = connectors_for_thread
        self.report = PassReport(group.name)
        self.executor = Executor(
            group, connectors, store, self.report, config_version=config_version, quarantine_after=quarantine_after
        )

    def run(self, *, dry_run: bool = False, hints: Mapping[str, Sequence[str]] | None = None) -> PassReport:
        """Recover, read, plan and (unless ``dry_run``) apply; cursors advance only after a completed pass.

        ``hints`` (member -> refs, from webhooks) makes a targeted pass: only those items are read, in one batch
        per member, and no cursor moves (the next full pass still reads every change, at least once). Besides what
        changed, a pass plans again the items a crash interrupted, the items that failed before (until they are
        quarantined) and the items whose held conflict a person decided; quarantined items are left out.
        """
        replan, skip, decisions = self._carried_over(dry_run=dry_run)
        down: dict[str, ConnectorError] = {}
        prefetched: dict[str, dict[str, Record | None]] = {}
        if hints is not None:
            with self.store.transaction() as tx:
                linked = self._linked(hints, tx)
            batches = self._read(
                lambda member: self._hinted(member, hints.get(member, ()), linked.get(member, ()), prefetched), down
            )
        else:
            with self.store.transaction() as tx:
                cursors = {m: tx.cursor(endpoint_key(self.group.name, m)) for m in self.group.codecs}
            batches = self._read(lambda member: self.connectors[member].changes(cursors[member]), down)
        # No transaction is open while a tool is waited on: the store's write lock is never held over the network.
        with self.store.transaction() as tx:
            touched, missing = self._collect(batches, tx)
        for member, links in self._gone(missing).items():
            for link in links:
                touched[link.sync_id].deleted[member] = link.ref
        with self.store.transaction() as tx:
            for sync_id in replan:
                if sync_id not in touched and tx.item_group(sync_id) == self.group.name:
                    touched[sync_id] = Touched()
            for sync_id in skip:
                touched.pop(sync_id, None)  # quarantined, or a crash's create not yet resolved: not this pass
            wanted, versions = self._wanted(touched, tx, down)
        self._complete(touched, wanted, versions, down, prefetched)
        with self.store.transaction() as tx:
            # A few batch reads for every item at once, not four queries per item.
            known = tx.bases(touched)
            bases = {sync_id: known.get(sync_id) for sync_id in touched}
            echoes = tx.per_endpoint("echoes", touched)
            behind = tx.per_endpoint("behind", touched)
            stored = tx.per_endpoint("refused", touched)
            refusals = {sync_id: _by_member(stored.get(sync_id, {})) for sync_id in touched}
        work: list[tuple[Plan, Touched]] = []
        for sync_id, item in sorted(touched.items()):
            base = bases[sync_id]
            item.refusals = refusals[sync_id]
            item.views = {
                m: heed(self.group.codecs[m].align(view, base), base, item.refusals.get(m, {}))
                for m, view in item.views.items()
            }
            whole = Item(
                sync_id,
                base,
                item.views,
                item.deleted,
                item.out_of_scope,
                decisions.get(sync_id, {}),
                _by_member(echoes.get(sync_id, {})),
                dict(item.unavailable),
                _by_member(behind.get(sync_id, {})),
            )
            decided = self._plan(whole, item)
            self.report.plans.append(decided)
            work.append((decided, item))
        if not dry_run:
            self._apply_all(work)
        if not dry_run and hints is None:
            # Every item read is committed, or recorded as failed and retried by id: the cursors may move on. A
            # member that could not be read keeps its cursor, and catches up from it when its tool answers again.
            with self.store.transaction() as tx:
                for member, batch in batches.items():
                    if member not in down:
                        tx.set_cursor(endpoint_key(self.group.name, member), batch.cursor)
        self._record_endpoints(down, read=set(batches) if hints is None else set(hints) & set(batches))
        return self.report

    def _apply_all(self, work: Sequence[tuple[Plan, Touched]]) -> None:
        if self.pool is not None and len(work) > 1:
            self._apply_in_pool(self.pool, work)
        else:
            for decided, item in work:
                self._apply(self.executor, decided, item)

    def _read(self, read: Callable[[str], ChangeBatch], down: dict[str, ConnectorError]) -> dict[str, ChangeBatch]:
        """Each member's batch, all read at once; a member whose tool fails (after retries) is left out this pass.

        Its error goes to ``down``: the other members keep syncing between themselves, and items that need the
        member wait for it (see :class:`~syncd.merge.Item` ``unavailable``).
        """
        batches: dict[str, ChangeBatch] = {}
        read_all = each({member: functools.partial(read, member) for member in self.group.codecs})
        for member, outcome in read_all.items():
            if isinstance(outcome, ConnectorError):
                down[member] = outcome
            elif isinstance(outcome, Exception):
                raise outcome
            else:
                batches[member] = outcome
        return batches

    def _record_endpoints(self, down: Mapping[str, ConnectorError], *, read: set[str]) -> None:
        """Remember which endpoints failed and why (``syncd status``), and which answered again."""
        self.report.down = {member: f"{type(error).__name__}: {error}" for member, error in down.items()}
        self.report.fatal = {member for member, error in down.items() if isinstance(error, FatalError)}
        with self.store.transaction() as tx:
            for member in self.group.codecs:
                key = endpoint_key(self.group.name, member)
                if member in down:
                    tx.endpoint_failing(key, self.report.down[member])
                elif member in read:
                    tx.endpoint_answers(key)

    def _plan(self, whole: Item, item: Touched) -> Plan:
        """Plan one item; planned again where the tools' history adds what their state cannot show.

        That is a field moved away and back at one endpoint while it changed at another (:meth:`_returned`), and
        the change time of each field in a conflict decided by time (:meth:`_timed`). Each endpoint's history is
        read at most once, and only for such items.
        """
        histories: dict[str, list[FieldChange] | None] = {}
        decided = plan(self.group.policy, whole)
        returned = self._returned(whole, item, histories)
        if returned:
            item.views = {**item.views, **returned}
            whole = replace(whole, views=item.views)
            decided = plan(self.group.policy, whole)
        timed = self._timed(decided, item, histories)
        if not timed:
            return decided
        item.views = {**item.views, **timed}
        return plan(self.group.policy, replace(whole, views=item.views))

    def _history(
        self, member: str, ref: str, histories: dict[str, list[FieldChange] | None]
    ) -> list[FieldChange] | None:
        """One endpoint's history of the item, read once per plan; None if the tool cannot answer now."""
        if member not in histories:
            try:
                histories[member] = self.connectors[member].history(ref)
            except ConnectorError as error:
                if isinstance(error, FatalError):
                    raise
                histories[member] = None
        return histories[member]

    def _returned(self, whole: Item, item: Touched, histories: dict[str, list[FieldChange] | None]) -> dict[str, View]:
        """Views where a person changed a field since the base was agreed and left it at the base's value.

        By state alone such an endpoint looks untouched, and a change of the same field elsewhere simply wins: Ana
        moves the issue to Done and back to To Do while Gus moves the task to In Progress, and Gus's move would
        override hers although hers came later and Engineering owns the field (found by the long fault run). Only
        such a field at such an endpoint costs a read: one that changed elsewhere, at an endpoint whose record
        changed since it was last synced. A tool that cannot answer leaves the view as it was.
        """
        if whole.base is None:
            return {}
        views = list(item.views.values())
        wanted: dict[str, set[str]] = defaultdict(set)
        for name, policy in self.group.policy.fields.items():
            changed = changes(name, policy, whole.base, views, whole.echoes)
            if not changed:
                continue
            for view in views:
                if (
                    view.endpoint not in changed
                    and view.endpoint in item.changed
                    and view.endpoint in item.synced
                    and name in view.values
                    and same(view.values[name], whole.base.get(name))
                    and (policy.sources is None or view.endpoint in policy.sources)
                ):
                    wanted[view.endpoint].add(name)
        found: dict[str, View] = {}
        for member, names in sorted(wanted.items()):
            view = item.views[member]
            history = self._history(member, view.ref, histories)
            if history is None:
                continue
            since = item.synced[member]
            news = [c for c in history if not c.by_self and c.at > since and c.field in names]
            if news:
                found[member] = replace(
                    view,
                    returned=view.returned | {change.field for change in news},
                    field_times={**view.field_times, **last_changes(news)},
                )
        return found

    def _timed(self, decided: Plan, item: Touched, histories: dict[str, list[FieldChange] | None]) -> dict[str, View]:
        """The views of a conflict decided by time, with each field's change time from the tool's history.

        Only conflicts cost these reads (one per endpoint involved); a tool that cannot answer leaves its view as
        it was (the item's modification time stands in), and the pass goes on.
        """
        involved = {
            endpoint
            for conflict in decided.conflicts
            if not conflict.held and conflict.rule.split(":", 1)[0] in TIMED_RULES
            for endpoint in conflict.values
        }
        timed: dict[str, View] = {}
        copied: dict[str, set[str]] = {}
        for member in sorted(involved & item.views.keys()):
            view = item.views[member]
            history = self._history(member, view.ref, histories)
            if history is None:
                continue
            # A person's change of a field is what the rule weighs; syncd's own copies count only where none is known.
            people = last_changes([c for c in history if not c.by_self])
            every = last_changes(history)
            copied[member] = {name for name, at in every.items() if name not in people or at > people[name]}
            timed[member] = replace(view, field_times={**view.field_times, **every, **people})
        return self._copies_at_their_origin(decided, timed, copied)

    @staticmethod
    def _copies_at_their_origin(decided: Plan, timed: dict[str, View], copied: dict[str, set[str]]) -> dict[str, View]:
        """Weigh a value syncd copied into a member at the time of the change it copies, not of the copy.

        A member that could not be read catches up with a person's edit made there meanwhile, while syncd copied an
        earlier edit of the same field into the others: the copies were written after the person's edit, and taken
        at their own time they would beat it by ``latest`` (found by the long fault runs: titles lost). A copy holds
        the value of the member it came from; it is weighed at that member's time.
        """
        for conflict in decided.conflicts:
            name = conflict.field
            for member, value in conflict.values.items():
                if member not in timed or name not in copied.get(member, set()):
                    continue
                origins = [
                    timed[other].field_times.get(name, timed[other].modified)
                    for other, theirs in conflict.values.items()
                    if other != member and other in timed and name not in copied[other] and same(theirs, value)
                ]
                if origins:
                    view = timed[member]
                    timed[member] = replace(view, field_times={**view.field_times, name: max(origins)})
        return timed

    def _apply(self, executor: Executor, decided: Plan, item: Touched) -> None:
        executor.execute(decided, item)
        report = executor.report
        if self.group.comments and (decided.sync_id not in report.failures or decided.sync_id in report.waiting):
            executor.mirror_comments(decided.sync_id, item)

    def _apply_in_pool(self, pool: concurrent.futures.Executor, work: Sequence[tuple[Plan, Touched]]) -> None:
        """Apply items in parallel, one executor (own connectors, own partial report) per pool thread.

        Items are independent (each has its own refs and its own transaction), so their order does not matter;
        the shared per-credential rate limiters keep the threads together under each tool's budget. A fatal error
        in one thread stops handing out items and is raised once the running ones are done.
        """
        local = threading.local()
        partial: list[PassReport] = []
        lock = threading.Lock()
        assert self.connectors_for_thread is not None
        connectors_for_thread = self.connectors_for_thread

        def executor() -> Executor:
            found: Executor | None = getattr(local, "executor", None)
            if found is None:
                report = PassReport(self.group.name)
                found = Executor(
                    self.group,
                    connectors_for_thread(),
                    self.store,
                    report,
                    config_version=self.config_version,
                    quarantine_after=self.quarantine_after,
                )
                local.executor = found
                with lock:
                    partial.append(report)
            return found

        stop = threading.Event()

        def one(decided: Plan, item: Touched) -> None:
            if not stop.is_set():
                self._apply(executor(), decided, item)

        futures = [pool.submit(one, decided, item) for decided, item in work]
        error: BaseException | None = None
        for future in concurrent.futures.as_completed(futures):
            failure = future.exception()
            if failure is not None and error is None:
                error = failure
                stop.set()
        for report in partial:
            self.report.waiting |= report.waiting
            self.report.writes += report.writes
            self.report.problems += report.problems
            self.report.failures.update(report.failures)
            self.report.quarantined += report.quarantined
            self.report.lags += report.lags
        if error is not None:
            raise error

    def _carried_over(self, *, dry_run: bool) -> tuple[set[str], set[str], dict[str, dict[str, str]]]:
        """Items to plan whatever changed, items to leave out, and people's decisions on held conflicts."""
        replan: set[str]
        unresolved: set[str]
        if dry_run:
            with self.store.transaction() as tx:
                replan, unresolved = set(), {entry.sync_id for entry in tx.journal_for(self.group.name)}
        else:
            replan, unresolved = self.executor.recover()
        with self.store.transaction() as tx:
            held = {entry.sync_id for entry in tx.quarantined(self.group.name, held=True)}
            replan |= {entry.sync_id for entry in tx.quarantined(self.group.name, held=False)}
            decisions: dict[str, dict[str, str]] = defaultdict(dict)
            for conflict in tx.conflicts(group=self.group.name, states=("decided",)):
                if conflict.take is not None:
                    decisions[conflict.sync_id][conflict.field] = conflict.take
        return replan | set(decisions), held | unresolved, decisions

    # ----- reading -----------------------------------------------------------------------------------------

    def _holds_base(
        self, member: str, record: Record, base: Mapping[str, Any] | None, refusals: Mapping[str, Refusal]
    ) -> bool:
        """Whether a record the feed names at the version syncd last saw still decodes to the item's base.

        A version only saves work, it never hides a change: Asana does not move ``modified_at`` when a task moves to
        another section (its API reference lists "moving to a new container" among what does not), so a status set
        by dragging a card arrives at an unchanged version and is found by comparing state.
        """
        if base is None:
            return False
        codec = self.group.codecs[member]
        view = heed(codec.align(codec.decode(record)[0], base), base, refusals)
        return all(same(value, base[name]) for name, value in view.values.items() if name in base)

    def _unchanged(
        self, member: str, key: str, record: Record, sync_id: str, *, tx: Tx, bases: Mapping[str, dict[str, Any]]
    ) -> bool:
        """:meth:`_holds_base`, with the item's refusals there read only when the record differs from the base."""
        base = bases.get(sync_id)
        if self._holds_base(member, record, base, {}):
            return True
        refusals = tx.refusals(sync_id).get(key, {})
        return bool(refusals) and self._holds_base(member, record, base, refusals)

    @staticmethod
    def _unavailable(member: str, refs: Mapping[str, str], touched: Mapping[str, Touched]) -> None:
        """Mark a member whose tool failed as unavailable on every touched item (with the item's ref where known)."""
        for ref, sync_id in refs.items():
            touched[sync_id].unavailable[member] = ref
        for item in touched.values():
            item.unavailable.setdefault(member, None)

    def _linked(self, hints: Mapping[str, Sequence[str]], tx: Tx) -> dict[str, list[str]]:
        """Per member, the refs of the items the hinted refs are linked to, at the members not hinted for them.

        A webhook names the changed record; its item's other views are known from the links before anything is
        read, so they are read in the same round trip as the record itself instead of one after it.
        """
        others: dict[str, list[str]] = defaultdict(list)
        for member, refs in hints.items():
            key = endpoint_key(self.group.name, member)
            for ref in refs:
                link = tx.find_link(key, ref)
                if link is None:
                    continue
                for other_key, other in tx.links(link.sync_id).items():
                    other_member = other_key.split("/", 1)[1]
                    if other_member != member and other_member in self.group.codecs:
                        others[other_member].append(other.ref)
        return dict(others)

    def _hinted(
        self,
        member: str,
        refs: Sequence[str],
        linked: Sequence[str],
        prefetched: dict[str, dict[str, Record | None]],
    ) -> ChangeBatch:
        """The hinted refs of one member as a change batch (a ref that no longer exists reads as deleted).

        The refs of linked items (``linked``) are read in the same request and kept in ``prefetched`` (ref ->
        record, None if it is gone) for :meth:`_complete`, which then has nothing left to read for them.
        """
        unique = list(dict.fromkeys(refs))
        extra = [ref for ref in dict.fromkeys(linked) if ref not in set(unique)]
        records = tuple(self.connectors[member].fetch([*unique, *extra])) if unique or extra else ()
        found = {record.ref: record for record in records}
        prefetched[member] = {ref: found.get(ref) for ref in extra}
        return ChangeBatch(
            tuple(found[ref] for ref in unique if ref in found),
            tuple(ref for ref in unique if ref not in found),
            cursor={},
        )

    def _collect(self, batches: Mapping[str, ChangeBatch], tx: Tx) -> tuple[dict[str, Touched], dict[str, list[Link]]]:
        """The items the batches touch, and per member the links a full listing missed (deleted, or not seen)."""
        touched: dict[str, Touched] = defaultdict(Touched)
        missing: dict[str, list[Link]] = {}
        for member, batch in batches.items():
            key = endpoint_key(self.group.name, member)
            listed: set[str] = set()
            # In chunks: the links and bases of one chunk of records at a time, a few queries each, never all.
            for start in range(0, len(batch.records), CHUNK):
                chunk = batch.records[start : start + CHUNK]
                found = tx.find_links(key, [record.ref for record in chunk])
                bases = tx.bases(
                    found[r.ref].sync_id for r in chunk if r.ref in found and found[r.ref].version == r.version
                )
                for record in chunk:
                    listed.add(record.ref)
                    self._take(member, record, found.get(record.ref), touched, tx=tx, bases=bases)
            found = tx.find_links(key, batch.deleted)
            for ref in batch.deleted:
                link = found.get(ref)
                if link is not None:
                    touched[link.sync_id].deleted[member] = ref
            if batch.full_scan or batch.present is not None:
                # A listing of refs alone (``present``) tells deletions as a full scan does, under the same guard.
                listed |= batch.present or frozenset()
                linked = 0
                unlisted: list[Link] = []
                for link in tx.each_endpoint_link(key):  # streamed: only the links the listing missed are kept
                    linked += 1
                    if link.ref not in listed:
                        unlisted.append(link)
                # A listing missing most linked items is an outage, not a mass deletion.
                check_side(key, linked, linked - len(unlisted))
                missing[member] = unlisted
        return touched, {member: links for member, links in missing.items() if links}

    def _take(
        self,
        member: str,
        record: Record,
        link: Link | None,
        touched: dict[str, Touched],
        *,
        tx: Tx,
        bases: Mapping[str, dict[str, Any]],
    ) -> None:
        """File one record of a member's batch under its item, unless it holds nothing new or is not to mirror."""
        codec = self.group.codecs[member]
        key = endpoint_key(self.group.name, member)
        unchanged = link is not None and link.version == record.version
        if link is not None and unchanged and self._unchanged(member, key, record, link.sync_id, tx=tx, bases=bases):
            return  # syncd's own write coming back, or nothing new since: no echo
        if not codec.in_scope(record):
            if link is not None:
                touched[link.sync_id].out_of_scope[member] = record.ref
            return
        if link is None and record.marker is None and record.mine:
            # syncd made it and it has no link: a create whose answer was lost, adopted by the recovery of its
            # journal entry, never mirrored as a person's new item (that would copy it everywhere).
            self.report.orphans.append(f"{member}/{record.ref}")
            return
        # A known item by its link; a lost create adopted by its marker; otherwise a new item.
        sync_id = link.sync_id if link is not None else (record.marker or str(ULID()))
        view, problems = codec.decode(record)
        self.report.problems += problems
        touched[sync_id].views[member] = view
        touched[sync_id].seen[member] = record
        if not unchanged:
            touched[sync_id].changed.add(member)

    def _gone(self, missing: Mapping[str, Sequence[Link]]) -> dict[str, list[Link]]:
        """The links a listing missed whose record is really gone, read one batch per member (all at once) to be sure.

        A listing paged by position skips a record when another moves or disappears meanwhile (an edit while
        Jira's scan ordered by ``updated`` runs, a deletion while keys are listed), and Cloud search may not list
        a just-made record yet: taken for deletions, those would archive live items everywhere. A record read
        back is not gone; if the read fails, nothing of that member is taken for deleted this pass.
        """
        read = each(
            {
                member: functools.partial(self.connectors[member].fetch, [link.ref for link in links])
                for member, links in missing.items()
            }
        )
        gone: dict[str, list[Link]] = {}
        for member, outcome in read.items():
            if isinstance(outcome, ConnectorError):
                continue
            if isinstance(outcome, Exception):
                raise outcome
            found = {record.ref for record in outcome}
            gone[member] = [link for link in missing[member] if link.ref not in found]
        return gone

    def _wanted(
        self, touched: Mapping[str, Touched], tx: Tx, down: Mapping[str, ConnectorError]
    ) -> tuple[dict[str, dict[str, str]], dict[tuple[str, str], str]]:
        """Per member, the refs (-> item) of touched items it did not report, and the versions syncd last saw.

        A member whose tool cannot be read (``down``) is marked unavailable on each item instead.
        """
        wanted: dict[str, dict[str, str]] = defaultdict(dict)
        versions: dict[tuple[str, str], str] = {}
        linked = tx.links_of(touched)
        for sync_id, item in touched.items():
            item.down = down
            item.unavailable.update(dict.fromkeys(down))
            for key, link in linked.get(sync_id, {}).items():
                member = key.split("/", 1)[1]
                if link.synced_at is not None:
                    item.synced[member] = link.synced_at
                if member in down:
                    item.unavailable[member] = link.ref
                    continue
                if member in item.views or member in item.deleted or member in item.out_of_scope:
                    continue
                wanted[member][link.ref] = sync_id
                versions[(member, link.ref)] = link.version
        return dict(wanted), versions

    def _complete(
        self,
        touched: Mapping[str, Touched],
        wanted: Mapping[str, Mapping[str, str]],
        versions: Mapping[tuple[str, str], str],
        down: dict[str, ConnectorError],
        prefetched: Mapping[str, Mapping[str, Record | None]],
    ) -> None:
        """Fetch the current view of each touched item at the members that did not report it, all members at once.

        One batch per member, less what was read with the hinted records (``prefetched``: ref -> record, None if
        gone); a member that fails now is marked unavailable on each item (see :meth:`_wanted`).
        """
        unread = {
            member: [ref for ref in refs if ref not in prefetched.get(member, {})] for member, refs in wanted.items()
        }
        read = each(
            {member: functools.partial(self.connectors[member].fetch, refs) for member, refs in unread.items() if refs}
        )
        for member, refs in wanted.items():
            outcome = read.get(member, [])
            if isinstance(outcome, ConnectorError):
                down[member] = outcome
                self._unavailable(member, refs, touched)
                continue
            if isinstance(outcome, Exception):
                raise outcome
            found = {ref: record for ref, record in prefetched.get(member, {}).items() if record is not None}
            found |= {record.ref: record for record in outcome}
            codec = self.group.codecs[member]
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
                    if record.version != versions[(member, ref)]:
                        touched[sync_id].changed.add(member)
