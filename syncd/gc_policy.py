"""The cycle collector tuned for a process that decodes thousands of records a pass.

CPython runs its cycle collector every 700 net new container objects (dicts, lists, dataclasses), and every few
runs it walks the older generations too: every object the process has kept since it started, the SDKs' and
SQLAlchemy's included. A pass makes several such objects per record it reads (the tool's JSON, the record, its
decoded view), so at the default thresholds a dry-run pass over 2,000 linked items collected about 350 times and
spent a quarter of its CPU time there (``benchmarks/bench_engine.py``; ``docs/benchmarks.md`` section 5).

Reference counting frees what a pass makes as soon as it is dropped; the cycle collector only finds objects that
refer to each other in a cycle, which a pass rarely makes. So :func:`tune` moves what start-up built (modules,
configuration, clients: kept until the process ends) out of the collector's walks with :func:`gc.freeze`, and
collects the youngest generation every :data:`YOUNG` new objects instead of 700. Memory is not traded for it:
the collector still runs, and a cycle waits at most :data:`YOUNG` allocations longer to be freed.
"""

from __future__ import annotations

import gc
import threading

YOUNG = 10_000
"""New container objects between two runs of the collector (CPython's default: 700)."""

_lock = threading.Lock()
_tuned = False


def tune() -> None:
    """Freeze what the process holds now and collect less often; once per process (later calls do nothing).

    Call it when start-up is done (configuration loaded, store opened), just before the first pass: objects
    made later are collected as usual. A frozen object is still freed when nothing refers to it any more (the
    first configuration, replaced by a reload); only a frozen cycle stays, once, for the process's life.
    """
    global _tuned  # noqa: PLW0603 - one setting for the whole process
    with _lock:
        if _tuned:
            return
        _tuned = True
        gc.collect()  # what start-up left as garbage goes now, not frozen forever
        gc.freeze()
        _, middle, old = gc.get_threshold()
        gc.set_threshold(YOUNG, middle, old)
