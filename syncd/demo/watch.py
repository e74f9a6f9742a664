"""The store, watched from a thread: conflicts, failing items, the subject's links and new audit events.

A thread of its own because the main thread holds emulator locks while people edit (see :class:`StoreWatcher`).
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select as sql_select
from sqlalchemy.exc import SQLAlchemyError

from sandbox import scenario
from syncd.audit import Recorded, query
from syncd.demo.timing import TICK_S
from syncd.store import HeldConflict, Store
from syncd.store.schema import links

GROUP = "launch-requests"
"""The shipped group the scenario plays in."""
MEMBERS = ("engineering", "sales", "marketing")


@dataclass
class Snapshot:
    """What the store says at one moment: conflicts not closed, failing items, and whether the subject is linked."""

    conflicts: list[HeldConflict] = field(default_factory=list)
    quarantined: int = 0
    retrying: int = 0
    subject: str | None = None
    """The subject's sync_id once it is linked in all three tools and no plan of it is pending."""
    backfilled: bool = False
    """Whether the first full pass is over (every member's cursor is stored): the people may start editing."""


class StoreWatcher:
    """Reads the store in its own thread and hands the main thread the newest snapshot and the new audit events.

    Never from the main thread: a pass holds SQLite's write lock while it fetches from a tool, and the main thread
    holds emulator locks while people edit, so a read there could wait for a pass that waits for it.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.refs: scenario.Refs | None = None
        self._lock = threading.Lock()
        self._snapshot = Snapshot()
        self._events: list[Recorded] = []
        self._last_seq = 0
        self._last_at: datetime | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="syncd-demo-store", daemon=True)

    def start(self) -> None:
        """Start watching (the daemon has migrated the store by the time it listens)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop watching and wait for the thread."""
        self._stop.set()
        self._thread.join(timeout=15)

    def take(self) -> tuple[Snapshot, list[Recorded]]:
        """The newest snapshot and the audit events recorded since the last call (the view shows each once)."""
        with self._lock:
            events, self._events = self._events, []
            return self._snapshot, events

    @property
    def snapshot(self) -> Snapshot:
        """The newest snapshot, leaving the new audit events to :meth:`take`."""
        with self._lock:
            return self._snapshot

    def _run(self) -> None:
        while not self._stop.wait(TICK_S):
            with contextlib.suppress(SQLAlchemyError):  # busy or not migrated yet: the next round reads it
                self._read()

    def _read(self) -> None:
        # Events are read from a little before the last one seen: an event is timed when built, appended a moment
        # later, so one committed after a later-timed one must not be missed. Sequence numbers drop repeats.
        since = None if self._last_at is None else self._last_at - _SLACK
        new = [recorded for recorded in query(self.store, since=since) if recorded.seq > self._last_seq]
        snapshot = Snapshot()
        with self.store.transaction() as tx:
            snapshot.conflicts = tx.conflicts()
            failing = tx.quarantined()
            snapshot.quarantined = sum(1 for entry in failing if entry.held)
            snapshot.retrying = len(failing) - snapshot.quarantined
            snapshot.backfilled = all(tx.cursor(f"{GROUP}/{member}") is not None for member in MEMBERS)
            if self.refs is not None:
                refs = [self.refs.jira, self.refs.trello, self.refs.asana]
                rows = tx.connection.execute(sql_select(links.c.sync_id).where(links.c.ref.in_(refs))).all()
                items = {row.sync_id for row in rows}
                pending = {entry.sync_id for entry in tx.journal_pending()}
                if len(rows) == len(refs) and len(items) == 1 and not items & pending:
                    snapshot.subject = items.pop()
        with self._lock:
            self._snapshot = snapshot
            self._events.extend(new)
            if new:
                self._last_seq, self._last_at = new[-1].seq, max(recorded.event.at for recorded in new)


_SLACK = timedelta(seconds=5)
