"""The apply stage: one item's plan journaled, applied through the connectors, and committed in one transaction.

Per item (DESIGN.md, crash safety): the plan is journaled (:mod:`syncd.journal`), and the item and the refs it was
read from are linked with an unknown version, in one transaction; the steps are applied, each tool's in order and
the tools at once, each write's progress noted; then links, versions, the new base and one audit event per remote
write are committed together and the journal entry is cleared. A crash anywhere in between leaves the journal
entry, which :mod:`syncd.recovery` resolves before the group's next pass.

Failures are per item (:mod:`syncd.failures`): a refused write, a missing item or a bug in one item's data strike
that item; a retriable failure (the tool was down) is retried without striking; a fatal one (credentials,
configuration) stops the pass, since every other item would fail the same way.
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from ulid import ULID

from syncd import journal
from syncd.audit import AuditEvent, append
from syncd.connector import Connector
from syncd.crash import crash_point
from syncd.decide import attributed, credit
from syncd.errors import (
    ChangedMeanwhile,
    ConnectorError,
    FatalError,
    InvalidItem,
    LeaseLost,
    OutcomeUnknown,
    RetriableError,
)
from syncd.failures import Failures, uncertain_event
from syncd.fanout import each
from syncd.mapping import Group, MappingProblem
from syncd.merge import same
from syncd.model import FieldChange, Record
from syncd.notices import Outbox, held_conflict
from syncd.pass_data import Applied, PassReport, Touched, endpoint_key
from syncd.plan import Archive, Create, Delete, Plan, Refusal, Restore, Step, Unlink, Write
from syncd.store import DuplicateLink, Store, Tx
from syncd.uncertain import recording

__all__ = ["Executor", "PassReport", "Touched", "endpoint_key"]

Lane = tuple[list[tuple[int, Step, Record | None]], dict[int, Exception]]
"""What one endpoint's steps came to: (results by step index, the failure that stopped it, if any)."""


def _named(decided: Plan, item: Touched, histories: Mapping[str, list[FieldChange] | None]) -> Plan:
    """The plan with the people the histories read while writing name (those known when planning kept)."""
    if not histories:
        return decided
    return replace(decided, people={**attributed(decided, item.views, histories), **decided.people})


def _no_steps(indices: list[int]) -> Lane:
    """A lane with nothing to write (a member whose history alone is read)."""
    return [], {}


LEFT_OUT = "left out for this tool only; the rest of the item is written, and the field is tried again once it changes"


