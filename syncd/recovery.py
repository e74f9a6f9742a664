"""Crash recovery: resolve the journal entries a crash (or a lost answer) left, before the group's next pass plans.

An entry is a plan that was journaled and not committed (DESIGN.md, crash safety). For each of its steps, recovery
reads what the tool holds now: a create that happened is adopted through its marker (never repeated), a write that
happened is kept and audited, a write cut short is finished where only syncd can have left the field half-way;
the links' versions are cleared so the item is read afresh, and it is planned again from the base, which redoes
whatever did not happen. An entry whose tool does not answer stays for the next pass, and its item is not planned
meanwhile: without knowing whether its create happened, a plan could make a second mirror.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from syncd.audit import AuditEvent, append
from syncd.connector import Connector
from syncd.decide import credit, last_people
from syncd.errors import ChangedMeanwhile, ConnectorError, FatalError, RetriableError
from syncd.failures import Failures, uncertain_event
from syncd.journal import JournalStep
from syncd.mapping import Group
from syncd.merge import DELETED, same
from syncd.model import Record
from syncd.pass_data import PassReport, endpoint_key
from syncd.store import JournalEntry, Link, Store
from syncd.store.times import aware
from syncd.uncertain import recording

RECOVERED = "applied before a crash; recovered"


Credit = tuple[str | None, str | None, dict[str, str]]
"""A recovered write's ``origin``, ``person`` and ``people`` (see :func:`syncd.decide.credit`)."""


@dataclass
class _Recovered:
    """One journaled step as recovery found it: the record now, whether its values all landed, what to audit."""

    step: JournalStep
    record: Record | None
    adopted: Record | None = None
    landed: bool = False
    audit: tuple[str, str] | None = None
    """(event kind, outcome) of the write that happened, if one did."""
    theirs: frozenset[str] = frozenset()
    """Fields of a write cut short that a person changed since the plan's read: news, whatever syncd wrote before."""


