"""Why the demo stops before its story ends: control-flow signals, not errors.

They are raised deep inside a wait (the daemon's start, a tick of the view) and caught once, by the run's story,
which turns each into the phase and the summary line a person reads; so they share no base with ``DemoError``.
"""

from __future__ import annotations


class Interrupted(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Ctrl-C or SIGTERM: unwind (releasing emulator locks) and stop everything."""


class OutOfTime(Exception):  # noqa: N818 - a control-flow signal, not an error
    """``--duration`` is up."""


class DaemonExited(Exception):  # noqa: N818 - a control-flow signal, not an error
    """``syncd run`` ended on its own: nothing will sync any more, so the demo stops and says why."""
