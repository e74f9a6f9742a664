"""Injectable crash points, so tests can kill or pause a pass exactly where a real failure would hurt most.

``SYNCD_CRASH_AT=after-create`` kills the process (SIGKILL: no cleanup, no flush, like a power cut) the first
time the executor reaches that point; ``after-create:3`` the third time. ``SYNCD_STOP_AT`` takes the same points
and stops the process instead (SIGSTOP, every thread at once: a frozen VM, a process paused by its host), for the
test to resume with SIGCONT. The points are :data:`POINTS`, :data:`WITHIN_WRITES`, :data:`NOTIFIER`. Unset, a
crash point costs two dictionary lookups.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter

POINTS = ("after-journal", "after-create", "after-update", "before-commit", "after-comment")
"""Where the executor can be killed: plan journaled; mirror created; mirror updated; all applied, none committed;
a comment copied, not recorded."""

DELETING = ("after-delete",)
"""A point reached only by a deletion under ``on_delete: delete``: one mirror deleted, nothing committed."""

WITHIN_WRITES = ("mid-transition", "mid-create", "new-issue")
"""Points inside a connector's write, reached only by some writes: a Jira status move one transition along its
path (the issue sits in a status between where it was and where syncd is taking it); an Asana create whose task
exists and whose marker is not attached yet; a Jira create whose issue exists in the workflow's first status,
not moved to its own yet."""

NOTIFIER = ("before-notify",)
"""The notifier's point: an event's outbox rows committed and claimed, the message not sent yet (a crash there must
neither lose nor repeat it; tests/test_daemon_notifications.py)."""

_reached: Counter[tuple[str, str]] = Counter()
_lock = threading.Lock()


def crash_point(name: str) -> None:
    """Kill (``SYNCD_CRASH_AT``) or stop (``SYNCD_STOP_AT``) this process here if the variable names this point.

    ``point:n`` acts the n-th time the point is reached (the first without it).
    """
    for variable, sent in (("SYNCD_CRASH_AT", signal.SIGKILL), ("SYNCD_STOP_AT", signal.SIGSTOP)):
        wanted = os.environ.get(variable)
        if not wanted:
            continue
        point, _, nth = wanted.partition(":")
        if point != name:
            continue
        with _lock:
            _reached[variable, name] += 1
            count = _reached[variable, name]
        if count == int(nth or 1):
            os.kill(os.getpid(), sent)
