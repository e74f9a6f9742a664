"""What every connector's webhook handling shares: remembering deliveries already seen.

Services redeliver (on timeouts, on their own retries), so a delivery can arrive twice. Each tool gives a
delivery identity differently: Jira an ``X-Atlassian-Webhook-Identifier`` header, Trello the action id in the
body, Asana nothing (the body's digest stands in). A bounded log of recent identities drops repeats; a repeat
that slips past it after eviction is harmless, because a webhook is only a hint to poll.
"""

from __future__ import annotations

import threading
from collections import OrderedDict


class DeliveryLog:
    """The last ``capacity`` delivery identities, oldest evicted first; thread-safe."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, identity: str) -> bool:
        """Record ``identity``; True if it was not seen before (the delivery should be processed)."""
        with self._lock:
            if identity in self._seen:
                self._seen.move_to_end(identity)
                return False
            self._seen[identity] = None
            while len(self._seen) > self.capacity:
                self._seen.popitem(last=False)
            return True
