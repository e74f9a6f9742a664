"""``syncd demo``: the embedded default, syncd at work on the sandbox organisation in one command.

A newcomer with no account anywhere runs one command and watches syncd do its job: the three emulators start with
the seeded organisation, ``syncd run`` mirrors it with the shipped ``config/`` and ``mappings/`` (webhooks on,
polling as the safety net), people make the scripted edits of :mod:`sandbox.scenario` (a conflict for every
rule), a lead decides the one the ``manual`` rule holds, and a live view shows the subject item in each tool side
by side with the tail of the audit log. ``--duration`` turns it into a bounded, non-interactive run that ends with a
summary and says whether everything converged.

The daemon, the lead's decision and the final dry run are the real commands, run as subprocesses the way an
operator runs them: the demo shows syncd, it does not re-implement any of it. Tool state is read straight from the
emulators (cheap, and no API request to disturb the daemon or the rate limits).

The package, one idea per module (arrows are imports; nothing but this ``__init__`` imports ``core``)::

    stops     the control-flow signals that end the story early: interrupted, out of time, the daemon exited
    timing    the demo's pace: the daemon's poll/debounce/shutdown settings, edit gaps, the view's tick
    prepare   the shipped config/ and mappings/, the syncd command, a config aimed at the emulators, the env  <- timing
    child     syncd as child processes: the daemon (start, ready, drain) and short commands  <- stops, timing
    watch     the store read from its own thread: snapshots and new audit events  <- timing
    compare   the subject's values in each tool, and how they differ from what the scenario expects
    view      the live Rich view (plain lines without a terminal) and how a value reads in it  <- compare
    core      Demo: the story, the lead, convergence, the summary and exit code; run()  <- everything

Every module may import ``sandbox`` and name the tools: the demo is a composition root of the sandbox.
"""

from syncd.demo.core import RULES, Demo, Outcome, run
from syncd.demo.prepare import daemon_environment, prepare_config, shipped, syncd_command
from syncd.errors import DemoError

__all__ = [
    "RULES",
    "Demo",
    "DemoError",
    "Outcome",
    "daemon_environment",
    "prepare_config",
    "run",
    "shipped",
    "syncd_command",
]
