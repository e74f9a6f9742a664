"""The executor: applies one item's plan through the connectors, journal first, and commits what it did.

Per item (DESIGN.md, crash safety): the plan is journaled, and the item and the refs it was read from are linked
with an unknown version, in one transaction; the steps are applied; then links, versions, the new base and one
audit event per remote write are committed together and the journal entry is cleared. A crash anywhere in
between leaves the journal entry, which :meth:`Executor.recover` resolves before the group's next pass: a create
that happened is adopted through its marker (never repeated), a write that happened is kept and audited, and the
item is planned again from the base, which redoes whatever did not happen.

Failures are per item: a refused write, a missing item or a bug in one item's data strike that item (it keeps
its links, is retried on every pass and is held out after ``quarantine_after`` strikes in a row, visible in
``syncd status`` until someone releases it); a retriable failure (the tool was down) is retried without
striking; a fatal one (credentials, configuration) stops the pass, since every other item would fail the same way.
"""

from __future__ import annotations

import functools
import threading
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ulid import ULID

from syncd.audit import AuditEvent, append
from syncd.comments import Original, attributed, copies, mirrored_from
from syncd.connector import Connector
from syncd.crash import crash_point
from syncd.errors import (
    ChangedMeanwhile,
    ConnectorError,
    EndpointDown,
    FatalError,
    InvalidItem,
    OutcomeUnknown,
    RetriableError,
    SyncdError,
)
from syncd.fanout import each
from syncd.mapping import Group, MappingProblem
from syncd.merge import same
from syncd.model import Record
from syncd.plan import Archive, Create, Plan, Refusal, Step, Unlink, View, Write
from syncd.store import CommentRow, DuplicateLink, JournalEntry, Link, Store, Tx
from syncd.uncertain import Uncertain, recording


@dataclass
class PassReport:
    """What one pass did: plans, remote writes made, values that could not be mapped, items that failed."""

    group: str
    plans: list[Plan] = field(default_factory=list)
    writes: int = 0
    problems: list[MappingProblem] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    quarantined: list[str] = field(default_factory=list)
    """Items that reached the strike limit in this pass and are now held out."""
    recovered: int = 0
    """Journal entries a crash had left, resolved before this pass."""
    lags: list[float] = field(default_factory=list)
    """Per mirror written: seconds from the change in its tool to the mirror's commit (the propagation lag)."""
    down: dict[str, str] = field(default_factory=dict)
    """Members whose tool could not be read this pass (-> the error): left out, the others synced between them."""
    fatal: set[str] = field(default_factory=set)
    """Those of ``down`` whose tool refused syncd (credentials, permissions, configuration): a person must act."""
    waiting: set[str] = field(default_factory=set)
    """Items synced among the members that answered, waiting for one that did not (also in ``failures``)."""
    orphans: list[str] = field(default_factory=list)
    """Records syncd made that no item links (a create whose answer was lost, not adopted yet): left alone."""
    refused: list[tuple[str, str, Refusal]] = field(default_factory=list)
    """(item, member, refusal) for each value a tool refused in this pass's writes: left out there only."""

    @property
    def ok(self) -> bool:
        """Whether every item synced and every member was read (problems are reported values, not failures)."""
        return not self.failures and not self.down


@dataclass
class Touched:
    """One item as the pass found it: decoded views, the records behind them, and where it is gone or out of scope."""

    views: dict[str, View] = field(default_factory=dict)
    seen: dict[str, Record] = field(default_factory=dict)
    deleted: dict[str, str] = field(default_factory=dict)
    out_of_scope: dict[str, str] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)
    """Members whose record changed since syncd last saw it there (where new comments may be)."""
    synced: dict[str, datetime] = field(default_factory=dict)
    """Member -> the tool's time of the record the base was last agreed from (Link.synced_at), where known."""
    rescan: set[str] = field(default_factory=set)
    """Members syncd wrote whose read-back may hold comments not read yet (posted during the write)."""
    deferred: dict[str, str] = field(default_factory=dict)
    """Member -> the version to store once its new comments are copied (see Executor._commit)."""
    unavailable: dict[str, str | None] = field(default_factory=dict)
    """Members whose tool cannot be read this pass -> the item's ref there (None: not linked there)."""
    down: Mapping[str, ConnectorError] = field(default_factory=dict)
    """What each unavailable member's tool said."""
    refusals: dict[str, dict[str, Refusal]] = field(default_factory=dict)
    """Member -> field -> a value its tool refused earlier for this item's mirror (as stored)."""
    refused: dict[str, dict[str, Refusal]] = field(default_factory=dict)
    """Member -> field -> a value its tool refused in this pass's writes (stored and audited by the commit)."""
    fitted: dict[str, list[MappingProblem]] = field(default_factory=dict)
    """Member -> values written in a form its tool takes (a title shortened): audited by the commit."""

    def refusals_at(self, member: str) -> dict[str, Refusal]:
        """The refusals that hold for a member's mirror: the stored ones, with this pass's in their place."""
        return {**self.refusals.get(member, {}), **self.refused.get(member, {})}


@dataclass
class _Recovered:
    """One journaled step as recovery found it: the record now, whether its values all landed, what to audit."""

    member: str
    raw: dict[str, Any]
    record: Record | None
    adopted: Record | None = None
    landed: bool = False
    audit: tuple[str, str] | None = None
    """(event kind, outcome) of the write that happened, if one did."""

    @property
    def values(self) -> dict[str, Any]:
        """The canonical values the step writes (none for an archive)."""
        values: dict[str, Any] = self.raw.get("values") or {}
        return values


