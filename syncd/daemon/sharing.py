"""Sharing the groups between replicas: the registry heartbeat, who should own which group, and hints between them.

Its own module because it is the one place that decides, for this replica, which groups are its own. Every third of
``lease_ttl_s`` a thread renews this replica's registry row and reads the live replicas;
:func:`syncd.leasing.share` names each group's preferred owner among them (the same answer on every replica). Then:

- a free group (released or expired) is taken by its preferred owner at once, and by any other replica once the
  preferred owner has let one TTL go by without taking it (from when the group became free, or the preferred owner
  joined, whichever is later): a replica that registered but cannot take groups does not leave them unsynced;
- a group held here whose preferred owner is another live replica is released between passes (rebalancing when a
  replica joins); the preferred owner takes it at its next round and polls it at once.

A dead replica's leases and registry row lapse within ``lease_ttl_s``; the next round of the others recomputes the
preferred owners without it, so its groups are taken over within about two TTLs (at once by a replica of the same
host, which sees its process is gone: :func:`syncd.leasing.gone`). All this on PostgreSQL only
(several hosts share it); on SQLite the registry is kept but groups go to whoever asks first, as before.

Webhooks on any replica: a delivery for a group held elsewhere is sent to the other replicas with PostgreSQL's
``NOTIFY`` on :data:`CHANNEL` (scoped to the store's schema; each payload under the 8000-byte limit; a ref too
long to fit requests a full pass instead); every replica ``LISTEN``s on a connection of its own and queues what
arrives for a group it holds, ignoring the rest (the group's next poll reads those changes anyway).
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from syncd.daemon.logs import log
from syncd.daemon.scheduler import Scheduler
from syncd.leasing import Leases, gone, share
from syncd.store import Lease, Store
from syncd.store.leases import NEVER
from syncd.tenure import Tenure

CHANNEL = "syncd_hints"
"""The PostgreSQL notification channel webhook hints travel on between replicas."""

PAYLOAD_LIMIT = 7500
"""Bytes per notification payload: under PostgreSQL's 8000, with room to spare."""


@dataclass(frozen=True)
class View:
    """The last look at the registry: the live replicas and each configured group's preferred owner."""

    at: datetime
    live: tuple[str, ...]
    started: dict[str, datetime] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)


def payloads(group: str, member: str, refs: list[str]) -> list[str]:
    """The notifications carrying one delivery's refs, each under PAYLOAD_LIMIT.

    A ref too long to fit even alone turns the delivery into one request for a full pass (nothing is lost).
    """
    full = [json.dumps({"group": group, "member": member, "full": True})]
    head = len(json.dumps({"group": group, "member": member, "refs": []}).encode())
    batches: list[list[str]] = [[]]
    size = head
    for ref in refs:
        cost = len(json.dumps(ref).encode()) + 2  # the quoted ref and its ", "
        if head + cost > PAYLOAD_LIMIT:
            return full
        if size + cost > PAYLOAD_LIMIT:
            batches.append([])
            size = head
        batches[-1].append(ref)
        size += cost
    return [json.dumps({"group": group, "member": member, "refs": batch}) for batch in batches if batch]


