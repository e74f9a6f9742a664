"""The read stage: what changed in each member's tool, matched to items, with every other view of those items.

No store transaction is open while a tool is waited on (the store's write lock is never held over the network):
the feeds (or, for a webhook's hints, the named records with the views their links name) are read first, all
members at once; the records are then matched to items in short transactions, 500 at a time; records a listing
missed are read back to tell deletions from paging skips; last, the views of the touched items that their
members did not report are read, one batch per member, all members at once.

Each record is matched to an item by its link (or adopted by its marker after a lost create, or born as a new
item) and decoded by the member's codec. A record at the version syncd last saw that still holds the item's base
is syncd's own write coming back, or nothing new: it is skipped, so nothing echoes (versions save work; the state
decides). A member whose tool cannot be read is left out of the pass, not the group.
"""

from __future__ import annotations

import functools
import threading
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ulid import ULID

from syncd import richtext
from syncd.connector import Connector
from syncd.errors import ConnectorError, SideEmptied
from syncd.fanout import each
from syncd.mapping import TEXT_FORMATS, Group, MappingProblem
from syncd.merge import check_side, heed, same
from syncd.model import ChangeBatch, Record
from syncd.pass_data import PassReport, Touched, endpoint_key
from syncd.plan import Refusal, View
from syncd.store import CHUNK, Link, Store, Tx


@dataclass
class Found:
    """What the read stage found: the touched items, each member's batch, and the members that could not be read.

    ``bases`` holds the base values the read stage looked up for touched items (None: never synced), so the plan
    stage reads only the others'.
    """

    touched: dict[str, Touched]
    batches: dict[str, ChangeBatch]
    down: dict[str, ConnectorError] = field(default_factory=dict)
    bases: dict[str, dict[str, Any] | None] = field(default_factory=dict)


@dataclass
class _Matched:
    """One member's batch matched to the store in the thread that read it, for :meth:`Reader._collect` to file.

    Matching is most of the read stage's own work after decoding (the links and bases of every record, the
    comparison of each record at its last seen version with its base): done as soon as the member's tool answers,
    it overlaps the wait for the slower members instead of following it.
    """

    kept: list[tuple[Record, Link | None]] = field(default_factory=list)
    """The records that may hold news, with their links: every record but those holding their base unchanged."""
    bases: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    """Item -> base values, for the kept records compared with theirs (None: never synced)."""
    deleted: dict[str, str] = field(default_factory=dict)
    """Ref -> item, for the refs the feed reports deleted that are linked."""
    linked: int | None = None
    """A full listing's count of the links at the endpoint (None: not a full listing)."""
    unlisted: list[Link] = field(default_factory=list)
    """The links a full listing missed (deleted, or skipped by the listing)."""


