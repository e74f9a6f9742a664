"""The lease by this process's own clock: no request goes to a tool once the group may be someone else's.

The store fences every commit with the lease's token (:meth:`syncd.store.Store.fenced`), but the tools know
nothing of leases: a replica paused mid-pass (SIGSTOP, a long garbage collection, a frozen VM) and resumed after
its lease ran out would still send the writes it had planned, over the values its heir has written since (a
status walked back) or beside the mirror its heir made when the marker showed none (a duplicate). So each request a
pass makes first asks its :class:`Tenure`, the lease as this process last secured it, whether enough of the lease
is surely left, by the local clock alone (no request to the store in the way of every write):

- a lease taken or renewed by a request sent at local time ``t`` lasts until at least ``t + ttl`` by the store's
  clock, since the store starts the TTL when the request arrives; so until ``t + ttl`` nobody else can hold it;
- a request is sent only while at least :data:`MARGIN` of the TTL is left before that: an heir can take the group
  no sooner than that margin after the request went out, time enough for the tool to apply it before the heir
  reads (the renewals, every third of the TTL, keep two thirds of it ahead in a healthy process);
- the clock is ``CLOCK_BOOTTIME`` where the system has it, which keeps counting while the machine is suspended,
  else the monotonic clock.

What remains is the moment between the check and the request leaving the socket, inside the SDK: a pause there
sends one request late. Nothing on the tools' side can fence it; the window is the SDK's own few milliseconds.

The check rides a context variable (:func:`holding`), set around a pass; :func:`syncd.fanout.each` and the pass's
pools run their calls in copies of the caller's context, so the pass's every thread checks the same tenure, and
:func:`connectors.pacing.call` checks it before each attempt, retries included.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from syncd.errors import LeaseLapsed

MARGIN = 1 / 3
"""The share of the TTL that must still be surely ahead for a request to be sent."""


def clock() -> float:
    """Seconds on a clock that counts pauses and suspends alike (never set back by NTP)."""
    if hasattr(time, "CLOCK_BOOTTIME"):
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    return time.monotonic()


class Tenure:
    """One held lease as this process last secured it: until when, by its own clock, no one else can hold it."""

    def __init__(self, group: str, token: int, ttl_s: float) -> None:
        self.group = group
        self.token = token
        self.ttl_s = ttl_s
        self._until = float("-inf")
        self._lock = threading.Lock()

    def secured(self, sent_at: float, token: int) -> None:
        """The store took or renewed the lease (token ``token``) by a request sent at ``sent_at`` (:func:`clock`)."""
        with self._lock:
            if token != self.token:
                self.token, self._until = token, float("-inf")
            self._until = max(self._until, sent_at + self.ttl_s)

    def lost(self) -> None:
        """The lease is gone (released, taken over, not renewed): nothing more may be sent under it."""
        with self._lock:
            self._until = float("-inf")

    def left(self) -> float:
        """Seconds until the lease may have run out, by this process's clock (negative: it may have)."""
        with self._lock:
            return self._until - clock()

    def check(self) -> None:
        """Raise :class:`~syncd.errors.LeaseLapsed` unless at least :data:`MARGIN` of the TTL is surely ahead."""
        left = self.left()
        if left < self.ttl_s * MARGIN:
            raise LeaseLapsed(self.group, self.token, left, self.ttl_s)


_holding: contextvars.ContextVar[Tenure | None] = contextvars.ContextVar("tenure", default=None)


@contextmanager
def holding(tenure: Tenure | None) -> Iterator[None]:
    """Check ``tenure`` before every request made in this context (None: no lease, as in a dry run)."""
    token = _holding.set(tenure)
    try:
        yield
    finally:
        _holding.reset(token)


def check() -> None:
    """Before a request: raise LeaseLapsed if the context's lease may run out before it is applied."""
    tenure = _holding.get()
    if tenure is not None:
        tenure.check()