class Recovery:
    """Resolves one group's journal entries through its connectors."""

    def __init__(
        self,
        group: Group,
        connectors: Mapping[str, Connector],
        store: Store,
        report: PassReport,
        failures: Failures,
        *,
        config_version: str = "",
    ) -> None:
        self.group = group
        self.connectors = connectors
        self.store = store
        self.report = report
        self.failures = failures
        self.config_version = config_version

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
                    self.failures.strike(tx, entry.sync_id, error)  # reported; struck only if not an outage
                continue
            replan.add(entry.sync_id)
            self.report.recovered += 1
        return replan - unresolved, unresolved

    def _recover(self, entry: JournalEntry) -> None:
        """Adopt creates by marker, finish writes a crash cut short, audit what landed; the item is then replanned.

        Each step's progress is journaled (``started``, ``done``). A write that was started and not done may have
        left a field half-way: a Jira status one transition short of its target is a value no person chose, and
        replanned as it stands it would count as Engineering's own change and override the others. Such writes are
        finished now, conditionally where the tool allows (a person's edit since the read makes Jira refuse it, and
        it is then planned as the change it is). A field whose every write completed takes the planned value as its
        base, so whatever a person did to it after syncd's write is planned as a change.
        """
        with recording() as uncertain:
            found = [self._recover_one(entry, JournalStep.from_json(step)) for step in entry.steps]
        steps = [step for step in found if step is not None]
        credits = self._credits(entry, steps)
        complete: dict[str, bool] = {}
        planned: dict[str, Any] = {}
        for done in steps:
            for name, value in done.step.sets.items():
                planned[name] = value
                complete[name] = complete.get(name, True) and done.landed
        with self.store.transaction() as tx:
            for event in uncertain:
                append(
                    tx, uncertain_event(self.group, event, sync_id=entry.sync_id, config_version=self.config_version)
                )
            links = tx.links(entry.sync_id)
            deleted = False
            for done in steps:
                member = done.step.endpoint
                key = endpoint_key(self.group.name, member)
                by = credits.get(member)
                if done.adopted is not None and key not in links:
                    tx.link(entry.sync_id, key, done.adopted.ref, "")
                    outcome = "its answer was lost; found by its marker" if done.step.uncertain else RECOVERED
                    append(
                        tx,
                        self._event(entry, "create", member, done.adopted, None, outcome=outcome, by=by),
                    )
                if done.record is not None and done.audit is not None:
                    kind, outcome = done.audit
                    append(
                        tx,
                        self._event(entry, kind, member, done.record, done.step, outcome=outcome, by=by),
                    )
                if done.landed and done.step.sets:
                    tx.add_echoes(entry.sync_id, key, done.step.sets)  # syncd's own write, not a change there
                if done.theirs:
                    # A person's edit after syncd began moving the field away from what it wrote there before: an
                    # earlier echo of that field no longer says the value is syncd's, even if the edit put it back.
                    tx.drop_echoes(entry.sync_id, key, done.theirs)
                if done.step.kind == "delete" and done.landed:
                    # Deleted before the crash: audited with what the mirror held, and the item marked as being
                    # deleted, so the replan finishes the other mirrors and never makes this one again.
                    append(tx, self._deleted_event(entry, done.step, links.get(key)))
                    deleted = True
            for key in links:
                tx.set_version(entry.sync_id, key, "")  # read everything afresh: the plan is made again
            base = tx.base(entry.sync_id)
            settled = {name: value for name, value in planned.items() if complete[name]}
            if deleted:
                settled[DELETED] = True
            if base is not None and settled:
                tx.set_base(entry.sync_id, {**base, **settled})
            tx.journal_done(entry.plan_id)

    def _recover_one(self, entry: JournalEntry, step: JournalStep) -> _Recovered | None:
        """Where one journaled step got to (a delete's outcome is only read: see :meth:`_recover_delete`)."""
        if step.kind == "delete":
            return self._recover_delete(step)
        return self._recover_step(entry, step)

    def _recover_delete(self, step: JournalStep) -> _Recovered | None:
        """A journaled delete, resolved by reading: the record gone means it was made, there means it was not.

        Deleting is idempotent, so nothing is sent here: a delete that was not made is planned again (the item is
        still deleted at its source). A record gone although the delete was never sent was deleted by a person:
        the replan finds that deletion as it is, with nothing to audit as syncd's.
        """
        connector = self.connectors.get(step.endpoint)
        if connector is None or step.committed:
            return None
        fetched = connector.fetch([step.ref or ""])
        return _Recovered(step, fetched[0] if fetched else None, landed=step.started and not fetched)

    def _recover_step(self, entry: JournalEntry, step: JournalStep) -> _Recovered | None:
        """Where one journaled step got to, finishing it if the crash cut it short (see :meth:`_recover`)."""
        connector = self.connectors.get(step.endpoint)
        if connector is None or not step.writes or step.committed:
            # A member that left the group since, an unlink, or a step applied, linked and audited by the pass
            # whose commit kept this entry for a later step: nothing of it to recover.
            return None
        if step.kind == "create":
            done = self._recover_create(entry, step)
        else:
            fetched = connector.fetch([step.ref or ""])
            done = _Recovered(step, fetched[0] if fetched else None)
        if done.record is None:
            return done
        if step.kind in {"archive", "restore"}:
            # Landed if the record is (still, or again) where the step took it; a restore's values missing, or a
            # restore not landed, are left to the replan, which restores again while the rejected guard is open.
            if self.group.codecs[step.endpoint].decode(done.record)[0].archived == (step.kind == "archive"):
                done.audit = (step.kind, RECOVERED)
            return done
        done.landed = step.done
        if step.started and not done.landed:
            before = done.record
            done.record, done.landed, done.theirs = self._finish(step, done.record)
            if done.record is not before:
                done.audit = ("write", f"begun {step.cut_short()}; finished on recovery")
                return done
            if not done.landed and step.kind == "write":
                done.audit = ("write", f"begun {step.cut_short()}, not finished; planned again")
                return done
        else:
            done.landed = done.landed or not self._unlanded(step, done.record)
        if step.kind == "write" and done.landed and (step.started or step.done):
            done.audit = ("write", RECOVERED)
        return done

    def _recover_create(self, entry: JournalEntry, step: JournalStep) -> _Recovered:
        """A journaled create: the mirror found by its marker if the create was sent, else nothing to find."""
        if not step.started:
            return _Recovered(step, None)  # never sent: nothing to find, the replan creates it
        fields, _ = self.group.codecs[step.endpoint].encode(step.values, create=True)
        record = self.connectors[step.endpoint].find_by_marker(entry.sync_id, step.sent_at(entry.created_at), fields)
        return _Recovered(step, record, adopted=record)

    def _unlanded(self, step: JournalStep, record: Record) -> dict[str, Any]:
        """The step's values its record does not hold (read as the step's own values, for lossy fields)."""
        codec = self.group.codecs[step.endpoint]
        view = codec.align(codec.decode(record)[0], step.values)
        return {
            name: value
            for name, value in step.values.items()
            if name not in view.values or not same(view.values[name], value)
        }

    def _finish(self, step: JournalStep, record: Record) -> tuple[Record, bool, frozenset[str]]:
        """Write what an interrupted step did not get to; (the record now, whether the step is complete, theirs).

        ``theirs``: the step's unlanded fields a person changed since the plan's read, left as they are.
        Only values the record does not hold are written, with the version just read as the condition. If the
        tool refuses (a person changed the record meanwhile, or the value cannot be written), the step stays
        incomplete and the replan takes the record as it is; an outage leaves the entry for the next pass.
        """
        missing = self._unlanded(step, record)
        if not missing:
            return record, True, frozenset()
        theirs = frozenset(self._changed_by_others(step, record) & missing.keys())
        missing = {name: value for name, value in missing.items() if name not in theirs}
        if not missing:
            return record, False, theirs  # a person changed them since the plan's read: their edit, planned as such
        fields, _ = self.group.codecs[step.endpoint].encode(missing)
        if not fields:
            return record, False, theirs
        try:
            written = self.connectors[step.endpoint].update(record.ref, fields, record.version)
        except ChangedMeanwhile:
            return record, False, theirs
        except ConnectorError as error:
            if isinstance(error, RetriableError | FatalError):
                raise  # retried on the next pass (or stops it): the entry stays until it is resolved
            return record, False, theirs
        self.report.wrote()
        return written, not self._unlanded(step, written), theirs

    def _changed_by_others(self, step: JournalStep, record: Record) -> set[str]:
        """Fields someone other than syncd changed since the plan read the record (for a create: ever).

        From the tool's own history, so an interrupted write is finished only where the value left is syncd's
        (a Jira status part-way along its workflow), never over a person's edit made while syncd was down. If the
        history cannot be read, every field counts as changed by someone: nothing is overwritten on a guess.
        """
        since: datetime | None = step.seen_at
        try:
            history = self.group.codecs[step.endpoint].history(self.connectors[step.endpoint].history(record.ref))
        except ConnectorError as error:
            if isinstance(error, RetriableError | FatalError):
                raise  # retried on the next pass (or stops it): the entry stays until it is resolved
            return set(step.values)
        return {change.field for change in history if not change.by_self and (since is None or change.at > since)}

    def _credits(self, entry: JournalEntry, steps: list[_Recovered]) -> dict[str, Credit]:
        """Endpoint -> whom the audit event of its recovered write credits, as the pass's event would have.

        The people the plan knew are journaled with the step; the others are looked up now in each origin's history
        (one read per origin member, before any transaction opens), up to the time of the record the plan read
        there. A history that cannot be read leaves those fields naming no one: never a guess, and never a reason
        to hold the recovery up.
        """
        audited = [done.step for done in steps if done.step.sets and (done.audit or done.adopted is not None)]
        unnamed: dict[str, set[str]] = {}
        for step in audited:
            for name, member in step.origins.items():
                if name not in step.people:
                    unnamed.setdefault(member, set()).add(name)
        looked_up: dict[str, dict[str, str]] = {}
        if unnamed:
            with self.store.transaction() as tx:
                links = tx.links(entry.sync_id)
            for member, names in sorted(unnamed.items()):
                link = links.get(endpoint_key(self.group.name, member))
                connector = self.connectors.get(member)
                if link is None or connector is None:
                    continue
                try:
                    history = self.group.codecs[member].history(connector.history(link.ref))
                except ConnectorError:
                    continue
                read_at = next((s.origin_read[member] for s in audited if member in s.origin_read), None)
                looked_up[member] = last_people(history, names, read_at or aware(entry.created_at))
        credits: dict[str, Credit] = {}
        for step in audited:
            found = {n: p for n, m in step.origins.items() if (p := looked_up.get(m, {}).get(n)) is not None}
            credits[step.endpoint] = credit(step.sets, step.origins, {**found, **step.people})
        return credits

    def _deleted_event(self, entry: JournalEntry, step: JournalStep, link: Link | None) -> AuditEvent:
        """The audit event of a delete recovery found made: the mirror's last values, as the pass journaled them."""
        return AuditEvent(
            "delete",
            group=self.group.name,
            sync_id=entry.sync_id,
            endpoint=step.endpoint,
            refs={step.endpoint: step.ref or (link.ref if link is not None else "")},
            old=dict(step.values),
            outcome=RECOVERED,
            config_version=self.config_version,
            message=step.reason,
        )

    def _event(
        self,
        entry: JournalEntry,
        kind: str,
        member: str,
        record: Record,
        step: JournalStep | None,
        *,
        outcome: str,
        by: Credit | None = None,
    ) -> AuditEvent:
        """The audit event of a write recovery found made (or finished, or adopted by its marker), crediting ``by``."""
        origin, person, people = by or (None, None, {})
        return AuditEvent(
            kind,
            group=self.group.name,
            sync_id=entry.sync_id,
            endpoint=member,
            refs={member: record.ref},
            new=dict(step.values) if step is not None and step.kind in {"create", "write"} else None,
            origin=origin,
            person=person,
            people=people or None,
            outcome=outcome,
            config_version=self.config_version,
            message=step.reason if step is not None else "created before a crash; adopted by its marker",
        )
