"""One sync pass of one group, as a pipeline: recover, read, plan, apply (and commit), advance.

The stages, in the order of DESIGN.md's data flow, each in its own module:

- **recover** (:mod:`syncd.recovery`): the journal entries a crash left are resolved first;
- **read** (:mod:`syncd.reading`): what changed in each member's tool, matched to items, with every other view of
  those items, all members at once and no store transaction open while a tool is waited on;
- **plan** (:mod:`syncd.decide`, pure): each item's plan; where the plan needs the tools' history, the stage says
  which, the pass reads it for every item at once, and plans again;
- **guard** (:mod:`syncd.guarding`): a mass change (many archives, unlinks or recreates toward one endpoint) is
  held for a person, the rest goes on;
- **apply** (:mod:`syncd.executor`): each plan journaled, applied and committed in one transaction, then the item's
  comments mirrored (:mod:`syncd.comment_mirror`); items are applied in parallel when a pool is given;
- **advance**: cursors move last, once every item read is committed or recorded as failed (and retried by id).

Given the group's ``lease``, every stage gets the store's fenced view (:meth:`syncd.store.Store.fenced`): each of
the pass's transactions checks the fencing token first, so a pass whose lease was lost (it stalled past the TTL,
another process took the group) raises LeaseLost at its next commit and stops, never striking an item. The
tools cannot check a token, so with the lease's ``tenure`` every request is first checked against the lease by
this process's own clock (:mod:`syncd.tenure`): a pass paused past its lease sends nothing when it resumes. What
it journaled and did not commit is resolved by the next holder's recovery, as after a crash.

A member whose tool cannot be read is left out of the pass, not the group: the others sync between themselves
and it catches up from its own cursor.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import functools
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any, TypeVar

from syncd.comment_mirror import CommentMirror
from syncd.connector import Connector
from syncd.decide import Decided, decide
from syncd.errors import ConnectorError, FatalError
from syncd.executor import Executor
from syncd.failures import Failures
from syncd.fanout import each
from syncd.guard import Threshold
from syncd.guarding import Guarding, restorable
from syncd.mapping import Codec, Group
from syncd.merge import Item, heed
from syncd.model import FieldChange, History
from syncd.notices import Outbox
from syncd.pass_data import PassReport, Touched, endpoint_key
from syncd.plan import Plan
from syncd.reading import Found, Reader
from syncd.recovery import Recovery
from syncd.redact import redact
from syncd.store import Lease, Store
from syncd.tenure import Tenure, holding

__all__ = ["FOLD_ROUNDS", "Pass", "PassReport", "endpoint_key"]

FOLD_ROUNDS = 5
"""Rounds of hints folded into one pass at most; more wait for the group's next pass (which reads them too)."""

Hints = Mapping[str, Sequence[str]]
"""Member -> refs a webhook named."""


HistoryRows = dict[str, list[FieldChange] | None]
"""Item -> one member's history of it (None: the tool could not answer)."""

T = TypeVar("T")


def _raised(outcome: T | Exception) -> T:
    """A fanned-out call's result, or its exception raised here."""
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def _by_member(rows: Mapping[str, Any]) -> dict[str, Any]:
    """A store mapping keyed by endpoint key ("group/member"), keyed by member."""
    return {key.split("/", 1)[1]: values for key, values in rows.items()}


def _expanded(codec: Codec, history: History) -> list[FieldChange]:
    """A history a read carried, named by the canonical fields the codec reads."""
    return codec.history(history.expanded())