class Sharing:
    """One replica's part in sharing the groups: registry heartbeat, taking and handing over leases, hints."""

    def __init__(
        self, *, store: Store, leases: Leases, scheduler: Scheduler, groups: Callable[[], Iterable[str]]
    ) -> None:
        self._store = store
        self._leases = leases
        self._scheduler = scheduler
        self._groups = groups
        """The configured groups now (a reload may change them)."""
        self.replica = leases.holder
        self.fair = store.shared
        """Whether groups go to their preferred owner (PostgreSQL); on SQLite, to whoever asks first."""
        self._view: View | None = None
        self._busy: set[str] = set()
        """Groups with a pass running here: never released mid-pass."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ----- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Register now (the first passes then know the live replicas) and keep heartbeating in the background.

        On PostgreSQL also listen for the hints the other replicas forward.
        """
        self._round()
        targets: list[tuple[str, Callable[[], None]]] = [("syncd-replica", self._heartbeats)]
        if self.fair:
            targets.append(("syncd-hints", self._listen))
        for name, target in targets:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop the heartbeat and mark this replica gone, so the others share its groups without waiting."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5.0)
        try:
            self._store.leave(self.replica)
        except Exception as error:  # the row lapses by itself after lease_ttl_s
            log.warning("replica.leave", outcome="error", error=type(error).__name__)

    # ----- what the passes ask ----------------------------------------------------------------------------

    def claim(self, group: str) -> Lease | None:
        """The group's lease for a pass starting now (taken or renewed), or None: it is not this replica's now."""
        with self._lock:  # not beside a hand-over: a group is released between passes only
            if self.fair and self._leases.held(group) is None and not self._may_take(group):
                return None
            lease = self._leases.try_take(group)
            if lease is not None:
                self._busy.add(group)
            return lease

    def tenure(self, group: str) -> Tenure | None:
        """The group's lease by this process's clock, which the pass checks before each request (syncd.tenure)."""
        return self._leases.tenure(group)

    def finished(self, group: str) -> None:
        """A pass that held the group ended: hand the group over if another live replica should own it."""
        with self._lock:
            self._busy.discard(group)
        self._hand_over(group)

    def preferred(self, group: str) -> str | None:
        """The group's preferred owner as last computed (None: first come, or not known yet)."""
        view = self._view
        return view.owners.get(group) if view is not None and self.fair else None

    def owned(self) -> list[str]:
        """The configured groups this replica holds the lease of, by name."""
        return sorted(group for group in self._groups() if self._leases.held(group) is not None)

    def live(self) -> int:
        """How many replicas were live at the last heartbeat (0 before the first)."""
        view = self._view
        return len(view.live) if view is not None else 0

    # ----- webhooks -----------------------------------------------------------------------------------

    def hint(self, group: str, member: str, refs: list[str]) -> str:
        """Queue a delivery's refs here if the group is this replica's, else forward them to its owner."""
        if not self.fair or self._leases.held(group) is not None:
            return self._scheduler.hint(group, member, refs)
        for payload in payloads(group, member, refs):
            self._store.notify(self._store.channel(CHANNEL), payload)
        return "forwarded"

    def _received(self, payload: str) -> None:
        """A hint forwarded by another replica: queued if the group is held here, else left to its next poll."""
        try:
            found = json.loads(payload)
            group, member = str(found["group"]), str(found["member"])
            refs = [str(ref) for ref in found.get("refs", [])]
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("hint.malformed", size=len(payload))
            return
        if group not in set(self._groups()) or self._leases.held(group) is None:
            return  # not ours: its owner queued it, or its next poll reads the change
        if found.get("full"):
            self._scheduler.poll_now(group)
            outcome = "full"
        else:
            outcome = self._scheduler.hint(group, member, refs)
        log.info("hint.forwarded", group=group, member=member, refs=len(refs), outcome=outcome)

    def _listen(self) -> None:
        """LISTEN for forwarded hints until stopped; a lost connection is opened again a second later."""
        while not self._stop.is_set():
            try:
                self._store.listen(self._store.channel(CHANNEL), self._received, self._stop)
            except Exception as error:  # the store went away: hints meanwhile are covered by the next polls
                log.warning("hint.listen", outcome="error", error=type(error).__name__)
                self._stop.wait(1.0)

    # ----- the heartbeat round ---------------------------------------------------------------------------

    def _heartbeats(self) -> None:
        while not self._stop.wait(self._leases.ttl_s / 3):
            self._round()

    def _round(self) -> None:
        """Heartbeat, recompute the preferred owners, take the free groups that are ours, hand over the others."""
        try:
            at, rows = self._store.heartbeat(self.replica, socket.gethostname(), os.getpid(), self._leases.ttl_s)
        except Exception as error:  # the store did not answer: the next round tries again
            log.warning("replica.heartbeat", outcome="error", error=type(error).__name__)
            return
        # A replica of this host whose process is gone (killed, crashed) counts as gone now, not one TTL later: its
        # groups go to the others at once, and a daemon restarted after a crash gets its groups back without waiting.
        live = tuple(row.replica_id for row in rows if row.live(at) and not gone(row.replica_id))
        groups = sorted(self._groups())
        previous = self._view
        view = View(at, live, {row.replica_id: row.started_at for row in rows}, share(groups, live))
        self._view = view
        if previous is None or previous.live != live:
            log.info("replicas", live=list(live), owners=view.owners if self.fair else None)
        if not self.fair:
            return
        for group in groups:
            if self._leases.held(group) is not None:
                self._hand_over(group)
            elif self._may_take(group):
                try:
                    lease = self._leases.try_take(group)
                except Exception as error:  # the store did not answer: the next round tries again
                    log.warning("lease", group=group, outcome="error", error=type(error).__name__)
                    continue
                if lease is not None:
                    log.info("lease.taken", group=group, token=lease.token, preferred=view.owners.get(group))
                    self._scheduler.poll_now(group)  # catch up at once: its changes waited since the last owner

    def _may_take(self, group: str) -> bool:
        """Whether this replica may take the group if free: it is the preferred owner, or that one let a TTL pass."""
        view = self._view
        if view is None:
            return not self.fair
        preferred = view.owners.get(group)
        if preferred is None or preferred == self.replica:
            return True
        try:
            at, rows = self._store.holders()
        except Exception:  # the store did not answer: not now
            return False
        row = next((each for each in rows if each.group == group), None)
        if row is not None and row.live(at):
            return False  # held: the lease would refuse anyway
        free_since = max(row.expires_at if row is not None else NEVER, view.started.get(preferred, NEVER))
        return at - free_since >= timedelta(seconds=self._leases.ttl_s)

    def _hand_over(self, group: str) -> None:
        """Release a group held here, between passes, once another live replica is its preferred owner."""
        preferred = self.preferred(group)
        if preferred is None or preferred == self.replica:
            return
        with self._lock:
            if group in self._busy:
                return  # the pass's end hands it over
            held = self._leases.held(group)
            if held is None:
                return
            try:
                self._leases.release(group)
            except Exception as error:  # its lease lapses by itself
                log.warning("lease.release", group=group, outcome="error", error=type(error).__name__)
                return
        log.info("lease.handed_over", group=group, token=held.token, to=preferred)