class _Early:
    """Every link and the base of the items a read thread matched, shared by the members' threads.

    The plan stage needs both for every touched item, after the slowest tool has answered. Looked up by the first
    thread that meets an item (while the slower tools are still being read), they cost the pass no time of its
    own; each item is looked up once, whichever members list it, and the members' threads that come later find
    their records' links here instead of in the store. Only valid for one read: applying changes both.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.links: dict[str, dict[str, Link]] = {}
        """Item -> endpoint -> link, for each item looked up (an item without links maps to nothing)."""
        self._at: dict[str, dict[str, Link]] = defaultdict(dict)
        """Endpoint -> ref -> link: the same links, by where they point."""
        self.bases: dict[str, dict[str, Any] | None] = {}
        """Item -> base values (None: never synced), for each item looked up."""
        self._claimed: set[str] = set()

    def look_up(self, tx: Tx, sync_ids: Iterable[str]) -> None:
        """Read the links and bases of the items not looked up yet (by this thread or another)."""
        with self._lock:
            mine = [sync_id for sync_id in dict.fromkeys(sync_ids) if sync_id not in self._claimed]
            self._claimed.update(mine)
        if not mine:
            return
        links, bases = tx.links_of(mine), tx.bases(mine)
        with self._lock:
            for sync_id in mine:
                self.links[sync_id] = held = links.get(sync_id, {})
                self.bases[sync_id] = bases.get(sync_id)
                for endpoint, link in held.items():
                    self._at[endpoint][link.ref] = link

    def find_links(self, tx: Tx, endpoint: str, refs: Sequence[str]) -> dict[str, Link]:
        """:meth:`Tx.find_links`, asking the store only for the refs of items no thread has looked up yet.

        An item looked up has every link here, so a ref at the endpoint that is not here is not linked to it.
        """
        with self._lock:
            at = self._at.get(endpoint, {})
            found = {ref: at[ref] for ref in refs if ref in at}
        if len(found) < len(refs):
            found |= tx.find_links(endpoint, [ref for ref in refs if ref not in found])
        return found


class Reader:
    """Reads one pass's items of one group from its members' tools."""

    def __init__(self, group: Group, connectors: Mapping[str, Connector], store: Store, report: PassReport) -> None:
        self.group = group
        self.connectors = connectors
        self.store = store
        self.report = report
        self._views: dict[int, tuple[Record, View, list[MappingProblem]]] = {}
        """Each record's decoding, by the record's identity: a record is decoded once a pass, however often asked."""
        self._matched: dict[str, _Matched] = {}
        """Each member's batch as its read thread matched it to the store (see :meth:`_match`)."""
        self._early = _Early()
        """The links and bases of the items the read threads found, looked up while slower tools still answer."""

    def read(
        self,
        *,
        hints: Mapping[str, Sequence[str]] | None,
        replan: Collection[str] = (),
        skip: Collection[str] = (),
    ) -> Found:
        """The touched items with every member's view: from the feeds, or from ``hints`` (member -> refs).

        ``replan`` adds items to plan whatever changed (a crash's, a failed one's, a decided conflict's); ``skip``
        leaves items out (quarantined, or a crash's create not resolved yet).
        """
        down: dict[str, ConnectorError] = {}
        prefetched: dict[str, dict[str, Record | None]] = {}
        self._early = _Early()  # never a read that stopped halfway's
        if hints is not None:
            with self.store.transaction() as tx:
                linked = self._linked(hints, tx)
            batches = self._read(
                lambda member: self._match(
                    member, self._hinted(member, hints.get(member, ()), linked.get(member, ()), prefetched)
                ),
                down,
            )
        else:
            with self.store.transaction() as tx:
                cursors = {m: tx.cursor(endpoint_key(self.group.name, m)) for m in self.group.codecs}
            batches = self._read(
                lambda member: self._match(member, self.connectors[member].changes(cursors[member])), down
            )
        touched, missing, bases = self._collect(batches)
        for member, links in self._gone(missing).items():
            for link in links:
                touched[link.sync_id].deleted[member] = link.ref
        with self.store.transaction() as tx:
            for sync_id in replan:
                if sync_id not in touched and tx.item_group(sync_id) == self.group.name:
                    touched[sync_id] = Touched()
            for sync_id in skip:
                touched.pop(sync_id, None)
            wanted, versions = self._wanted(touched, tx, down)
        self._complete(touched, wanted, versions, down, prefetched)
        bases = {**self._early.bases, **bases}
        self._views.clear()  # the touched items hold the views they need; the rest go with the pass's records
        self._matched.clear()
        self._early = _Early()  # applying this read's plans changes links and bases
        return Found(dict(touched), batches, down, {s: base for s, base in bases.items() if s in touched})

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

    def _predecode(self, member: str, batch: ChangeBatch) -> ChangeBatch:
        """Decode the batch's records in scope as soon as it arrives, in the thread that read it.

        The members are read at once; decoding (rich text above all) is most of syncd's own cost of a read, and done
        here it overlaps the wait for the slower members' listings instead of following it. Every record in scope
        is decoded later anyway (to tell whether it holds its base, or to plan it), so nothing is decoded in vain.
        A member whose tool stores Markdown is decoded after the others instead: its texts are mostly the canonical
        Markdown the others' texts have just converted to, which :func:`syncd.richtext.normalise` then knows as such.
        """
        codec = self.group.codecs[member]
        if TEXT_FORMATS[codec.capabilities.text][0] is richtext.normalise:  # the tool stores Markdown
            return batch
        for record in batch.records:
            if codec.in_scope(record):
                self._decoded(member, record)
        return batch

    def _decoded(self, member: str, record: Record) -> tuple[View, list[MappingProblem]]:
        """The record decoded by its member's codec, remembered for the rest of the pass."""
        known = self._views.get(id(record))
        if known is not None and known[0] is record:
            return known[1], known[2]
        view, problems = self.group.codecs[member].decode(record)
        self._views[id(record)] = (record, view, problems)
        return view, problems

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
        view = heed(codec.align(self._decoded(member, record)[0], base), base, refusals)
        # A field the base does not hold was agreed empty (empty values are not stored): holding one is news.
        return all(same(value, base.get(name)) for name, value in view.values.items())

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

    def _match(self, member: str, batch: ChangeBatch) -> ChangeBatch:
        """Decode and match one member's batch as it arrives, in the thread that read it (see :class:`_Matched`).

        In a read-only snapshot (on SQLite it neither takes nor waits for the write lock), a chunk of records at a
        time: the links and bases of one chunk, a few queries each; only the records that may hold news keep theirs.
        """
        self._predecode(member, batch)
        key = endpoint_key(self.group.name, member)
        matched = _Matched()
        listed: set[str] = set()
        linked_listed: set[str] = set()
        with self.store.reading() as connection:
            tx = Tx(connection)
            for start in range(0, len(batch.records), CHUNK):
                chunk = batch.records[start : start + CHUNK]
                kept_before = len(matched.kept)
                found = self._early.find_links(tx, key, [record.ref for record in chunk])
                linked_listed |= found.keys()
                # Only a record at its last seen version is compared with its base here; the plan stage reads the
                # rest at once (the other members' records of the same items would read them again).
                bases = tx.bases(
                    found[r.ref].sync_id for r in chunk if r.ref in found and found[r.ref].version == r.version
                )
                for record in chunk:
                    listed.add(record.ref)
                    link = found.get(record.ref)
                    if link is None:
                        matched.kept.append((record, None))
                        continue
                    if link.version == record.version and self._unchanged(
                        member, key, record, link.sync_id, tx=tx, bases=bases
                    ):
                        continue  # syncd's own write coming back, or nothing new since: no echo
                    matched.kept.append((record, link))
                    if link.version == record.version:
                        matched.bases[link.sync_id] = bases.get(link.sync_id)
                self._early.look_up(tx, (link.sync_id for record, link in matched.kept[kept_before:] if link))
            found = tx.find_links(key, batch.deleted)
            matched.deleted = {ref: found[ref].sync_id for ref in batch.deleted if ref in found}
            if batch.full_scan or batch.present is not None:
                # A listing of refs alone (``present``) tells deletions as a full scan does, under the same guard.
                listed |= batch.present or frozenset()
                matched.linked = tx.count_endpoint_links(key)
                # Refs are unique per endpoint: a full listing that found as many links as the endpoint has missed
                # none, and streams none of them.
                if batch.present is not None or matched.linked != len(linked_listed):
                    for link in tx.each_endpoint_link(key):  # streamed: only the links the listing missed are kept
                        if link.ref not in listed:
                            matched.unlisted.append(link)
        self._matched[member] = matched
        return batch

    def _collect(
        self, batches: Mapping[str, ChangeBatch]
    ) -> tuple[dict[str, Touched], dict[str, list[Link]], dict[str, dict[str, Any] | None]]:
        """The items the batches touch, per member the links a full listing missed, and the touched items' bases."""
        touched: dict[str, Touched] = defaultdict(Touched)
        missing: dict[str, list[Link]] = {}
        bases: dict[str, dict[str, Any] | None] = {}
        for member in batches:
            matched = self._matched[member]
            bases.update(matched.bases)
            for record, link in matched.kept:
                self._take(member, record, link, touched)
            for ref, sync_id in matched.deleted.items():
                touched[sync_id].deleted[member] = ref
            if matched.linked is not None:
                key = endpoint_key(self.group.name, member)
                try:
                    check_side(key, matched.linked, matched.linked - len(matched.unlisted))
                except SideEmptied as emptied:
                    # Most linked items missing looks like an outage: whatever is confirmed gone by reading it back
                    # is held by the mass-change guard whatever its number (syncd.guarding), the rest syncs on.
                    self.report.emptied[member] = str(emptied)
                missing[member] = matched.unlisted
        return touched, {member: links for member, links in missing.items() if links}, bases

    def _take(self, member: str, record: Record, link: Link | None, touched: dict[str, Touched]) -> None:
        """File one record of a member's batch under its item, unless it is not to mirror (see :meth:`_match`)."""
        codec = self.group.codecs[member]
        unchanged = link is not None and link.version == record.version
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
        view, problems = self._decoded(member, record)
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
        early = self._early.links
        linked = {sync_id: early[sync_id] for sync_id in touched if sync_id in early}
        linked |= tx.links_of(sync_id for sync_id in touched if sync_id not in early)
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
                    view, problems = self._decoded(member, record)
                    self.report.problems += problems
                    touched[sync_id].views[member] = view
                    touched[sync_id].seen[member] = record
                    if record.version != versions[(member, ref)]:
                        touched[sync_id].changed.add(member)