class _Histories(MutableMapping[str, list[FieldChange] | None]):
    """One item's histories by member (see :data:`syncd.decide.Histories`).

    A history the read carried whole is named at once and expanded only when the plan asks for it: most items of
    a pass are planned without any history (nothing changed, or nothing decided by time or attributed).
    """

    __slots__ = ("_carried", "_known")

    def __init__(self) -> None:
        self._known: dict[str, list[FieldChange] | None] = {}
        self._carried: dict[str, Callable[[], list[FieldChange]]] = {}

    def carry(self, member: str, expand: Callable[[], list[FieldChange]]) -> None:
        """The member's history, to be had by calling ``expand``."""
        self._carried[member] = expand

    def __getitem__(self, member: str) -> list[FieldChange] | None:
        if member in self._carried:
            self._known[member] = self._carried.pop(member)()
        return self._known[member]

    def __setitem__(self, member: str, history: list[FieldChange] | None) -> None:
        self._carried.pop(member, None)
        self._known[member] = history

    def __delitem__(self, member: str) -> None:
        if self._carried.pop(member, None) is None:
            del self._known[member]

    def __iter__(self) -> Iterator[str]:
        return iter([*self._known, *self._carried])

    def __len__(self) -> int:
        return len(self._known) + len(self._carried)


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
        lease: Lease | None = None,
        tenure: Tenure | None = None,
        mass_change: Mapping[str, Threshold] | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        """Set up a pass; with ``pool``, items are applied in parallel; with ``lease``, every commit is fenced.

        ``tenure`` is that lease by this process's clock (:meth:`syncd.leasing.Leases.tenure`): every request to a
        tool is checked against it first, so a pass whose process was paused past the lease sends nothing more.

        ``mass_change``: member -> its mass-change threshold (the defaults where none is given). ``outbox``: where
        held conflicts, quarantined items, guards and failing endpoints are queued for notification, in the
        transaction that records each (none: nobody is notified).

        A backfill is bound by API latency, not by syncd: each pool thread uses its own connectors from
        ``connectors_for_thread``, since SDK clients are not thread-safe.
        """
        if pool is not None and connectors_for_thread is None:
            raise ValueError("a pool needs connectors_for_thread: SDK clients must not be shared between threads")
        if lease is not None and lease.group != group.name:
            raise ValueError(f"the lease of group {lease.group} cannot fence a pass of {group.name}")
        self.group = group
        self.connectors = connectors
        self.store = store.fenced(lease) if lease is not None else store
        self.tenure = tenure
        self.config_version = config_version
        self.pool = pool
        self.connectors_for_thread = connectors_for_thread
        self.report = PassReport(group.name)
        self.outbox = outbox or Outbox()
        self.failures = Failures(
            group.name,
            self.report,
            quarantine_after=quarantine_after,
            config_version=config_version,
            outbox=self.outbox,
            members=tuple(group.codecs),
        )
        self.reader = Reader(group, connectors, self.store, self.report)
        self._local = threading.local()
        self.guarding = Guarding(
            group.name,
            self.store,
            self.report,
            mass_change or {},
            config_version=config_version,
            policy=group.policy,
            restorable=restorable(group),
            moves_status={m for m, codec in group.codecs.items() if codec.capabilities.restore_needs_status},
            outbox=self.outbox,
        )

    def run(
        self,
        *,
        dry_run: bool = False,
        hints: Hints | None = None,
        follow: Callable[[], Hints | None] | None = None,
    ) -> PassReport:
        """Recover, read, plan and (unless ``dry_run``) apply; cursors advance only after a completed pass.

        ``hints`` (member -> refs, from webhooks) makes a targeted pass: only those items are read, in one batch
        per member, and no cursor moves (the next full pass still reads every change, at least once). Besides what
        changed, a pass plans again the items a crash interrupted, the items that failed before (until they are
        quarantined) and the items whose held conflict a person decided; quarantined items are left out.

        ``follow`` hands over the hints that arrived while the pass ran (the scheduler's, taken from its queue):
        they are folded into this pass as a further targeted round, read, planned and applied at once, instead of
        waiting for this pass to end and another to be scheduled (see :meth:`_fold`).
        """
        with holding(self.tenure):
            return self._run(dry_run=dry_run, hints=hints, follow=follow)

    def _run(self, *, dry_run: bool, hints: Hints | None, follow: Callable[[], Hints | None] | None) -> PassReport:
        replan, skip, decisions = self._carried_over(dry_run=dry_run)
        found = self.reader.read(hints=hints, replan=replan, skip=skip)
        work = self._plan_all(found, decisions)
        if dry_run:
            self.guarding.screen(work, self.report.emptied, dry_run=True)  # what would be held, stored nowhere
        else:
            self._apply_all(self.guarding.screen(work, self.report.emptied))
            self._settle_defaults(skip, found.down)
        if not dry_run and follow is not None:
            self._fold(follow, skip, found.down)
        if not dry_run and hints is None:
            # Every item read is committed, or recorded as failed and retried by id: the cursors may move on. A
            # member that could not be read keeps its cursor, and catches up from it when its tool answers again.
            with self.store.transaction() as tx:
                for member, batch in found.batches.items():
                    if member not in found.down:
                        tx.set_cursor(endpoint_key(self.group.name, member), batch.cursor)
        read = set(found.batches) if hints is None else set(hints) & set(found.batches)
        self._record_endpoints(found.down, read=read)
        if not dry_run:
            self.guarding.settle()
        return self.report

    def _settle_defaults(self, skip: set[str], down: Mapping[str, ConnectorError]) -> None:
        """Read back the mirrors whose tool filled an empty field on create, and carry that value to the others.

        Jira gives a new issue the project's default priority whatever syncd sends: the commit does not take that
        record for syncd's own (the base holds no priority), and one targeted round here reads it as Jira's change,
        so the others get it in this pass, and the next pass finds everything in step. Not while a member is down:
        a targeted read does not see that member, and would plan a mirror there for each new item; the next full
        pass reads the defaults anyway.
        """
        if down:
            self.report.take_defaulted()
            return
        for _ in range(FOLD_ROUNDS):
            hints = self.report.take_defaulted()
            if not hints:
                return
            found = self.reader.read(hints=hints, skip=skip)
            self._apply_all(self.guarding.screen(self._plan_all(found, {}), self.report.emptied))

    def _fold(self, follow: Callable[[], Hints | None], skip: set[str], down: dict[str, ConnectorError]) -> None:
        """Targeted rounds for the hints that arrived meanwhile, until none are left (at most :data:`FOLD_ROUNDS`).

        A person who edits an item while syncd writes it (its write then fails the version check, and the item is
        planned again) or right after, sends a webhook that would otherwise wait for the whole pass and for the
        next one's scheduling. Each round is a targeted pass's read, plan and apply; items this pass left out
        (quarantined, or a crash's create not resolved) stay out, and an item fails at most one strike per pass.
        """
        for _ in range(FOLD_ROUNDS):
            more = follow()
            if not more:
                return
            self.report.folded += sum(len(refs) for refs in more.values())
            found = self.reader.read(hints=more, skip=skip)
            self._apply_all(self.guarding.screen(self._plan_all(found, {}), self.report.emptied))
            for member, error in found.down.items():
                down.setdefault(member, error)

    # ----- plan ---------------------------------------------------------------------------------------------

    def _plan_all(self, found: Found, decisions: Mapping[str, dict[str, str]]) -> list[tuple[Plan, Touched]]:
        """Every touched item's plan, with the tools' history read where a plan needs it (all items at once)."""
        touched = found.touched
        with self.store.transaction() as tx:
            # A few batch reads for every item at once, not four queries per item; the read stage's bases reused.
            known = {s: base for s, base in found.bases.items() if base is not None}
            known |= tx.bases(s for s in touched if s not in found.bases)
            echoes = tx.per_endpoint("echoes", touched)
            behind = tx.per_endpoint("behind", touched)
            stored = tx.per_endpoint("refused", touched)
        wholes: dict[str, Item] = {}
        for sync_id, item in sorted(touched.items()):
            base = known.get(sync_id)
            item.refusals = _by_member(stored.get(sync_id, {}))
            item.views = {
                m: heed(self.group.codecs[m].align(view, base), base, item.refusals.get(m, {}))
                for m, view in item.views.items()
            }
            wholes[sync_id] = Item(
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
        histories: dict[str, _Histories] = defaultdict(_Histories)
        for sync_id in wholes:  # a history the read carried whole (a Jira search's) costs no read of its own
            for member, record in touched[sync_id].seen.items():
                if record.history is not None and member in touched[sync_id].views:
                    codec = self.group.codecs[member]
                    histories[sync_id].carry(member, functools.partial(_expanded, codec, record.history))
        decided: dict[str, Decided] = {}
        pending = list(wholes)
        while pending:
            wanted: dict[str, frozenset[str]] = {}
            for sync_id in pending:
                outcome = decide(self.group.policy, wholes[sync_id], touched[sync_id], histories[sync_id])
                if isinstance(outcome, Decided):
                    decided[sync_id] = outcome
                else:
                    wanted[sync_id] = outcome.members
            self._read_histories(wanted, touched, histories)
            pending = list(wanted)
        work: list[tuple[Plan, Touched]] = []
        for sync_id in wholes:
            item = touched[sync_id]
            item.views = decided[sync_id].views
            item.attribute = decided[sync_id].attribute
            self.report.plans.append(decided[sync_id].plan)
            work.append((decided[sync_id].plan, item))
        return work

    def _read_histories(
        self,
        wanted: Mapping[str, frozenset[str]],
        touched: Mapping[str, Touched],
        histories: Mapping[str, MutableMapping[str, list[FieldChange] | None]],
    ) -> None:
        """Read the wanted histories, the members at once; None where a tool cannot answer.

        With a pool (the daemon's, a backfill's), the items' reads are spread over its threads, each with its own
        connectors, as applying is: a pass with several changed items waits one round trip per tool for their
        histories, not one per item. Without one, each member's are read in turn. A fatal error (credentials,
        permissions) stops the pass, as any read's would.
        """

        def read(connectors: Mapping[str, Connector], member: str, sync_ids: list[str]) -> HistoryRows:
            found: HistoryRows = {}
            for sync_id in sync_ids:
                try:
                    history = connectors[member].history(touched[sync_id].views[member].ref)
                    found[sync_id] = self.group.codecs[member].history(history)
                except ConnectorError as error:
                    if isinstance(error, FatalError):
                        raise
                    found[sync_id] = None
            return found

        def item(sync_id: str, members: frozenset[str]) -> dict[str, HistoryRows]:
            own = self._thread_connectors()
            outcomes = each({m: functools.partial(read, own, m, [sync_id]) for m in sorted(members)})
            return {m: _raised(outcome) for m, outcome in outcomes.items()}

        if self.pool is not None and len(wanted) > 1:
            futures = [
                self.pool.submit(contextvars.copy_context().run, item, sync_id, members)
                for sync_id, members in wanted.items()
            ]
            for future in futures:
                for member, rows in future.result().items():
                    for sync_id, history in rows.items():
                        histories[sync_id][member] = history
            return
        by_member: dict[str, list[str]] = defaultdict(list)
        for sync_id, members in wanted.items():
            for member in members:
                by_member[member].append(sync_id)
        outcomes = each(
            {member: functools.partial(read, self.connectors, member, ids) for member, ids in by_member.items()}
        )
        for member, outcome in outcomes.items():
            for sync_id, history in _raised(outcome).items():
                histories[sync_id][member] = history

    # ----- apply --------------------------------------------------------------------------------------------

    def _stages(self, connectors: Mapping[str, Connector]) -> tuple[Executor, CommentMirror]:
        """The apply stage's parts over one set of connectors, reporting into this pass's report."""
        executor = Executor(
            self.group,
            connectors,
            self.store,
            self.report,
            self.failures,
            config_version=self.config_version,
            outbox=self.outbox,
        )
        mirror = CommentMirror(
            self.group, connectors, self.store, self.report, self.failures, config_version=self.config_version
        )
        return executor, mirror

    def _apply_all(self, work: Sequence[tuple[Plan, Touched]]) -> None:
        if self.pool is not None and len(work) > 1:
            self._apply_in_pool(self.pool, work)
            return
        stages = self._stages(self.connectors)
        for decided, item in work:
            self._apply(stages, decided, item)

    def _apply(self, stages: tuple[Executor, CommentMirror], decided: Plan, item: Touched) -> None:
        """Apply and commit one item's plan, then mirror its comments (also while it waits for a member)."""
        executor, mirror = stages
        applied = executor.execute(decided, item)
        failed = decided.sync_id in self.report.failures and decided.sync_id not in self.report.waiting
        if self.group.comments and not failed:
            mirror.mirror(decided.sync_id, item, applied)

    def _thread_connectors(self) -> Mapping[str, Connector]:
        """The calling pool thread's own connectors (SDK clients are not shared between threads), made once."""
        found: Mapping[str, Connector] | None = getattr(self._local, "connectors", None)
        if found is None:
            assert self.connectors_for_thread is not None  # a pool comes with it (see __init__)
            found = self._local.connectors = self.connectors_for_thread()
        return found

    def _apply_in_pool(self, pool: concurrent.futures.Executor, work: Sequence[tuple[Plan, Touched]]) -> None:
        """Apply items in parallel, with each pool thread's own connectors.

        Items are independent (each has its own refs and its own transaction), so their order does not matter;
        the shared per-credential rate limiters keep the threads together under each tool's budget. A fatal error
        in one thread stops handing out items and is raised once the running ones are done.
        """

        def stages() -> tuple[Executor, CommentMirror]:
            found: tuple[Executor, CommentMirror] | None = getattr(self._local, "stages", None)
            if found is None:
                found = self._local.stages = self._stages(self._thread_connectors())
            return found

        stop = threading.Event()

        def one(decided: Plan, item: Touched) -> None:
            if not stop.is_set():
                self._apply(stages(), decided, item)

        # Each in a copy of this context: the lease's tenure and the audit's collections follow the item's thread.
        futures = [pool.submit(contextvars.copy_context().run, one, decided, item) for decided, item in work]
        error: BaseException | None = None
        for future in concurrent.futures.as_completed(futures):
            failure = future.exception()
            if failure is not None and error is None:
                error = failure
                stop.set()
        if error is not None:
            raise error

    # ----- around -------------------------------------------------------------------------------------------

    def _carried_over(self, *, dry_run: bool) -> tuple[set[str], set[str], dict[str, dict[str, str]]]:
        """Items to plan whatever changed, items to leave out, and people's decisions on held conflicts."""
        replan: set[str]
        unresolved: set[str]
        if dry_run:
            with self.store.transaction() as tx:
                replan, unresolved = set(), {entry.sync_id for entry in tx.journal_for(self.group.name)}
        else:
            recovery = Recovery(
                self.group,
                self.connectors,
                self.store,
                self.report,
                self.failures,
                config_version=self.config_version,
            )
            replan, unresolved = recovery.recover()
        with self.store.transaction() as tx:
            held = {entry.sync_id for entry in tx.quarantined(self.group.name, held=True)}
            replan |= {entry.sync_id for entry in tx.quarantined(self.group.name, held=False)}
            decisions: dict[str, dict[str, str]] = defaultdict(dict)
            for conflict in tx.conflicts(group=self.group.name, states=("decided",)):
                if conflict.take is not None:
                    decisions[conflict.sync_id][conflict.field] = conflict.take
        # Items a mass-change guard names are planned again every pass: held while it is pending, let through (or
        # kept, if rejected) once a person decided.
        return replan | set(decisions) | self.guarding.guarded(), held | unresolved, decisions

    def _record_endpoints(self, down: Mapping[str, ConnectorError], *, read: set[str]) -> None:
        """Remember which endpoints failed and why (``syncd status``), and which answered again."""
        self.report.down = {member: redact(f"{type(error).__name__}: {error}") for member, error in down.items()}
        self.report.fatal = {member for member, error in down.items() if isinstance(error, FatalError)}
        with self.store.transaction() as tx:
            for member in self.group.codecs:
                key = endpoint_key(self.group.name, member)
                if member in down:
                    tx.endpoint_failing(key, self.report.down[member])
                    if self.outbox.routes:
                        since, error = tx.failing_endpoints()[key]
                        self.outbox.failing(tx, group=self.group.name, department=member, since=since, error=error)
                elif member in read:
                    tx.endpoint_answers(key)