RECOVERED = "applied before a crash; recovered"
LEFT_OUT = "left out for this tool only; the rest of the item is written, and the field is tried again once it changes"


def endpoint_key(group: str, member: str) -> str:
    """The store's name of one member's place in one group."""
    return f"{group}/{member}"


class Executor:
    """Applies and commits the plans of one pass of one group (and recovers what a crash left of earlier ones)."""

    def __init__(
        self,
        group: Group,
        connectors: Mapping[str, Connector],
        store: Store,
        report: PassReport,
        *,
        config_version: str = "",
        quarantine_after: int = 3,
    ) -> None:
        self.group = group
        self.connectors = connectors
        self.store = store
        self.report = report
        self.config_version = config_version
        self.quarantine_after = quarantine_after
        self._lock = threading.Lock()

    # ----- recovery -------------------------------------------------------------------------------------------

    def recover(self) -> tuple[set[str], set[str]]:
        """Resolve the journal entries a crash left; (items to plan again, items still unresolved).

        An unresolved item (its tool did not answer) must not be planned in this pass: planning it without knowing
        whether its create happened could create a second mirror.
        """
        with self.store.transaction() as tx:
            pending = tx.journal_for(self.group.name)
        replan: set[str] = set()
        unresolved: set[str] = set()
        for entry in pending:
            try:
                self._recover(entry)
            except ConnectorError as error:
                if isinstance(error, FatalError):
                    raise
                unresolved.add(entry.sync_id)
                with self.store.transaction() as tx:
                    self._strike(tx, entry.sync_id, error)  # the item waits: reported, struck only if not an outage
                continue
            replan.add(entry.sync_id)
            self.report.recovered += 1
        return replan - unresolved, unresolved

    def _recover(self, entry: JournalEntry) -> None:
        """Adopt creates by marker, finish writes a crash cut short, audit what landed; the item is then replanned.

        Each step's progress is journaled (``started``, ``done_version``). A write that was started and not done
        may have left a field half-way: a Jira status one transition short of its target is a value no person
        chose, and replanned as it stands it would count as Engineering's own change and override the others. Such
        writes are finished now, conditionally where the tool allows (a person's edit since the read makes Jira
        refuse it, and it is then planned as the change it is). A field whose every write completed takes the
        planned value as its base, so whatever a person did to it after syncd's write is planned as a change.
        """
        with recording() as uncertain:
            found = [self._recover_step(entry, step) for step in entry.steps]
        steps = [step for step in found if step is not None]
        complete: dict[str, bool] = {}
        planned: dict[str, Any] = {}
        for step in steps:
            for name, value in step.values.items():
                planned[name] = value
                complete[name] = complete.get(name, True) and step.landed
        with self.store.transaction() as tx:
            for event in uncertain:
                append(tx, self._uncertain_event(None, event, sync_id=entry.sync_id))
            links = tx.links(entry.sync_id)
            for step in steps:
                key = endpoint_key(self.group.name, step.member)
                if step.adopted is not None and key not in links:
                    tx.link(entry.sync_id, key, step.adopted.ref, "")
                    outcome = "its answer was lost; found by its marker" if step.raw.get("uncertain") else None
                    append(
                        tx,
                        self._recovered_event(
                            entry, "create", step.member, step.adopted, None, outcome=outcome or RECOVERED
                        ),
                    )
                if step.record is not None and step.audit is not None:
                    kind, outcome = step.audit
                    append(tx, self._recovered_event(entry, kind, step.member, step.record, step.raw, outcome=outcome))
                if step.landed and step.values:
                    tx.add_echoes(entry.sync_id, key, step.values)  # syncd's own write, not a change there
            for key in links:
                tx.set_version(entry.sync_id, key, "")  # read everything afresh: the plan is made again
            base = tx.base(entry.sync_id)
            settled = {name: value for name, value in planned.items() if complete[name]}
            if base is not None and settled:
                tx.set_base(entry.sync_id, {**base, **settled})
            tx.journal_done(entry.plan_id)

    def _recover_step(self, entry: JournalEntry, step: dict[str, Any]) -> _Recovered | None:
        """Where one journaled step got to, finishing it if the crash cut it short (see :meth:`_recover`)."""
        member = step["endpoint"]
        connector = self.connectors.get(member)
        if connector is None or step["kind"] not in {"Create", "Write", "Archive"} or step.get("committed"):
            # A member that left the group since, an unlink, or a step applied, linked and audited by the pass
            # whose commit kept this entry for a later step: nothing of it to recover.
            return None
        if step["kind"] == "Create":
            done = self._recover_create(entry, step)
        else:
            fetched = connector.fetch([step["ref"]])
            done = _Recovered(member, step, fetched[0] if fetched else None)
        if done.record is None:
            return done
        if step["kind"] == "Archive":
            if self.group.codecs[member].decode(done.record)[0].archived:
                done.audit = ("archive", "applied before a crash; recovered")
            return done
        done.landed = "done_version" in step
        if step.get("started") and not done.landed:
            before = done.record
            done.record, done.landed = self._finish(step, done.record)
            if done.record is not before:
                done.audit = ("write", f"begun {_cut_short(step)}; finished on recovery")
                return done
            if not done.landed and step["kind"] == "Write":
                done.audit = ("write", f"begun {_cut_short(step)}, not finished; planned again")
                return done
        else:
            done.landed = done.landed or not self._unlanded(step, done.record)
        if step["kind"] == "Write" and done.landed and (step.get("started") or "done_version" in step):
            done.audit = ("write", "applied before a crash; recovered")
        return done

    def _recover_create(self, entry: JournalEntry, step: dict[str, Any]) -> _Recovered:
        """A journaled create: the mirror found by its marker if the create was sent, else nothing to find."""
        member = step["endpoint"]
        if not step.get("started"):
            return _Recovered(member, step, None)  # never sent: nothing to find, the replan creates it
        fields, _ = self.group.codecs[member].encode(step["values"], create=True)
        record = self.connectors[member].find_by_marker(entry.sync_id, _sent_at(entry, step), fields)
        return _Recovered(member, step, record, adopted=record)

    def _unlanded(self, step: Mapping[str, Any], record: Record) -> dict[str, Any]:
        """The step's values its record does not hold (read as the step's own values, for lossy fields)."""
        codec = self.group.codecs[step["endpoint"]]
        values: dict[str, Any] = step["values"]
        view = codec.align(codec.decode(record)[0], values)
        return {
            name: value
            for name, value in values.items()
            if name not in view.values or not same(view.values[name], value)
        }

    def _finish(self, step: Mapping[str, Any], record: Record) -> tuple[Record, bool]:
        """Write what an interrupted step did not get to; (the record now, whether the step is complete).

        Only values the record does not hold are written, with the version just read as the condition. If the
        tool refuses (a person changed the record meanwhile, or the value cannot be written), the step stays
        incomplete and the replan takes the record as it is; an outage leaves the entry for the next pass.
        """
        missing = self._unlanded(step, record)
        if not missing:
            return record, True
        theirs = self._changed_by_others(step, record)
        missing = {name: value for name, value in missing.items() if name not in theirs}
        if not missing:
            return record, False  # a person changed them since the plan's read: their edit, planned as such
        fields, _ = self.group.codecs[step["endpoint"]].encode(missing)
        if not fields:
            return record, False
        try:
            written = self.connectors[step["endpoint"]].update(record.ref, fields, record.version)
        except ChangedMeanwhile:
            return record, False
        except ConnectorError as error:
            if isinstance(error, RetriableError | FatalError):
                raise  # retried on the next pass (or stops it): the entry stays until it is resolved
            return record, False
        self.report.writes += 1
        return written, not self._unlanded(step, written)

    def _changed_by_others(self, step: Mapping[str, Any], record: Record) -> set[str]:
        """Fields someone other than syncd changed since the plan read the record (for a create: ever).

        From the tool's own history, so an interrupted write is finished only where the value left is syncd's
        (a Jira status part-way along its workflow), never over a person's edit made while syncd was down. If the
        history cannot be read, every field counts as changed by someone: nothing is overwritten on a guess.
        """
        since = datetime.fromisoformat(step["seen_at"]) if step.get("seen_at") else None
        try:
            history = self.connectors[step["endpoint"]].history(record.ref)
        except ConnectorError as error:
            if isinstance(error, RetriableError | FatalError):
                raise  # retried on the next pass (or stops it): the entry stays until it is resolved
            return set(step["values"])
        return {change.field for change in history if not change.by_self and (since is None or change.at > since)}

    def _uncertain_event(
        self, decided: Plan | None, event: Uncertain, *, sync_id: str = "", endpoint: str | None = None
    ) -> AuditEvent:
        """The audit event of a write whose answer was lost: what was sent, the lost answer, what looking found."""
        member = endpoint or self._member_of(event.tool)
        return AuditEvent(
            "uncertain",
            group=self.group.name,
            sync_id=decided.sync_id if decided is not None else sync_id,
            endpoint=member,
            refs={member: event.ref} if member and event.ref else {},
            outcome=event.outcome,
            config_version=self.config_version,
            message=f"{event.what}: {event.error}",
        )

    def _member_of(self, tool: str) -> str | None:
        """The group member on this tool (an uncertain write names its tool; a group has one member per tool)."""
        return next((m for m, codec in self.group.codecs.items() if codec.tool == tool), None)

    def _recovered_event(
        self,
        entry: JournalEntry,
        kind: str,
        member: str,
        record: Record,
        step: Mapping[str, Any] | None,
        *,
        outcome: str = RECOVERED,
    ) -> AuditEvent:
        return AuditEvent(
            kind,
            group=self.group.name,
            sync_id=entry.sync_id,
            endpoint=member,
            refs={member: record.ref},
            new=step.get("values") if step else None,
            outcome=outcome,
            config_version=self.config_version,
            message=step.get("reason") if step else "created before a crash; adopted by its marker",
        )

    # ----- applying ----------------------------------------------------------------------------------------

    def execute(self, decided: Plan, item: Touched) -> None:
        """Journal, apply and commit one item's plan; a failure strikes the item and leaves it to be retried."""
        plan_id = str(ULID())
        try:
            with self.store.transaction() as tx:
                self._claim(tx, decided.sync_id, item)
                if decided.steps:
                    steps = [_journaled(step, item.seen.get(step.endpoint)) for step in decided.steps]
                    tx.journal_add(plan_id, decided.sync_id, self.group.name, steps)
        except DuplicateLink as refused:
            # A ref already belongs to another item (a marker copied by hand, two mirrors): a person must look.
            with self.store.transaction() as tx:
                self._strike(tx, decided.sync_id, refused, force=True)
            return
        crash_point("after-journal")
        with recording() as uncertain:
            results, errors = self._apply_all(plan_id, decided, item)
        fatal = next((failure for failure in errors.values() if isinstance(failure, FatalError)), None)
        if fatal is not None:
            raise fatal  # an endpoint-wide problem: stop the pass; the journal entry is recovered on the next one
        error = errors[min(errors)] if errors else None
        crash_point("before-commit")
        # A write left half-done by an outage, or whose answer was lost, stays journaled: the next pass finishes
        # it as after a crash (a create found by its marker, a Jira move from where it stopped) instead of taking
        # what syncd left there for a person's edit, or sending it again blind.
        written_at = {index for index, _, _ in results}
        pending = sorted(index for index, failure in errors.items() if _unfinished(failure) and index not in written_at)
        with self.store.transaction() as tx:
            self._commit(tx, decided, item, [(step, written) for _, step, written in results], failed=error is not None)
            for event in uncertain:
                append(tx, self._uncertain_event(decided, event))
            if error is None and decided.waiting:
                self._wait(tx, decided.sync_id, item, decided.waiting)
            elif error is None:
                tx.clear_failure(decided.sync_id)
            else:
                self._strike(tx, decided.sync_id, error)
            if pending:
                for index in sorted(written_at):
                    tx.journal_step(plan_id, index, committed=True)
                for index in pending:
                    tx.journal_step(plan_id, index, uncertain=str(errors[index]))
            elif decided.steps:
                tx.journal_done(plan_id)
        if error is None:
            self._measure(decided, item, [(step, written) for _, step, written in results])

    # ----- comments -------------------------------------------------------------------------------------------

    def mirror_comments(self, sync_id: str, item: Touched) -> None:
        """Read new comments where the item changed; copy each original once to every other linked endpoint."""
        try:
            self._mirror_comments(sync_id, item)
        except FatalError:
            raise
        except Exception as failure:  # one item's comments must not stop the others: struck, retried by id
            with self.store.transaction() as tx:
                self._strike(tx, sync_id, failure)
            return
        if item.deferred:
            with self.store.transaction() as tx:
                links = tx.links(sync_id)
                for member, version in item.deferred.items():
                    key = endpoint_key(self.group.name, member)
                    if key in links and links[key].version == "":
                        tx.set_version(sync_id, key, version)

    def _mirror_comments(self, sync_id: str, item: Touched) -> None:
        group = self.group.name
        with self.store.transaction() as tx:
            links = {key.split("/", 1)[1]: link for key, link in tx.links(sync_id).items()}
            known = tx.comment_rows(sync_id)
        links = {member: link for member, link in links.items() if member in self.group.codecs}
        if len(links) < 2:
            return
        found = self._new_comments(sync_id, item, links, {(row.endpoint, row.comment_id) for row in known})
        if found:
            with self.store.transaction() as tx:
                for row in found:
                    tx.add_comment_row(row)
        rows = known + found
        originals = [
            Original(row.endpoint.split("/", 1)[1], row.comment_id, row.author or "someone", row.body or "")
            for row in rows
            if row.original
        ]
        mirrored: dict[tuple[str, str], set[str]] = defaultdict(set)
        for row in rows:
            if not row.original:
                mirrored[(row.origin_endpoint.split("/", 1)[1], row.origin_id)].add(row.endpoint.split("/", 1)[1])
        waiting: list[str] = []
        for copy in copies(originals, mirrored, links):
            if copy.endpoint in item.unavailable:
                waiting.append(copy.endpoint)  # copied once that member answers again
                continue
            source = copy.original
            text = self.group.codecs[copy.endpoint].text_out(
                attributed(source, self.group.codecs[source.endpoint].capabilities.name)
            )
            with recording() as uncertain:
                posted = self.connectors[copy.endpoint].add_comment(links[copy.endpoint].ref, text)
            self.report.writes += 1
            crash_point("after-comment")
            with self.store.transaction() as tx:
                for event in uncertain:
                    append(tx, self._uncertain_event(None, event, sync_id=sync_id, endpoint=copy.endpoint))
                origin_key = endpoint_key(group, source.endpoint)
                tx.add_comment_row(
                    CommentRow(endpoint_key(group, copy.endpoint), posted.id, sync_id, origin_key, source.comment_id)
                )
                append(
                    tx,
                    AuditEvent(
                        "comment",
                        group=group,
                        sync_id=sync_id,
                        endpoint=copy.endpoint,
                        refs={copy.endpoint: links[copy.endpoint].ref, source.endpoint: links[source.endpoint].ref}
                        if source.endpoint in links
                        else {copy.endpoint: links[copy.endpoint].ref},
                        new=source.body,
                        origin=source.endpoint,
                        person=source.author,
                        outcome="applied",
                        config_version=self.config_version,
                        message=f"comment {source.comment_id} copied as {posted.id}",
                    ),
                )
        if waiting:
            with self.store.transaction() as tx:
                self._wait(tx, sync_id, item, sorted(set(waiting)))

    def _new_comments(
        self, sync_id: str, item: Touched, links: Mapping[str, Link], known: set[tuple[str, str]]
    ) -> list[CommentRow]:
        """Comments not seen before, where the item changed or a write of syncd's may hide some (read at once).

        Originals, or copies syncd posted whose record a crash lost.
        """
        found: list[CommentRow] = []
        members = sorted((item.changed | item.rescan) & links.keys())
        read = each({m: functools.partial(self.connectors[m].comments, links[m].ref) for m in members})
        for member, outcome in read.items():
            if isinstance(outcome, Exception):
                raise outcome
            key = endpoint_key(self.group.name, member)
            for comment in outcome:
                if (key, comment.id) in known:
                    continue
                markdown = self.group.codecs[member].text_in(comment.body)
                origin = mirrored_from(markdown)
                if origin is not None:
                    # A copy syncd posted (its record lost to a crash): adopted, never taken for an original.
                    origin_key = endpoint_key(self.group.name, origin[0])
                    found.append(CommentRow(key, comment.id, sync_id, origin_key, origin[1]))
                else:
                    author = comment.author.name or comment.author.label()
                    found.append(CommentRow(key, comment.id, sync_id, key, comment.id, author, markdown))
        return found

    def _claim(self, tx: Tx, sync_id: str, item: Touched) -> None:
        """Register the item and link the refs it was read from, version unknown, before anything is written.

        After a crash the source records are therefore already this item's (not new items that would be mirrored
        a second time), and their unknown version makes the next pass read and plan them again.
        """
        if tx.item_group(sync_id) is None:
            tx.new_item(sync_id, self.group.name)
        links = tx.links(sync_id)
        for member, record in item.seen.items():
            key = endpoint_key(self.group.name, member)
            if key in links:
                tx.set_version(sync_id, key, "")
            else:
                tx.link(sync_id, key, record.ref, "")

    def _apply_all(
        self, plan_id: str, decided: Plan, item: Touched
    ) -> tuple[list[tuple[int, Step, Record | None]], dict[int, Exception]]:
        """Apply the plan's steps: each tool's in order, the tools at once; (results by step index, failures).

        Steps at one endpoint go one after another and stop at the first failure there; the other tools' steps do
        not wait for them, so writing both mirrors of a change takes one round trip, not two. Creates come after
        every other step has succeeded, as in the plan's order: a new item's mirrors are made only once its own
        record holds what the plan gave it (a Trello card its scope label), or a failure there would leave mirrors
        whose values the next pass takes for syncd's echo and the card's old value for the change. The journal
        notes how far each write got: a write begun and not finished may have left a field half-way (a Jira status
        part-way along its workflow), a value only syncd can have put there, which recovery finishes rather than
        plans from.
        """
        results: list[tuple[int, Step, Record | None]] = []
        errors: dict[int, Exception] = {}
        creates = [index for index, step in enumerate(decided.steps) if isinstance(step, Create)]
        others = [index for index, step in enumerate(decided.steps) if not isinstance(step, Create)]
        for phase in (others, creates):
            if errors or not phase:
                continue
            lanes: dict[str, list[int]] = defaultdict(list)
            for index in phase:
                lanes[decided.steps[index].endpoint].append(index)
            lane = functools.partial(self._lane, plan_id, decided, item)
            outcomes = each({endpoint: functools.partial(lane, indices) for endpoint, indices in lanes.items()})
            for endpoint, outcome in outcomes.items():
                if isinstance(outcome, Exception):  # a bug outside any step: the lane's first step takes the blame
                    errors[lanes[endpoint][0]] = outcome
                    continue
                done, failed = outcome
                results += done
                errors.update(failed)
        return sorted(results, key=lambda result: result[0]), errors

    def _lane(
        self, plan_id: str, decided: Plan, item: Touched, indices: list[int]
    ) -> tuple[list[tuple[int, Step, Record | None]], dict[int, Exception]]:
        """Apply one endpoint's steps in order; its results, and the failure that stopped it (if one did)."""
        results: list[tuple[int, Step, Record | None]] = []
        for index in indices:
            step = decided.steps[index]
            # The version the plan was made from, while this plan has not itself changed that record yet.
            seen = item.seen.get(step.endpoint)
            expected = seen.version if seen is not None and not results else None
            writes = isinstance(step, Write | Create | Archive)
            sent = datetime.now(UTC)
            try:
                if writes:
                    self._progress(plan_id, index, started=True, started_at=sent.isoformat())
                try:
                    written = self._apply(decided.sync_id, step, expected, item)
                except Exception as failure:
                    adopted = self._created_anyway(decided.sync_id, step, sent, failure)
                    if adopted is not None:
                        results.append((index, step, adopted))  # linked and audited by the commit, though it failed
                    raise
                results.append((index, step, written))
                if writes:
                    self._progress(plan_id, index, done_version=written.version if written is not None else None)
            except Exception as failure:  # one bad step stops its endpoint's lane only; the item is struck
                return results, {index: failure}
            if isinstance(step, Write) and written is not None:
                crash_point("after-update")
            elif isinstance(step, Create):
                crash_point("after-create")
        return results, {}

    def _created_anyway(self, sync_id: str, step: Step, sent: datetime, failure: Exception) -> Record | None:
        """The mirror a failed create made after all (the create landed, a later request of it failed), if any.

        A Jira create is a POST and then transitions, an Asana one a POST and then its marker: when a later request
        fails, the item exists. Linked and audited now, it is the item's mirror from the start; left alone, the
        next pass would adopt it by its marker with no audit event for a write that happened. When the look cannot
        tell, OutcomeUnknown keeps the create journaled whatever the failure was, so recovery looks again on the
        next pass instead of a replan creating a second mirror.
        """
        if not isinstance(step, Create):
            return None
        try:
            fields, _ = self.group.codecs[step.endpoint].encode(step.values, create=True)
            return self.connectors[step.endpoint].find_by_marker(sync_id, sent, fields)
        except FatalError:
            raise
        except ConnectorError as error:
            if isinstance(failure, RetriableError):
                return None  # the failure itself keeps the create journaled: recovery looks on the next pass
            raise OutcomeUnknown(
                error.tool, f"the create failed ({failure}) and looking for what it made failed too ({error})"
            ) from failure

    def _progress(self, plan_id: str, index: int, **progress: Any) -> None:  # noqa: ANN401 - JSON values
        with self.store.transaction() as tx:
            tx.journal_step(plan_id, index, **progress)

    def _apply(self, sync_id: str, step: Step, expected_version: str | None, item: Touched) -> Record | None:
        connector = self.connectors[step.endpoint]
        if isinstance(step, Archive):
            archived = connector.archive(step.ref)
            with self._lock:
                self.report.writes += 1
            return archived
        if not isinstance(step, Write | Create):
            return None
        values = dict(step.values)
        reported: set[MappingProblem] = set()
        for _ in range(len(values) + 1):
            fields, problems = self.group.codecs[step.endpoint].encode(values, create=isinstance(step, Create))
            for problem in problems:
                if problem in reported:
                    continue
                reported.add(problem)
                self.report.problems.append(problem)
                if problem.field not in fields and problem.field in values:
                    self._refused(item, step, problem.field, values.pop(problem.field), problem.message)
            fitted = sorted((p for p in reported if p.field in fields), key=lambda p: (p.field, p.value, p.message))
            if isinstance(step, Write) and not fields:
                return None
            try:
                if isinstance(step, Write):
                    written = connector.update(step.ref, fields, expected_version)
                else:
                    written = connector.create(fields, sync_id)
            except InvalidItem as refusal:
                # One value the tool refuses must not hold back the rest of the item: written again without it.
                # A create refused part-way (its mirror exists, say a Jira transition after the POST) is not sent
                # again: the failure links what it made, and the next pass writes the rest to it.
                name = refusal.field
                made = isinstance(step, Create) and refusal.ref is not None
                if name is None or name not in values or name not in fields or made:
                    raise
                self._refused(item, step, name, values.pop(name), refusal.message)
                continue
            if fitted:
                item.fitted[step.endpoint] = fitted
            with self._lock:  # the lanes of one item count into one report
                self.report.writes += 1
            return written
        raise AssertionError("unreachable: each round writes or leaves out one more field")

    def _refused(self, item: Touched, step: Write | Create, name: str, value: Any, message: str) -> None:  # noqa: ANN401
        """Note a value left out of a write: the mirror keeps what it holds (a create's, what it is made with)."""
        view = item.views.get(step.endpoint)
        held = view.values.get(name) if view is not None else None
        item.refused.setdefault(step.endpoint, {})[name] = Refusal(name, value, held, message, datetime.now(UTC))

    def _wait(self, tx: Tx, sync_id: str, item: Touched, members: tuple[str, ...] | list[str]) -> None:
        """Keep the item coming back every pass until the members that could not be read catch up (no strike)."""
        member = members[0]
        reason = item.down.get(member)
        error = EndpointDown(member, reason if reason is not None else ConnectorError("", "no answer"))
        self._strike(tx, sync_id, error)
        self.report.waiting.add(sync_id)

    def _strike(self, tx: Tx, sync_id: str, error: Exception, *, force: bool = False) -> None:
        """Record the failure; hold the item out after too many in a row (``force``: at once)."""
        message = str(error) if isinstance(error, SyncdError) else f"{type(error).__name__}: {error}"
        self.report.failures[sync_id] = message
        if tx.item_group(sync_id) is None:
            tx.new_item(sync_id, self.group.name)
        entry = tx.strike(
            sync_id,
            self.group.name,
            message,
            counts=not isinstance(error, RetriableError),
            limit=1 if force else self.quarantine_after,
        )
        if entry.held and entry.strikes == (1 if force else self.quarantine_after):
            self.report.quarantined.append(sync_id)
            append(
                tx,
                AuditEvent(
                    "quarantine",
                    group=self.group.name,
                    sync_id=sync_id,
                    outcome="held",
                    config_version=self.config_version,
                    message=f"failed {entry.strikes} passes in a row: {message}",
                ),
            )

    def _commit(
        self, tx: Tx, decided: Plan, item: Touched, results: list[tuple[Step, Record | None]], *, failed: bool
    ) -> None:
        """Links, versions, base values, held conflicts and audit events of one item, in the caller's transaction."""
        group = self.group.name
        sync_id = decided.sync_id
        self._keep_versions(tx, sync_id, item, failed=failed)
        for member in (*item.deleted, *item.out_of_scope):
            tx.unlink(sync_id, endpoint_key(group, member))
        known = Counter(row.endpoint for row in tx.comment_rows(sync_id)) if self.group.comments else None
        # The version read back after a write is syncd's own only if the record holds exactly what syncd wrote: a
        # person's edit that landed between the write and the read-back must not be taken for syncd's.
        mine = [
            written is not None and not failed and self._only_ours(decided, item, s.endpoint, written)
            for s, written in results
        ]
        for (step, written), ours in zip(results, mine, strict=True):
            key = endpoint_key(group, step.endpoint)
            version = written.version if written is not None and ours else ""
            if isinstance(step, Unlink):
                tx.unlink(sync_id, key)
            elif written is not None:
                unread = known is not None and written.comments != known[key]
                if version and unread and isinstance(step, Write | Create):
                    # The read-back may hold a comment posted during the write, unread (the count differs from
                    # what syncd knows there, or the tool does not say): read them before storing the version.
                    item.rescan.add(step.endpoint)
                if version and self._defers(step.endpoint, item, failed=failed):
                    item.deferred[step.endpoint], version = version, ""
                if isinstance(step, Create):
                    tx.link(sync_id, key, written.ref, version)
                else:
                    tx.set_version(sync_id, key, version)
            self._note_values(tx, decided, item, step, written)
            if isinstance(step, Write) and written is None:
                continue  # nothing was mappable: nothing was written, nothing to audit
            append(tx, self._event(decided, item, step, written))
            if failed and isinstance(step, Write | Create) and written is not None:
                # The base stays as it was, so these values must not look like a change made at that endpoint. A
                # create's are all the new mirror holds (a create cut short leaves the tool's defaults, say To Do).
                made = self.group.codecs[step.endpoint].decode(written)[0].values if isinstance(step, Create) else {}
                tx.add_echoes(sync_id, key, {**step.values, **made})
        if failed:
            return
        self._forget_refusals(tx, decided, item)
        self._keep_behind(tx, decided, item)
        tx.set_base(sync_id, decided.base)
        tx.clear_echoes(sync_id)
        self._conflicts(tx, decided)
        # Link.synced_at: the tool's time of the record read this pass, or of syncd's write there when its read-back
        # holds only what syncd wrote. A person's change after it is news to the next pass, even back at the base.
        synced = {endpoint_key(group, member): record.modified for member, record in item.seen.items()}
        synced |= {
            endpoint_key(group, step.endpoint): written.modified
            for (step, written), ours in zip(results, mine, strict=True)
            if ours and written is not None and isinstance(step, Write | Create)
        }
        for key, at in synced.items():
            tx.set_synced(sync_id, key, at)  # an endpoint unlinked above has no row to update

    def _note_values(self, tx: Tx, decided: Plan, item: Touched, step: Step, written: Record | None) -> None:
        """Store and audit the values a write left out (refused) or wrote in a form the tool takes (fitted)."""
        if not isinstance(step, Write | Create):
            return
        key = endpoint_key(self.group.name, step.endpoint)
        refs = {step.endpoint: written.ref if written is not None else getattr(step, "ref", "")}
        now: Mapping[str, Any] = {}
        if written is not None:
            codec = self.group.codecs[step.endpoint]
            now = codec.align(codec.decode(written)[0], decided.base).values
        for name, refusal in sorted(item.refused.get(step.endpoint, {}).items()):
            if written is None and isinstance(step, Create):
                continue  # no mirror was made: nothing there holds anything yet
            kept = replace(refusal, held=now.get(name, refusal.held))
            item.refused[step.endpoint][name] = kept
            tx.refuse(decided.sync_id, key, kept)
            self.report.refused.append((decided.sync_id, step.endpoint, kept))
            event = self._value_event(decided, step, refs, name, old=kept.held, new=refusal.value)
            append(tx, replace(event, outcome="left out", message=f"{refusal.message}; {LEFT_OUT}"))
        for problem in item.fitted.get(step.endpoint, []) if written is not None else []:
            event = self._value_event(decided, step, refs, problem.field, old=None, new=step.values.get(problem.field))
            append(tx, replace(event, outcome="fitted", message=problem.message))

    def _value_event(
        self,
        decided: Plan,
        step: Write | Create,
        refs: dict[str, str],
        name: str,
        *,
        old: Any,  # noqa: ANN401 - canonical values
        new: Any,  # noqa: ANN401 - canonical values
    ) -> AuditEvent:
        """A ``refused`` event: a value a write left out (``old`` is what the mirror holds) or fitted to the tool."""
        return AuditEvent(
            "refused",
            group=self.group.name,
            sync_id=decided.sync_id,
            endpoint=step.endpoint,
            refs=refs,
            field=name,
            old=old,
            new=new,
            origin=decided.origins.get(name),
            config_version=self.config_version,
        )

    def _forget_refusals(self, tx: Tx, decided: Plan, item: Touched) -> None:
        """Drop the refusals of values the item no longer holds: the new value was written there, or is to be."""
        for member, stored in item.refusals.items():
            for name, refusal in stored.items():
                if name not in item.refused.get(member, {}) and not same(decided.base.get(name), refusal.value):
                    tx.forget_refusal(decided.sync_id, endpoint_key(self.group.name, member), name)

    def _keep_behind(self, tx: Tx, decided: Plan, item: Touched) -> None:
        """Record what the mirrors that could not be written still hold, before the base moves on without them.

        A member behind since an earlier pass keeps the value it held then (its mirror has not changed since, as
        far as syncd knows); a member that caught up this pass is behind no more.
        """
        old = tx.base(decided.sync_id) or {}
        held = tx.behind(decided.sync_id)
        now: dict[str, dict[str, Any]] = {}
        for member in decided.waiting:
            if item.unavailable.get(member) is None:
                continue  # no mirror there yet: it is created when the member answers
            key = endpoint_key(self.group.name, member)
            values = dict(held.get(key, {}))
            for name in self.group.policy.fields:
                if name not in values and not same(decided.base.get(name), old.get(name)):
                    values[name] = old.get(name)
            now[key] = values
        if now or held:
            tx.set_behind(decided.sync_id, now)

    def _keep_versions(self, tx: Tx, sync_id: str, item: Touched, *, failed: bool) -> None:
        """Store the versions the item was read at, so syncd's next pass skips what it has already synced.

        After a failure the item keeps its identity (links) but not the versions it was read at, so the next pass
        reads it as changed and plans it again instead of skipping it as already synced.
        """
        links = tx.links(sync_id)
        for member, record in item.seen.items():
            key = endpoint_key(self.group.name, member)
            if key not in links:
                continue
            if self._defers(member, item, failed=failed):
                item.deferred[member] = record.version
                tx.set_version(sync_id, key, "")
            else:
                tx.set_version(sync_id, key, "" if failed else record.version)

    def _defers(self, member: str, item: Touched, *, failed: bool) -> bool:
        """Whether a member's version waits for its new comments to be copied (see :meth:`mirror_comments`).

        Where the item changed, new comments may be there; its version is stored only once they are copied, so a
        crash or a failed read in between makes the next pass read the record, and its comments, again.
        """
        return not failed and self.group.comments and (member in item.changed or member in item.rescan)

    def _only_ours(self, decided: Plan, item: Touched, member: str, written: Record) -> bool:
        """Whether a record read back after a write decodes to the new base (held conflicts, refusals aside)."""
        codec = self.group.codecs[member]
        view = codec.align(codec.decode(written)[0], decided.base)
        held = {conflict.field for conflict in decided.conflicts if conflict.held}
        # A value the tool refused is not there, and syncd did not expect it to be.
        held |= {
            name for name, refusal in item.refusals_at(member).items() if same(decided.base.get(name), refusal.value)
        }
        return all(
            same(value, decided.base[name])
            for name, value in view.values.items()
            if name in decided.base and name not in held
        )

    def _conflicts(self, tx: Tx, decided: Plan) -> None:
        """Audit each conflict decision; queue held ones for a person; close queued ones that are settled."""
        held_fields = set()
        for conflict in decided.conflicts:
            losers = {k: v for k, v in conflict.values.items() if k != conflict.winner}
            if conflict.held:
                held_fields.add(conflict.field)
                queued, changed = tx.hold_conflict(
                    str(ULID()),
                    sync_id=decided.sync_id,
                    group=self.group.name,
                    field=conflict.field,
                    base_value=conflict.result,
                    values=conflict.values,
                )
                if not changed:
                    continue  # the same conflict, still waiting: audited when it was queued
                message = f"held for a person: syncd conflicts resolve {queued.id} --take DEPARTMENT"
            else:
                message = None
            append(
                tx,
                AuditEvent(
                    "conflict",
                    group=self.group.name,
                    sync_id=decided.sync_id,
                    field=conflict.field,
                    new=conflict.result,
                    origin=conflict.winner,
                    rule=conflict.rule,
                    loser=losers or None,
                    outcome="held" if conflict.held else "decided",
                    config_version=self.config_version,
                    message=message,
                ),
            )
        for queued in tx.conflicts(sync_id=decided.sync_id):
            if queued.field not in held_fields:
                tx.close_conflict(queued.id)
                append(
                    tx,
                    AuditEvent(
                        "resolve",
                        group=self.group.name,
                        sync_id=decided.sync_id,
                        field=queued.field,
                        new=decided.base.get(queued.field),
                        origin=queued.take,
                        person=queued.resolved_by,
                        rule="manual",
                        loser={k: v for k, v in queued.values.items() if k != queued.take} or None,
                        outcome="applied" if queued.state == "decided" else "settled at the tools",
                        config_version=self.config_version,
                    ),
                )

    def _event(self, decided: Plan, item: Touched, step: Step, record: Record | None) -> AuditEvent:
        values = step.values if isinstance(step, Write | Create) else None
        origins = sorted({decided.origins[name] for name in values or {} if name in decided.origins})
        origin = origins[0] if len(origins) == 1 else (",".join(origins) or None)
        person = item.views[origins[0]].person if len(origins) == 1 and origins[0] in item.views else None
        return AuditEvent(
            type(step).__name__.lower(),
            group=self.group.name,
            sync_id=decided.sync_id,
            endpoint=step.endpoint,
            refs={step.endpoint: record.ref} if record is not None else {step.endpoint: getattr(step, "ref", "")},
            old=_old_values(item, step),
            new=values,
            origin=origin,
            person=person,
            outcome="applied",
            config_version=self.config_version,
            message=step.reason,
        )

    def _measure(self, decided: Plan, item: Touched, results: list[tuple[Step, Record | None]]) -> None:
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


