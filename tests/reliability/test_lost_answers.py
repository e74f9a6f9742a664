"""A fifth of write answers are lost while the seeded organisation is mirrored: no duplicate, and it converges.

Every emulator applies each write, then answers one write in five with a gateway's 502 or 504 or drops the
connection (DESIGN.md, quirk 12): the answers syncd would need to know what it made. The first pass mirrors the
seeded organisation under that plan; two clean passes follow. Then the invariants of tests/reliability/workload.py
hold (a quiet further pass, every record in scope linked once, no marker twice, empty journal and quarantine,
audit chain verified), and the audit log has one ``uncertain`` event, with how it was resolved, for each lost
answer to a write that is not idempotent (a create, a comment, a transition, a label, a tag, a marker).
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from pathlib import Path

import pytest

from sandbox.core import FaultRule, Faults
from sandbox.org import Sandbox
from syncd.audit import query
from syncd.engine import Pass
from syncd.store import Store
from syncd.uncertain import GIVEN_UP, LANDED, RESENT, UNKNOWN
from tests.reliability.workload import (
    check_converged,
    check_marked,
    connectors,
    existing_refs,
    lost_answer_plan,
    run_seed,
    shipped_group,
    verdict,
)

pytestmark = pytest.mark.timeout(300)

NOT_IDEMPOTENT = re.compile(
    r"(/rest/api/\w+/issue|/issue/[^/]+/(comment|transitions)"  # Jira: create, comment, transition
    r"|^/1/cards|/actions/comments|/boards/[^/]+/labels"  # Trello: create, comment, label
    r"|^/api/1\.0/(tasks|attachments)|/tasks/[^/]+/stories|/workspaces/[^/]+/tags)$"  # Asana: create, ..., tag
)
"""The POSTs that make something: sent twice, they make it twice (the others set a state, and are retried)."""


class LostAnswers(Faults):
    """The fault plan, counting the writes it answered and the answers it lost to writes that make something."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.writes = 0
        self.lost = 0
        self.lost_creations = 0
        self._tally = threading.Lock()

    def pick(self, method: str, path: str) -> list[FaultRule]:
        """Pick as the plan says, and count."""
        fired = super().pick(method, path)
        if self.rules and method in {"POST", "PUT", "PATCH", "DELETE"}:
            with self._tally:
                self.writes += 1
                self.lost += bool(fired)
                self.lost_creations += bool(fired) and method == "POST" and bool(NOT_IDEMPOTENT.search(path))
        return fired


def test_lost_write_answers_make_no_duplicate_and_converge(tmp_path: Path) -> None:
    seed = run_seed("lost-answers", 1313)
    with Sandbox(fault_seed=seed) as sandbox:
        plans = [LostAnswers(seed * 10 + n) for n, _ in enumerate(sandbox.emulators)]
        for emulator, faults in zip(sandbox.emulators, plans, strict=True):
            emulator.faults = faults
            faults.set(lost_answer_plan(0.2))
        # Jira Cloud's search lags behind a create (the connectors' builder waits longer than this before trusting
        # a marker lookup's miss, as the daemon's default waits longer than Jira Cloud's lag).
        sandbox.jira.search_lag_s = 0.3
        for emulator in sandbox.emulators:
            # The connectors here are unpaced (budgets that never throttle): the tools' own rate limits would turn
            # a burst of writes into 429s this test is not about (test_faults and the pacing tests cover those).
            emulator.rate_limits_enabled = False
        store = Store(f"sqlite:///{tmp_path / 'syncd.db'}")
        store.migrate()
        group, conns, before = shipped_group(), connectors(sandbox), existing_refs(sandbox)
        try:
            reports = [Pass(group, conns, store).run()]
            for faults in plans:
                faults.clear()
            reports += [Pass(group, conns, store).run() for _ in range(2)]
            problems = check_converged(group, conns, store) + check_marked(sandbox, before)
            uncertain = [recorded.event for recorded in query(store, kind="uncertain")]
            writes, lost = sum(p.writes for p in plans), sum(p.lost for p in plans)
            creations = sum(p.lost_creations for p in plans)
            print(
                f"lost answers: {lost} of {writes} write answers lost ({lost / max(1, writes):.1%}), {creations} to "
                f"writes that make something; passes wrote {[r.writes for r in reports]}, recovered "
                f"{[r.recovered for r in reports]}; {len(uncertain)} uncertain writes audited: "
                f"{sorted({e.outcome for e in uncertain})}"
            )
            # The seeded titles are unique, so a title twice in one tool is an item made twice (an unlinked copy, or
            # a copy mirrored as an item of its own).
            doubled = {
                member: {title: n for title, n in Counter(titles).items() if n > 1}
                for member, titles in (
                    (m, [r.fields["title"] for r in c.changes(None).records]) for m, c in conns.items()
                )
            }
            assert doubled == {member: {} for member in conns}, doubled
            verdict(problems)
            assert 0.12 < lost / writes < 0.28, (lost, writes)
            assert creations > 0
            assert len(uncertain) == creations
            assert {event.outcome for event in uncertain} <= {LANDED, RESENT, UNKNOWN, GIVEN_UP}
            assert all(event.message and event.endpoint for event in uncertain)
        finally:
            store.close()
