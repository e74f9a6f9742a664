"""How an item's failures are counted: a strike per failed pass, held out (quarantined) after too many in a row.

Shared by the stages that can fail one item without stopping the pass (applying, recovery, comment mirroring), so
the rule is written once: a refused write, a missing item or a bug in one item's data strike it; a retriable
failure (its tool was down) is remembered so the item is retried, but does not count; an item waiting for a member
that could not be read is retried every pass without ever being held.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

from syncd.audit import AuditEvent, append
from syncd.errors import ConnectorError, EndpointDown, RetriableError, SyncdError
from syncd.mapping import Group
from syncd.notices import Outbox, quarantined
from syncd.pass_data import PassReport
from syncd.redact import redact
from syncd.store import Tx
from syncd.uncertain import Uncertain


class Failures:
    """Strikes and quarantine of one group's items, reported into one pass's report."""

    def __init__(
        self,
        group: str,
        report: PassReport,
        *,
        quarantine_after: int,
        config_version: str,
        outbox: Outbox | None = None,
        members: Sequence[str] = (),
    ) -> None:
        """``outbox`` and ``members``: a held item is notified to the group's departments (none: not notified)."""
        self.group = group
        self.outbox = outbox or Outbox()
        self.members = tuple(members)
        self.report = report
        self.quarantine_after = quarantine_after
        self.config_version = config_version
        self._struck: set[str] = set()
        self._lock = threading.Lock()

    def strike(self, tx: Tx, sync_id: str, error: Exception, *, force: bool = False) -> None:
        """Record the failure; hold the item out after too many in a row (``force``: at once).

        An item counts at most one strike per pass, however often a pass tries it (a round of folded hints may).
        """
        message = redact(str(error) if isinstance(error, SyncdError) else f"{type(error).__name__}: {error}")
        self.report.failures[sync_id] = message
        if tx.item_group(sync_id) is None:
            tx.new_item(sync_id, self.group)
        limit = 1 if force else self.quarantine_after
        with self._lock:
            counts = not isinstance(error, RetriableError) and (force or sync_id not in self._struck)
            if counts:
                self._struck.add(sync_id)
        entry = tx.strike(sync_id, self.group, message, counts=counts, limit=limit)
        if entry.held and entry.strikes == limit:
            self.report.quarantined.append(sync_id)
            append(
                tx,
                AuditEvent(
                    "quarantine",
                    group=self.group,
                    sync_id=sync_id,
                    outcome="held",
                    config_version=self.config_version,
                    message=f"failed {entry.strikes} passes in a row: {message}",
                ),
            )
            title = (tx.base(sync_id) or {}).get("title")
            self.outbox.record(
                tx,
                quarantined(
                    group=self.group,
                    sync_id=sync_id,
                    members=self.members,
                    strikes=entry.strikes,
                    error=message,
                    since=entry.last_at,
                    title=title,
                ),
            )

    def wait(self, tx: Tx, sync_id: str, down: Mapping[str, ConnectorError], members: Sequence[str]) -> None:
        """Keep the item coming back every pass until the members that could not be read catch up (no strike)."""
        member = members[0]
        reason = down.get(member)
        error = EndpointDown(member, reason if reason is not None else ConnectorError("", "no answer"))
        self.strike(tx, sync_id, error)
        self.report.waiting.add(sync_id)


def uncertain_event(
    group: Group, event: Uncertain, *, sync_id: str, config_version: str, endpoint: str | None = None
) -> AuditEvent:
    """The audit event of a write whose answer was lost: what was sent, the lost answer, what looking found."""
    # An uncertain write names its tool; a group has one member per tool.
    member = endpoint or next((m for m, codec in group.codecs.items() if codec.tool == event.tool), None)
    return AuditEvent(
        "uncertain",
        group=group.name,
        sync_id=sync_id,
        endpoint=member,
        refs={member: event.ref} if member and event.ref else {},
        outcome=event.outcome,
        config_version=config_version,
        message=f"{event.what}: {event.error}",
    )