def _unfinished(error: Exception | None) -> bool:
    """Whether a write failed in a way that may have left it half-done: an outage, or an answer that was lost.

    A person's edit meanwhile (ChangedMeanwhile) and a refusal are not: the record is as it is, planned again.
    """
    return isinstance(error, RetriableError) and not isinstance(error, ChangedMeanwhile)


def _cut_short(step: Mapping[str, Any]) -> str:
    """What stopped a journaled write: a crash, or (noted by the pass that kept the entry) an outage or lost answer."""
    return f"and left unfinished ({step['uncertain']})" if step.get("uncertain") else "before a crash"


def _sent_at(entry: JournalEntry, step: Mapping[str, Any]) -> datetime:
    """When a journaled write was sent (entries from before ``started_at`` was kept: when the plan was made)."""
    started = step.get("started_at")
    moment = datetime.fromisoformat(started) if started else entry.created_at
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _step_json(step: Step) -> dict[str, Any]:
    return {"kind": type(step).__name__, **asdict(step)}


def _journaled(step: Step, seen: Record | None) -> dict[str, Any]:
    """A step as the journal keeps it, with the version and time of the record the plan read (for recovery)."""
    return {
        **_step_json(step),
        "seen_version": seen.version if seen is not None else None,
        "seen_at": seen.modified.isoformat() if seen is not None else None,
    }


def _old_values(item: Touched, step: Step) -> dict[str, Any] | None:
    """What a write replaced at its endpoint (canonical), so the audit log shows before and after."""
    view = item.views.get(step.endpoint)
    if not isinstance(step, Write) or view is None:
        return None
    return {name: view.values.get(name) for name in step.values}
