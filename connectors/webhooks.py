"""What every connector's webhook handling shares: recognising deliveries already seen, by what is signed.

Services redeliver (on timeouts, on their own retries), and anyone who once saw a signed delivery can send it
again. A delivery's identity must therefore come from what its signature covers, never from an unsigned header
(Jira's ``X-Atlassian-Webhook-Identifier`` can be changed at will): the digest of the signed body (Jira, Asana)
or an id inside it (Trello's action id). A bounded, time-limited log of recent identities drops repeats; a
signed time in the body older than that window marks a replay the log may have forgotten. A repeat that still
slips through is harmless, because a webhook is only a hint to poll.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

REPLAY_WINDOW_S = 3600.0
"""How long an identity is remembered, and how old a signed delivery time may be before it counts as a replay."""


def body_identity(body: bytes) -> str:
    """A delivery's identity from its signed body: the same body is the same delivery, whatever the headers say."""
    return hashlib.sha256(body).hexdigest()


class DeliveryLog:
    """Identities seen in the last ``window_s`` (at most ``capacity``, oldest evicted first); thread-safe."""

    def __init__(
        self, capacity: int = 10_000, window_s: float = REPLAY_WINDOW_S, clock: Callable[[], float] = time.time
    ) -> None:
        self.capacity = capacity
        self.window_s = window_s
        self._clock = clock
        """Wall-clock seconds: compared with the times the tools sign into their bodies."""
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, identity: str, signed_at: float | None = None) -> bool:
        """Record ``identity``; True if the delivery should be processed (not seen, and not signed too long ago).

        ``signed_at`` is the delivery's time as its signed body states it (epoch seconds), None if it has none.
        """
        now = self._clock()
        with self._lock:
            while self._seen and next(iter(self._seen.values())) < now - self.window_s:
                self._seen.popitem(last=False)
            if signed_at is not None and signed_at < now - self.window_s:
                return False  # older than anything remembered: a replay, or a redelivery long after the fact
            if identity in self._seen:
                return False
            self._seen[identity] = now
            while len(self._seen) > self.capacity:
                self._seen.popitem(last=False)
            return True
