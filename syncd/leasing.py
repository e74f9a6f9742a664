"""The group leases one process holds: taken before writing a group, renewed in the background, released after.

Every command that writes a group (``syncd run``, ``once``, ``conflicts resolve``, ``quarantine retry``) goes
through :class:`Leases`: :meth:`Leases.take` waits a bounded time for a group held elsewhere and then raises
LeaseHeld naming the holder; :meth:`Leases.try_take` is the daemon's one attempt per scheduled pass. A thread
renews every held lease each third of its TTL, so a pass longer than the TTL keeps its group; a lease that cannot
be renewed is dropped (the pass holding it is fenced out at its next commit, see :meth:`syncd.store.Store.fenced`).
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable

from syncd.errors import LeaseHeld, holder_host_pid
from syncd.store import Lease, Store
from syncd.tenure import Tenure, clock


def replica_id() -> str:
    """The calling process's holder name in lease rows: ``host:pid:namespace-suffix``.

    The suffix tells a reused pid apart; the PID namespace (Linux) says where the pid means something, so that a
    holder found dead (see :func:`gone`) is one of this host's processes in this namespace, not a container's.
    """
    return f"{socket.gethostname()}:{os.getpid()}:{_namespace()}-{secrets.token_hex(3)}"


def _namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "0"


def gone(holder: str) -> bool:
    """Whether a holder is a process of this host and PID namespace that no longer runs (killed, crashed).

    Such a lease would otherwise keep its group for the rest of its TTL: an operator who runs ``syncd once`` again
    after one was killed would wait for nothing. Anything uncertain (another host, another namespace, a pid now
    running something else) counts as alive: the lease then expires as usual.
    """
    host, pid = holder_host_pid(holder)
    if (
        host != socket.gethostname()
        or not pid.isdigit()
        or not holder.rpartition(":")[2].startswith(_namespace() + "-")
    ):
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def share(groups: Iterable[str], replicas: Iterable[str]) -> dict[str, str]:
    """Each group's preferred owner among the live ``replicas``: balanced, and stable as replicas come and go.

    Rendezvous hashing ranks the replicas for each group (the same ranking on every replica, whatever order it
    lists them in); groups, in name order, go to their best-ranked replica that has fewer than ceil(groups /
    replicas). So no replica owns more than its share, and a replica joining or leaving moves few groups.
    """
    names = sorted(set(groups))
    live = sorted(set(replicas))
    if not live:
        return {}
    capacity = math.ceil(len(names) / len(live))
    owned = dict.fromkeys(live, 0)
    owners: dict[str, str] = {}
    for group in names:
        ranked = sorted(live, key=lambda replica: hashlib.sha256(f"{group}\0{replica}".encode()).digest(), reverse=True)
        owner = next(replica for replica in ranked if owned[replica] < capacity)
        owners[group] = owner
        owned[owner] += 1
    return owners


class Leases:
    """The leases this process holds in one store, kept alive until :meth:`close`."""

    def __init__(
        self,
        store: Store,
        *,
        ttl_s: float = 30.0,
        holder: str | None = None,
        on_lost: Callable[[Lease], None] | None = None,
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.holder = holder or replica_id()
        self._on_lost = on_lost
        self._held: dict[str, Lease] = {}
        self._tenures: dict[str, Tenure] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def try_take(self, group: str) -> Lease | None:
        """Take (or renew) the group's lease once; None while another process holds it.

        A lease whose holder is a process of this host that no longer runs is released first (see :func:`gone`):
        the dead process can commit nothing, and what it left in the journal is recovered by this one's pass.
        """
        sent = clock()
        lease = self.store.acquire(group, self.holder, self.ttl_s)
        if lease is None:
            now, rows = self.store.holders()
            current = next((row for row in rows if row.group == group and row.live(now)), None)
            if current is not None and current.holder != self.holder and gone(current.holder):
                self.store.release(current)  # only if it is still that holder's, with that token
                sent = clock()
                lease = self.store.acquire(group, self.holder, self.ttl_s)
        with self._lock:
            if lease is None:
                self._held.pop(group, None)
                self._lose(group)
                return None
            self._held[group] = lease
            tenure = self._tenures.get(group)
            if tenure is None:
                tenure = self._tenures[group] = Tenure(group, lease.token, self.ttl_s)
            tenure.secured(sent, lease.token)
            if self._renewer is None:
                self._renewer = threading.Thread(target=self._renew, name="syncd-leases", daemon=True)
                self._renewer.start()
        return lease

    def take(self, group: str, *, wait_s: float) -> Lease:
        """The group's lease, waiting up to ``wait_s`` for its holder to let go; LeaseHeld naming it after that."""
        deadline = time.monotonic() + wait_s
        pause = 0.05
        while True:
            lease = self.try_take(group)
            if lease is not None:
                return lease
            left = deadline - time.monotonic()
            if left <= 0:
                now, rows = self.store.holders()
                current = next((row for row in rows if row.group == group and row.live(now)), None)
                if current is None:
                    continue  # freed just now: take it
                raise LeaseHeld(group, current.holder, current.acquired_at, wait_s)
            time.sleep(min(pause, left))
            pause = min(pause * 2, 1.0)

    def held(self, group: str) -> Lease | None:
        """The lease of a group this process holds, as last taken (None: not held)."""
        with self._lock:
            return self._held.get(group)

    def tenure(self, group: str) -> Tenure | None:
        """The group's lease by this process's clock, kept up to date as it is renewed (None: never taken).

        A pass checks it before each request to a tool (:mod:`syncd.tenure`): a process paused past its lease
        sends nothing more once it resumes.
        """
        with self._lock:
            return self._tenures.get(group)

    def _lose(self, group: str) -> None:
        """Mark the group's tenure lost (under ``_lock``): a pass still running under it sends nothing more."""
        tenure = self._tenures.get(group)
        if tenure is not None:
            tenure.lost()

    def release(self, group: str) -> None:
        """Let go of a group at once (no other process needs to wait for its TTL)."""
        with self._lock:
            lease = self._held.pop(group, None)
            self._lose(group)
        if lease is not None:
            self.store.release(lease)

    def close(self) -> None:
        """Stop renewing and release every lease held (a pass still running is fenced out)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5.0)
        with self._lock:
            groups = list(self._held)
        for group in groups:
            self.release(group)

    def _renew(self) -> None:
        """Renew every held lease each third of the TTL; drop (and report) the ones that were lost."""
        while not self._stop.wait(self.ttl_s / 3):
            with self._lock:
                held = list(self._held.values())
            for lease in held:
                sent = clock()
                try:
                    kept = self.store.renew(lease)
                except Exception:  # noqa: S112 - the store did not answer: try again next round; the fence guards commits
                    continue
                with self._lock:
                    if kept:
                        tenure = self._tenures.get(lease.group)
                        if tenure is not None and self._held.get(lease.group) == lease:
                            tenure.secured(sent, lease.token)
                        continue
                    if self._held.get(lease.group) == lease:
                        del self._held[lease.group]
                        self._lose(lease.group)
                if self._on_lost is not None:
                    self._on_lost(lease)