class Executor:
    """Applies and commits the plans of one pass of one group."""

    def __init__(
        self,
        group: Group,
        connectors: Mapping[str, Connector],
        store: Store,
        report: PassReport,
        failures: Failures,
        *,
        config_version: str = "",
        outbox: Outbox | None = None,
    ) -> None:
        self.group = group
        self.connectors = connectors
        self.store = store
        self.report = report
        self.failures = failures
        self.config_version = config_version
        self.outbox = outbox or Outbox()

    def execute(self, decided: Plan, item: Touched) -> Applied:
        """Journal, apply and commit one item's plan; a failure strikes the item and leaves it to be retried."""
        plan_id = str(ULID())
        applied = Applied()
        try:
            with self.store.transaction() as tx:
                self._claim(tx, decided.sync_id, item)
                if decided.steps:
                    steps = [
                        journal.planned(
                            step,
                            item.seen.get(step.endpoint),
                            origins=decided.origins,
                            people=decided.people,
                            read=item.seen,
                        ).to_json()
                        for step in decided.steps
                    ]
                    tx.journal_add(plan_id, decided.sync_id, self.group.name, steps)
        except DuplicateLink as refused:
            # A ref already belongs to another item (a marker copied by hand, two mirrors): a person must look.
            with self.store.transaction() as tx:
                self.failures.strike(tx, decided.sync_id, refused, force=True)
            return applied
        crash_point("after-journal")
        histories: dict[str, list[FieldChange] | None] = {}
        with recording() as uncertain:
            results, errors = self._apply_all(plan_id, decided, item, applied, histories)
        decided = _named(decided, item, histories)
        fatal = next((failure for failure in errors.values() if isinstance(failure, FatalError | LeaseLost)), None)
        if fatal is not None:
            # An endpoint-wide problem, or the group's lease lost: stop the pass; the journal entry is recovered by
            # the next pass (of whichever process holds the group then).
            raise fatal
        error = errors[min(errors)] if errors else None
        crash_point("before-commit")
        # A write left half-done by an outage, or whose answer was lost, stays journaled: the next pass finishes
        # it as after a crash (a create found by its marker, a Jira move from where it stopped) instead of taking
        # what syncd left there for a person's edit, or sending it again blind.
        written_at = {index for index, _, _ in results}
        pending = sorted(index for index, failure in errors.items() if _unfinished(failure) and index not in written_at)
        with self.store.transaction() as tx:
            done = [(step, written) for _, step, written in results]
            self._commit(tx, decided, item, done, applied=applied, failed=error is not None)
            for event in uncertain:
                append(
                    tx,
                    uncertain_event(self.group, event, sync_id=decided.sync_id, config_version=self.config_version),
                )
            if error is None and decided.waiting:
                self.failures.wait(tx, decided.sync_id, item.down, decided.waiting)
            elif error is None:
                tx.clear_failure(decided.sync_id)
                self.report.failures.pop(decided.sync_id, None)  # an earlier round of this pass may have failed it
                self.report.waiting.discard(decided.sync_id)
            else:
                self.failures.strike(tx, decided.sync_id, error)
            if pending:
                for index in sorted(written_at):
                    tx.journal_step(plan_id, index, **journal.committed())
                for index in pending:
                    tx.journal_step(plan_id, index, **journal.uncertain(str(errors[index])))
            elif decided.steps:
                tx.journal_done(plan_id)
        if error is None:
            self._measure(decided, item, [(step, written) for _, step, written in results])
        return applied

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
        self,
        plan_id: str,
        decided: Plan,
        item: Touched,
        applied: Applied,
        histories: dict[str, list[FieldChange] | None],
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

        The histories that name who made the changes written (``item.attribute``) are read into ``histories`` in
        the first round of writes, each member's after its own steps there (one call per tool at a time), so naming
        people costs no round trip of its own.
        """
        results: list[tuple[int, Step, Record | None]] = []
        errors: dict[int, Exception] = {}
        unread = set(item.attribute)
        creates = [index for index, step in enumerate(decided.steps) if isinstance(step, Create)]
        others = [index for index, step in enumerate(decided.steps) if not isinstance(step, Create)]
        for phase in (others, creates):
            if errors or not phase:
                continue
            lanes: dict[str, list[int]] = defaultdict(list)
            for index in phase:
                lanes[decided.steps[index].endpoint].append(index)
            lane = functools.partial(self._lane, plan_id, decided, item, applied)
            reading, unread = unread, set()
            calls: dict[str, Callable[[], Lane]] = {
                endpoint: functools.partial(
                    self._then_history, lane, indices, item, histories, endpoint, read=endpoint in reading
                )
                for endpoint, indices in lanes.items()
            }
            for member in sorted(reading - lanes.keys()):
                calls[member] = functools.partial(self._then_history, _no_steps, [], item, histories, member, read=True)
            outcomes = each(calls)
            for endpoint, outcome in outcomes.items():
                if isinstance(outcome, Exception):  # a bug outside any step: the lane's first step takes the blame
                    if endpoint in lanes:
                        errors[lanes[endpoint][0]] = outcome
                    elif isinstance(outcome, FatalError):
                        raise outcome
                    continue
                done, failed = outcome
                results += done
                errors.update(failed)
        if unread:  # no round of writes ran (a plan deciding without writing, or a failure first): read them now
            outcomes = each(
                {
                    member: functools.partial(self._then_history, _no_steps, [], item, histories, member, read=True)
                    for member in sorted(unread)
                }
            )
            for outcome in outcomes.values():
                if isinstance(outcome, FatalError):
                    raise outcome
        return sorted(results, key=lambda result: result[0]), errors

    def _then_history(
        self,
        lane: Callable[[list[int]], Lane],
        indices: list[int],
        item: Touched,
        histories: dict[str, list[FieldChange] | None],
        endpoint: str,
        *,
        read: bool,
    ) -> Lane:
        """One endpoint's steps, then (if ``read``) its history of the item, on the same thread of calls."""
        outcome = lane(indices)
        if read:
            view = item.views.get(endpoint)
            if view is not None:
                try:
                    history = self.connectors[endpoint].history(view.ref)
                    histories[endpoint] = self.group.codecs[endpoint].history(history)
                except Exception:  # whatever it was, the writes above stand and are committed
                    # Only names are at stake: the field names no one. Raised, it would take the lane's results
                    # with it and leave writes that happened without their links and audit events.
                    histories[endpoint] = None
        return outcome

    def _lane(
        self, plan_id: str, decided: Plan, item: Touched, applied: Applied, indices: list[int]
    ) -> tuple[list[tuple[int, Step, Record | None]], dict[int, Exception]]:
        """Apply one endpoint's steps in order; its results, and the failure that stopped it (if one did)."""
        results: list[tuple[int, Step, Record | None]] = []
        for index in indices:
            step = decided.steps[index]
            # The version the plan was made from, while this plan has not itself changed that record yet.
            seen = item.seen.get(step.endpoint)
            expected = seen.version if seen is not None and not results else None
            writes = isinstance(step, Write | Create | Archive | Delete | Restore)
            sent = datetime.now(UTC)
            try:
                if writes:
                    self._progress(plan_id, index, journal.started(sent))
                try:
                    written = self._apply(decided.sync_id, step, expected, item, applied)
                except Exception as failure:
                    adopted = self._created_anyway(decided.sync_id, step, sent, failure, applied)
                    if adopted is not None:
                        results.append((index, step, adopted))  # linked and audited by the commit, though it failed
                    raise
                results.append((index, step, written))
                if writes:
                    self._progress(plan_id, index, journal.done(written.version if written is not None else None))
            except LeaseLost:
                raise  # fenced out: not the item's fault; the pass stops (see execute)
            except Exception as failure:  # one bad step stops its endpoint's lane only; the item is struck
                return results, {index: failure}
            if isinstance(step, Write) and written is not None:
                crash_point("after-update")
            elif isinstance(step, Create):
                crash_point("after-create")
            elif isinstance(step, Delete):
                crash_point("after-delete")
        return results, {}

    def _created_anyway(
        self, sync_id: str, step: Step, sent: datetime, failure: Exception, applied: Applied
    ) -> Record | None:
        """The mirror a failed create made after all (the create landed, a later request of it failed), if any.

        A Jira create is a POST and then transitions, an Asana one a POST and then its marker: when a later request
        fails, the item exists. Linked and audited now, it is the item's mirror from the start; left alone, the
        next pass would adopt it by its marker with no audit event for a write that happened. A create the tool
        refused outright (``nothing_written``) made nothing, so there is nothing to look for. When the look cannot
        tell, OutcomeUnknown keeps the create journaled whatever the failure was, so recovery looks again on the
        next pass instead of a replan creating a second mirror. The fields a person changed on the mirror found
        go to ``applied.edited`` (see :meth:`_edited`).
        """
        if not isinstance(step, Create) or isinstance(failure, LeaseLost):
            return None  # fenced out: the look is a request too; the next holder's recovery finds what was made
        if isinstance(failure, ConnectorError) and failure.nothing_written:
            return None
        try:
            fields, _ = self.group.codecs[step.endpoint].encode(step.values, create=True)
            found = self.connectors[step.endpoint].find_by_marker(sync_id, sent, fields)
            if found is not None:
                applied.edited[step.endpoint] = self._edited(step.endpoint, found)
            return found
        except FatalError:
            raise
        except ConnectorError as error:
            if isinstance(failure, RetriableError):
                return None  # the failure itself keeps the create journaled: recovery looks on the next pass
            raise OutcomeUnknown(
                error.tool, f"the create failed ({failure}) and looking for what it made failed too ({error})"
            ) from failure

    def _edited(self, member: str, record: Record) -> frozenset[str]:
        """The canonical fields someone other than syncd changed on a mirror syncd just made, by its history.

        The commit of a create cut short takes the mirror's read-back for syncd's own (it holds the tool's defaults
        where the create stopped), except these: a person's edit in the moments before the read-back is news. A
        history that cannot be read names none (the defaults must not read as a change), and the next pass compares
        the mirror with the values syncd sent as before.
        """
        try:
            changes = (
                record.history.expanded() if record.history is not None else self.connectors[member].history(record.ref)
            )
        except ConnectorError:
            return frozenset()
        return frozenset(change.field for change in self.group.codecs[member].history(changes) if not change.by_self)

    def _progress(self, plan_id: str, index: int, progress: Mapping[str, Any]) -> None:
        """Note how far one journaled step got, in a transaction of its own (recovery reads it after a crash)."""
        with self.store.transaction() as tx:
            tx.journal_step(plan_id, index, **progress)

    def _apply(
        self, sync_id: str, step: Step, expected_version: str | None, item: Touched, applied: Applied
    ) -> Record | None:
        connector = self.connectors[step.endpoint]
        if isinstance(step, Archive | Delete | Restore):
            return self._remove_or_restore(step)
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
                    self._refused(
                        item, step, problem.field, values.pop(problem.field), problem.message, applied=applied
                    )
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
                self._refused(item, step, name, values.pop(name), refusal.message, applied=applied)
                continue
            if fitted:
                applied.fitted[step.endpoint] = fitted
            self.report.wrote()
            return written
        raise AssertionError("unreachable: each round writes or leaves out one more field")

    def _remove_or_restore(self, step: Archive | Delete | Restore) -> Record | None:
        """Archive, delete or restore a mirror: what an archive or a restore leaves is read back, a delete leaves none.

        A restore undoes an archive a person rejected, then writes the agreed values the archived record lacked.
        """
        connector = self.connectors[step.endpoint]
        if isinstance(step, Archive):
            archived = connector.archive(step.ref)
            self.report.wrote()
            return archived
        if isinstance(step, Delete):
            connector.delete(step.ref)  # a record already gone counts as deleted (a retry, or a person's delete)
            self.report.wrote()
            return None
        restored = connector.restore(step.ref)
        self.report.wrote()
        fields, problems = self.group.codecs[step.endpoint].encode(dict(step.values))
        self.report.problems += problems
        if fields:
            restored = connector.update(step.ref, fields, None)
        return restored

    def _refused(
        self,
        item: Touched,
        step: Write | Create,
        name: str,
        value: Any,  # noqa: ANN401 - a canonical value
        message: str,
        *,
        applied: Applied,
    ) -> None:
        """Note a value left out of a write: the mirror keeps what it holds (a create's, what it is made with)."""
        view = item.views.get(step.endpoint)
        held = view.values.get(name) if view is not None else None
        applied.refused.setdefault(step.endpoint, {})[name] = Refusal(name, value, held, message, datetime.now(UTC))

    def _commit(
        self,
        tx: Tx,
        decided: Plan,
        item: Touched,
        results: list[tuple[Step, Record | None]],
        *,
        applied: Applied,
        failed: bool,
    ) -> None:
        """Links, versions, base values, held conflicts and audit events of one item, in the caller's transaction."""
        group = self.group.name
        sync_id = decided.sync_id
        self._keep_versions(tx, sync_id, item, applied, failed=failed)
        self._forget_gone(tx, decided, item, results, failed=failed)
        known = Counter(row.endpoint for row in tx.comment_rows(sync_id)) if self.group.comments else None
        deciders = _deciders(tx, decided)
        # The version read back after a write is syncd's own only if the record holds exactly what syncd wrote: a
        # person's edit that landed between the write and the read-back must not be taken for syncd's.
        mine = [
            written is not None and not failed and self._only_ours(decided, item, applied, s.endpoint, written)
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
                    applied.rescan.add(step.endpoint)
                if version and self._defers(step.endpoint, item, applied, failed=failed):
                    applied.deferred[step.endpoint], version = version, ""
                if isinstance(step, Create):
                    tx.link(sync_id, key, written.ref, version)
                else:
                    tx.set_version(sync_id, key, version)
            if (
                isinstance(step, Create)
                and written is not None
                and not failed
                and self._defaulted(decided, written, step)
            ):
                self.report.defaulted_at(step.endpoint, written.ref)
            self._note_values(tx, decided, item, step, written, applied=applied)
            if isinstance(step, Write) and written is None:
                continue  # nothing was mappable: nothing was written, nothing to audit
            append(tx, self._event(decided, item, step, written, deciders))
            if failed and isinstance(step, Write | Create) and written is not None:
                # The base stays as it was, so these values must not look like a change made at that endpoint. A
                # create's are all the new mirror holds (a create cut short leaves the tool's defaults, say To Do).
                made = self.group.codecs[step.endpoint].decode(written)[0].values if isinstance(step, Create) else {}
                # Except a value the tool chose itself where the item holds nothing (Jira's default priority): that
                # is news for the others, as after a create that went through (see _defaulted).
                made = {name: value for name, value in made.items() if name in step.values or name in decided.base}
                # And a field a person changed there before the read-back: theirs, news as well.
                edited = applied.edited.get(step.endpoint, frozenset())
                made = {name: value for name, value in made.items() if name not in edited}
                tx.add_echoes(sync_id, key, {**step.values, **made})
        if failed:
            return
        self._forget_refusals(tx, decided, item, applied)
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

    def _forget_gone(
        self, tx: Tx, decided: Plan, item: Touched, results: list[tuple[Step, Record | None]], *, failed: bool
    ) -> None:
        """Drop the links of records gone (deleted there, or deleted by this plan) and of mirrors out of scope.

        A deletion cut short (some deletes failed) keeps the deleted records' links, version unknown: the next pass
        finds them gone again and finishes it, where forgetting them would make the members lacking the item look
        like places to create it in. Once one mirror is deleted, the base says the item is being deleted.
        """
        group, sync_id = self.group.name, decided.sync_id
        deleted = [step.endpoint for step, _ in results if isinstance(step, Delete)]
        if failed and any(isinstance(step, Delete) for step in decided.steps):
            for member in (*item.deleted, *deleted):
                tx.set_version(sync_id, endpoint_key(group, member), "")
            if deleted:
                tx.set_base(sync_id, decided.base)
            gone: list[str] = []
        else:
            gone = [*item.deleted, *deleted]
        for member in (*gone, *item.out_of_scope):
            tx.unlink(sync_id, endpoint_key(group, member))

    def _note_values(
        self, tx: Tx, decided: Plan, item: Touched, step: Step, written: Record | None, *, applied: Applied
    ) -> None:
        """Store and audit the values a write left out (refused) or wrote in a form the tool takes (fitted)."""
        if not isinstance(step, Write | Create):
            return
        key = endpoint_key(self.group.name, step.endpoint)
        refs = {step.endpoint: written.ref if written is not None else getattr(step, "ref", "")}
        now: Mapping[str, Any] = {}
        if written is not None:
            codec = self.group.codecs[step.endpoint]
            now = codec.align(codec.decode(written)[0], decided.base).values
        for name, refusal in sorted(applied.refused.get(step.endpoint, {}).items()):
            if written is None and isinstance(step, Create):
                continue  # no mirror was made: nothing there holds anything yet
            kept = replace(refusal, held=now.get(name, refusal.held))
            applied.refused[step.endpoint][name] = kept
            tx.refuse(decided.sync_id, key, kept)
            self.report.refused.append((decided.sync_id, step.endpoint, kept))
            event = self._value_event(decided, step, refs, name, old=kept.held, new=refusal.value)
            append(tx, replace(event, outcome="left out", message=f"{refusal.message}; {LEFT_OUT}"))
        for problem in applied.fitted.get(step.endpoint, []) if written is not None else []:
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

    def _forget_refusals(self, tx: Tx, decided: Plan, item: Touched, applied: Applied) -> None:
        """Drop the refusals of values the item no longer holds: the new value was written there, or is to be."""
        for member, stored in item.refusals.items():
            for name, refusal in stored.items():
                if name not in applied.refused.get(member, {}) and not same(decided.base.get(name), refusal.value):
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

    def _keep_versions(self, tx: Tx, sync_id: str, item: Touched, applied: Applied, *, failed: bool) -> None:
        """Store the versions the item was read at, so syncd's next pass skips what it has already synced.

        After a failure the item keeps its identity (links) but not the versions it was read at, so the next pass
        reads it as changed and plans it again instead of skipping it as already synced.
        """
        links = tx.links(sync_id)
        for member, record in item.seen.items():
            key = endpoint_key(self.group.name, member)
            if key not in links:
                continue
            if self._defers(member, item, applied, failed=failed):
                applied.deferred[member] = record.version
                tx.set_version(sync_id, key, "")
            else:
                tx.set_version(sync_id, key, "" if failed else record.version)

    def _defers(self, member: str, item: Touched, applied: Applied, *, failed: bool) -> bool:
        """Whether a member's version waits for its new comments to be copied (see :meth:`mirror_comments`).

        Where the item changed, new comments may be there; its version is stored only once they are copied, so a
        crash or a failed read in between makes the next pass read the record, and its comments, again.
        """
        return not failed and self.group.comments and (member in item.changed or member in applied.rescan)

    def _defaulted(self, decided: Plan, written: Record, step: Create) -> bool:
        """Whether a new mirror holds a value the tool chose itself, in a field the item holds empty."""
        codec = self.group.codecs[step.endpoint]
        view = codec.decode(written)[0]
        return any(value is not None and name not in decided.base for name, value in view.values.items())

    def _only_ours(self, decided: Plan, item: Touched, applied: Applied, member: str, written: Record) -> bool:
        """Whether a record read back after a write decodes to the new base (held conflicts, refusals aside)."""
        codec = self.group.codecs[member]
        view = codec.align(codec.decode(written)[0], decided.base)
        held = {conflict.field for conflict in decided.conflicts if conflict.held}
        # A value the tool refused is not there, and syncd did not expect it to be.
        held |= {
            name
            for name, refusal in applied.refusals_at(item, member).items()
            if same(decided.base.get(name), refusal.value)
        }
        # A field the base does not hold was agreed empty: a value there is the tool's own (Jira's default priority
        # on a new issue), news for the others, so the version is not syncd's and the next pass reads the record.
        return all(same(value, decided.base.get(name)) for name, value in view.values.items() if name not in held)

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
                # Keyed by the conflict: values that change while it waits are audited, not notified again.
                self.outbox.record(
                    tx,
                    held_conflict(
                        queued.id,
                        group=self.group.name,
                        sync_id=decided.sync_id,
                        field=conflict.field,
                        values=conflict.values,
                        title=decided.base.get("title"),
                    ),
                )
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
                    # A rule decided, not a person: it names whose change won (a person's decision: see resolve).
                    people=_winner(decided, conflict.field, conflict.winner),
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

    def _event(
        self, decided: Plan, item: Touched, step: Step, record: Record | None, deciders: Mapping[str, str]
    ) -> AuditEvent:
        """A remote write's event: what it replaced with what, and whose change (per field) and decision it carries.

        ``people`` names, per field carrying a change, who made it (from the origin's history: :mod:`syncd.decide`);
        ``person`` only when that is one person for every such field, so no write names someone for a change they
        did not make. A field a conflict decided names its rule; one a person decided names them in ``decided_by``.
        """
        if isinstance(step, Delete):
            return self._deleted_event(decided, item, step)
        values = step.values if isinstance(step, Write | Create | Restore) else None
        origin, person, people = credit(values or {}, decided.origins, decided.people)
        carried = sorted(name for name in values or {} if name in decided.origins)
        if isinstance(step, Unlink | Restore) and step.decided_by is not None:
            person = step.decided_by  # a person's decision (a rejected mass change), not a tool's change
        rules = sorted({c.rule for c in decided.conflicts if not c.held and c.field in carried})
        decided_by = {name: deciders[name] for name in carried if name in deciders}
        return AuditEvent(
            step.kind,
            group=self.group.name,
            sync_id=decided.sync_id,
            endpoint=step.endpoint,
            refs={step.endpoint: record.ref} if record is not None else {step.endpoint: getattr(step, "ref", "")},
            old=_old_values(item, step),
            new=values,
            origin=origin,
            person=person,
            people=people or None,
            decided_by=decided_by or None,
            rule=",".join(rules) or None,
            outcome="applied",
            config_version=self.config_version,
            message=step.reason,
        )

    def _deleted_event(self, decided: Plan, item: Touched, step: Delete) -> AuditEvent:
        """A delete's event: every mapped value the mirror held (``old``) and the refs, so a person can restore it.

        ``refs`` names the deleted mirror and the records whose deletion asked for it; the item's last agreed
        values are its base (``syncd audit --item``), and this event keeps what the mirror itself held.
        """
        sources = sorted(item.deleted)
        return AuditEvent(
            "delete",
            group=self.group.name,
            sync_id=decided.sync_id,
            endpoint=step.endpoint,
            refs={**dict(item.deleted), step.endpoint: step.ref},
            old=dict(step.values),
            origin=",".join(sources) or None,
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


def _deciders(tx: Tx, decided: Plan) -> dict[str, str]:
    """Field -> who decided the held conflict this plan applies (read only when the plan applies a decision)."""
    if not any(conflict.rule.startswith("manual:") for conflict in decided.conflicts):
        return {}
    return {
        queued.field: queued.resolved_by
        for queued in tx.conflicts(sync_id=decided.sync_id)
        if queued.state == "decided" and queued.resolved_by
    }


def _winner(decided: Plan, name: str, winner: str | None) -> dict[str, str] | None:
    """The person whose change won a conflict, as ``{field: e-mail}``, when the winner's history names them."""
    if winner is None or decided.origins.get(name) != winner or name not in decided.people:
        return None
    return {name: decided.people[name]}


def _unfinished(error: Exception | None) -> bool:
    """Whether a write failed in a way that may have left it half-done: an outage, or an answer that was lost.

    A person's edit meanwhile (ChangedMeanwhile) and a refusal are not: the record is as it is, planned again.
    """
    return isinstance(error, RetriableError) and not isinstance(error, ChangedMeanwhile)


def _old_values(item: Touched, step: Step) -> dict[str, Any] | None:
    """What a write replaced at its endpoint (canonical), so the audit log shows before and after."""
    view = item.views.get(step.endpoint)
    if not isinstance(step, Write) or view is None:
        return None
    return {name: view.values.get(name) for name in step.values}
