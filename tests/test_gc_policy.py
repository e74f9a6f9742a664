"""The cycle collector's tuning: start-up's objects frozen, the young generation collected less often, once."""

from __future__ import annotations

import json
import subprocess
import sys

from syncd import gc_policy

PROBE = """
import gc, json
from syncd import gc_policy
before = gc.get_threshold()
gc_policy.tune()
frozen = gc.get_freeze_count()
gc.set_threshold(123, 4, 5)  # a later call must not undo what the process set since
gc_policy.tune()
print(json.dumps({"before": before, "frozen": frozen, "after": gc.get_threshold(), "again": gc.get_freeze_count()}))
"""


def test_tune_freezes_start_up_and_raises_the_young_threshold_once() -> None:
    """In a fresh interpreter (the test process keeps its own collector as it is)."""
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    seen = json.loads(done.stdout)
    assert seen["before"][0] == 700  # CPython's default, which the tuning exists to change
    assert seen["frozen"] > 1000  # the modules and objects start-up made are out of the collector's walks
    assert seen["after"] == [123, 4, 5]  # the second call did nothing
    assert seen["again"] == seen["frozen"]
    assert seen["before"][0] < gc_policy.YOUNG
