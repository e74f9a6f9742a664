"""Comment mirroring, the stage after an item's plan is committed: new comments read, each original copied once.

Where the item changed (or a write of syncd's may have hidden a comment posted meanwhile), the member's comments
are read, all members at once; each original not seen before is recorded, then posted to every other linked
member, one comment at a time, each copy recorded and audited in its own transaction right after it is posted, so
a crash between the two leaves a copy that carries syncd's mark and is adopted, never posted twice. The pure rules
(attribution, marks, what goes where) are :mod:`syncd.comments`.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping

from syncd.audit import AuditEvent, append
from syncd.comments import Original, attributed, copies, mirrored_from
from syncd.connector import Connector
from syncd.crash import crash_point
from syncd.errors import FatalError, LeaseLost
from syncd.failures import Failures, uncertain_event
from syncd.fanout import each
from syncd.mapping import Group
from syncd.model import Record
from syncd.pass_data import Applied, PassReport, Touched, endpoint_key
from syncd.store import CommentRow, Link, Store
from syncd.uncertain import recording


class CommentMirror:
    """Copies one group's new comments between the tools that hold each item."""

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

    def mirror(self, sync_id: str, item: Touched, applied: Applied) -> None:
        """Read new comments where the item changed; copy each original once to every other linked endpoint."""
        try:
            self._mirror_comments(sync_id, item, applied)
        except (FatalError, LeaseLost):
            raise  # the endpoint, or the group's lease, is lost: the pass stops
        except Exception as failure:  # one item's comments must not stop the others: struck, retried by id
            with self.store.transaction() as tx:
                self.failures.strike(tx, sync_id, failure)
            return
        if applied.deferred:
            with self.store.transaction() as tx:
                links = tx.links(sync_id)
                for member, version in applied.deferred.items():
                    key = endpoint_key(self.group.name, member)
                    if key in links and links[key].version == "":
                        tx.set_version(sync_id, key, version)

    def _mirror_comments(self, sync_id: str, item: Touched, applied: Applied) -> None:
        group = self.group.name
        with self.store.transaction() as tx:
            links = {key.split("/", 1)[1]: link for key, link in tx.links(sync_id).items()}
            known = tx.comment_rows(sync_id)
        links = {member: link for member, link in links.items() if member in self.group.codecs}
        if len(links) < 2:
            return
        found = self._new_comments(sync_id, item, applied, links, {(row.endpoint, row.comment_id) for row in known})
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
            self.report.wrote()
            crash_point("after-comment")
            with self.store.transaction() as tx:
                for event in uncertain:
                    append(
                        tx,
                        uncertain_event(
                            self.group,
                            event,
                            sync_id=sync_id,
                            config_version=self.config_version,
                            endpoint=copy.endpoint,
                        ),
                    )
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
                self.failures.wait(tx, sync_id, item.down, sorted(set(waiting)))

    def _new_comments(
        self, sync_id: str, item: Touched, applied: Applied, links: Mapping[str, Link], known: set[tuple[str, str]]
    ) -> list[CommentRow]:
        """Comments not seen before, where the item changed or a write of syncd's may hide some (read at once).

        Originals, or copies syncd posted whose record a crash lost.
        """
        found: list[CommentRow] = []
        # A record its read says has no comment has none to find (a comment added since changes it: read next time).
        members = sorted(
            member
            for member in (item.changed | applied.rescan) & links.keys()
            if member in applied.rescan or not _none(item.seen.get(member))
        )
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


def _none(record: Record | None) -> bool:
    """Whether the read that made ``record`` says it has no comment (a count of 0, not an unknown one)."""
    return record is not None and record.comments == 0
