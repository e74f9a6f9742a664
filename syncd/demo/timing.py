"""The demo's pace: the daemon's settings and how fast people edit, the view ticks and waits give up.

In one place because the demo's timings are part of what it shows (webhooks in well under a second, polling as the
safety net, about one edit a second): the settings handed to ``syncd run``, the child process, the store watcher
and the run all read them here.
"""

from __future__ import annotations

POLL_INTERVAL_S = 3.0
"""Polling is the safety net: webhooks bring changes in well under a second."""
WEBHOOK_DEBOUNCE_S = 0.3
SHUTDOWN_TIMEOUT_S = 5.0
PAIR_GAP_S = 0.3
"""Seconds between the two edits of one conflict (the two tools are held still meanwhile: see ``Demo._play``)."""
EDIT_GAP_S = 1.0
"""Seconds from one conflict's second edit to the next one's first: about one edit a second overall."""
TICK_S = 0.25
"""How often the live view is redrawn (and the store watched)."""
QUIET_S = 0.5
"""No API request for this long means the daemon is between passes."""
LISTEN_TIMEOUT_S = 60.0
