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

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ulid import ULID

from syncd.audit import AuditEvent, append
from syncd.comments import Original, attributed, copies, mirrored_from
from syncd.connector import Connector
from syncd.crash import crash_point
from syncd.errors import ConnectorError, FatalError, RetriableError, SyncdError
from syncd.mapping import Group, MappingProblem
from syncd.merge import same
from syncd.model import Record
from syncd.plan import Archive, Create, Plan, Step, Unlink, View, Write
from syncd.store import CommentRow, DuplicateLink, JournalEntry, Link, Store, Tx


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

    @property
    def ok(self) -> bool:
        """Whether every item synced (problems are reported values, not failures)."""
        return not self.failures


@dataclass
class Touched:
    """One item as the pass found it: decoded views, the records behind them, and where it is gone or out of scope."""

    views: dict[str, View] = field(default_factory=dict)
    seen: dict[str, Record] = field(default_factory=dict)
    deleted: dict[str, str] = field(default_factory=dict)
    out_of_scope: dict[str, str] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)
    """Members whose record changed since syncd last saw it there (where new comments may be)."""
    deferred: dict[str, str] = field(default_factory=dict)
    """Member -> the version to store once its new comments are copied (see Executor._commit)."""


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
                continue
            replan.add(entry.sync_id)
            self.report.recovered += 1
        return replan - unresolved, unresolved

    def _recover(self, entry: JournalEntry) -> None:
        """Adopt created mirrors by marker, audit the writes that landed, forget the rest (replanning redoes it)."""
        adopted: list[tuple[str, Record]] = []
        landed: list[tuple[dict[str, Any], Record]] = []
        touched_fields: dict[str, tuple[dict[str, Any], Record]] = {}
        for step in entry.steps:
            member = step["endpoint"]
            connector = self.connectors.get(member)
            if connector is None:
                continue  # the member left the group since: nothing of it to recover
            if step["kind"] == "Create":
                record = connector.find_by_marker(entry.sync_id)
                if record is not None:
                    adopted.append((member, record))
            elif step["kind"] in {"Write", "Archive"}:
                found = connector.fetch([step["ref"]])
                if found and self._landed(step, found[0]):
                    landed.append((step, found[0]))
                if step["kind"] == "Write" and found and found[0].version != step.get("seen_version"):
                    touched_fields[member] = (step["values"], found[0])
        with self.store.transaction() as tx:
            links = tx.links(entry.sync_id)
            for member, record in adopted:
                key = endpoint_key(self.group.name, member)
                if key not in links:
                    tx.link(entry.sync_id, key, record.ref, "")
                    append(tx, self._recovered_event(entry, "create", member, record, None))
            for step, record in landed:
                append(tx, self._recovered_event(entry, step["kind"].lower(), step["endpoint"], record, step))
            for key in links:
                tx.set_version(entry.sync_id, key, "")  # read everything afresh: the plan is made again
            base = tx.base(entry.sync_id)
            if touched_fields and base is not None:
                tx.set_base(entry.sync_id, {**base, **self._reverted(base, touched_fields)})
            tx.journal_done(entry.plan_id)

    def _reverted(
        self, base: Mapping[str, Any], written: Mapping[str, tuple[dict[str, Any], Record]]
    ) -> dict[str, Any]:
        """Fields a person set back to the old base value after syncd's interrupted write: the base to plan from.

        The record changed since the plan and a field holds the old base value, not what syncd wrote: syncd's write
        landed and a person then changed the field back (say, moved the issue back). Compared with the old base, that
        edit would look like no change at all and be overwritten; from a base holding what syncd wrote, it is the
        change it is. Fields holding what syncd wrote need nothing (the write landed; replanning keeps it).
        """
        base_values: dict[str, Any] = {}
        for member, (values, record) in written.items():
            codec = self.group.codecs.get(member)
            if codec is None:
                continue
            view = codec.align(codec.decode(record)[0], base)
            for name, planned in values.items():
                if (
                    name in view.values
                    and same(view.values[name], base.get(name))
                    and not same(planned, base.get(name))
                ):
                    base_values[name] = planned
        return base_values

    def _landed(self, step: Mapping[str, Any], record: Record) -> bool:
        view, _ = self.group.codecs[step["endpoint"]].decode(record)
        if step["kind"] == "Archive":
            return view.archived
        return all(name in view.values and same(view.values[name], value) for name, value in step["values"].items())

    def _recovered_event(
        self, entry: JournalEntry, kind: str, member: str, record: Record, step: Mapping[str, Any] | None
    ) -> AuditEvent:
        return AuditEvent(
            kind,
            group=self.group.name,
            sync_id=entry.sync_id,
            endpoint=member,
            refs={member: record.ref},
            new=step.get("values") if step else None,
            outcome="applied before a crash; recovered",
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
                    read_at = {member: record.version for member, record in item.seen.items()}
                    steps = [{**_step_json(s), "seen_version": read_at.get(s.endpoint)} for s in decided.steps]
                    tx.journal_add(plan_id, decided.sync_id, self.group.name, steps)
        except DuplicateLink as refused:
            # A ref already belongs to another item (a marker copied by hand, two mirrors): a person must look.
            with self.store.transaction() as tx:
                self._strike(tx, decided.sync_id, refused, force=True)
            return
        crash_point("after-journal")
        results: list[tuple[Step, Record | None]] = []
        error: Exception | None = None
        try:
            for step in decided.steps:
                # The version the plan was made from, while this plan has not itself changed that record yet.
                seen = item.seen.get(step.endpoint)
                expected = (
                    seen.version if seen is not None and all(s.endpoint != step.endpoint for s, _ in results) else None
                )
                results.append((step, self._apply(decided.sync_id, step, expected)))
        except FatalError:
            raise  # an endpoint-wide problem: stop the pass; the journal entry is recovered on the next one
        except Exception as failure:  # one bad item must not stop the others: it is struck below
            error = failure
        crash_point("before-commit")
        with self.store.transaction() as tx:
            self._commit(tx, decided, item, results, failed=error is not None)
            if error is None:
                tx.clear_failure(decided.sync_id)
            else:
                self._strike(tx, decided.sync_id, error)
            if decided.steps:
                tx.journal_done(plan_id)
        if error is None:
            self._measure(decided, item, results)

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
        for copy in copies(originals, mirrored, links):
            source = copy.original
            text = self.group.codecs[copy.endpoint].text_out(
                attributed(source, self.group.codecs[source.endpoint].tool)
            )
            posted = self.connectors[copy.endpoint].add_comment(links[copy.endpoint].ref, text)
            self.report.writes += 1
            crash_point("after-comment")
            with self.store.transaction() as tx:
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

    def _new_comments(
        self, sync_id: str, item: Touched, links: Mapping[str, Link], known: set[tuple[str, str]]
    ) -> list[CommentRow]:
        """Comments not seen before at the members that changed: originals, or copies found after a crash."""
        found: list[CommentRow] = []
        for member in sorted(item.changed & links.keys()):
            key = endpoint_key(self.group.name, member)
            for comment in self.connectors[member].comments(links[member].ref):
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

    def _apply(self, sync_id: str, step: Step, expected_version: str | None) -> Record | None:
        connector = self.connectors[step.endpoint]
        codec = self.group.codecs[step.endpoint]
        if isinstance(step, Write):
            fields, problems = codec.encode(step.values)
            self.report.problems += problems
            if not fields:
                return None
            written = connector.update(step.ref, fields, expected_version)
            self.report.writes += 1
            crash_point("after-update")
            return written
        if isinstance(step, Create):
            fields, problems = codec.encode(step.values, create=True)
            self.report.problems += problems
            created = connector.create(fields, sync_id)
            self.report.writes += 1
            crash_point("after-create")
            return created
        if isinstance(step, Archive):
            archived = connector.archive(step.ref)
            self.report.writes += 1
            return archived
        return None

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
        links = tx.links(sync_id)
        for member, record in item.seen.items():
            # After a failure the item keeps its identity (links) but not the versions it was read at, so the
            # next pass reads it as changed and plans it again instead of skipping it as already synced.
            key = endpoint_key(group, member)
            if key not in links:
                continue
            if self._defers(member, item, failed=failed):
                item.deferred[member] = record.version
                tx.set_version(sync_id, key, "")
            else:
                tx.set_version(sync_id, key, "" if failed else record.version)
        for member in (*item.deleted, *item.out_of_scope):
            tx.unlink(sync_id, endpoint_key(group, member))
        for step, written in results:
            key = endpoint_key(group, step.endpoint)
            # The version read back after a write is syncd's own only if the record holds exactly what syncd wrote:
            # a person's edit that landed between the write and the read-back must not be taken for syncd's.
            ours = written is not None and not failed and self._only_ours(decided, step.endpoint, written)
            version = written.version if written is not None and ours else ""
            if isinstance(step, Unlink):
                tx.unlink(sync_id, key)
            elif isinstance(step, Create) and written is not None:
                tx.link(sync_id, key, written.ref, version)
            elif written is not None:
                if version and self._defers(step.endpoint, item, failed=failed):
                    item.deferred[step.endpoint], version = version, ""
                tx.set_version(sync_id, key, version)
            if isinstance(step, Write) and written is None:
                continue  # nothing was mappable: nothing was written, nothing to audit
            append(tx, self._event(decided, item, step, written))
        if failed:
            return
        tx.set_base(sync_id, decided.base)
        self._conflicts(tx, decided)

    def _defers(self, member: str, item: Touched, *, failed: bool) -> bool:
        """Whether a member's version waits for its new comments to be copied (see :meth:`mirror_comments`).

        Where the item changed, new comments may be there; its version is stored only once they are copied, so a
        crash or a failed read in between makes the next pass read the record, and its comments, again.
        """
        return not failed and self.group.comments and member in item.changed

    def _only_ours(self, decided: Plan, member: str, written: Record) -> bool:
        """Whether a record read back after a write decodes to the new base (held conflicts aside)."""
        codec = self.group.codecs[member]
        view = codec.align(codec.decode(written)[0], decided.base)
        held = {conflict.field for conflict in decided.conflicts if conflict.held}
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


def _step_json(step: Step) -> dict[str, Any]:
    return {"kind": type(step).__name__, **asdict(step)}


def _old_values(item: Touched, step: Step) -> dict[str, Any] | None:
    """What a write replaced at its endpoint (canonical), so the audit log shows before and after."""
    view = item.views.get(step.endpoint)
    if not isinstance(step, Write) or view is None:
        return None
    return {name: view.values.get(name) for name in step.values}
