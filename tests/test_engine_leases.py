"""A pass under a group lease: fenced out when the lease is lost, never striking an item; the next holder
finishes what it left, as after a crash, with no duplicate."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from connectors.base import Connector
from sandbox.core import FaultRule
from sandbox.org import Sandbox
from syncd.engine import Pass
from syncd.errors import LeaseLost
from syncd.mapping import Group
from syncd.store import Lease, Store

A = "host-a:101:aaaaaa"
B = "host-b:202:bbbbbb"


def _titles(sandbox: Sandbox) -> list[Counter[str]]:
    return [
        Counter(issue.summary for issue in sandbox.jira.state.issues.values()),
        Counter(card.name for card in sandbox.trello.state.cards.values()),
        Counter(task.name for task in sandbox.asana.state.tasks.values()),
    ]


class TestFencedPass:
    def test_a_pass_whose_lease_was_taken_over_commits_nothing(
        self, group: Group, connectors: dict[str, Connector], store: Store
    ) -> None:
        """Another process took the group after this lease expired: the pass raises LeaseLost before any write."""
        stale = store.acquire(group.name, A, 0.1)
        assert stale is not None
        time.sleep(0.3)
        assert store.acquire(group.name, B, 60) is not None
        with pytest.raises(LeaseLost):
            Pass(group, connectors, store, lease=stale).run()
        with store.transaction() as tx:
            assert tx.journal_pending() == []
            assert tx.quarantined() == []
            assert tx.endpoint_links(f"{group.name}/engineering") == []

    def test_a_pass_fenced_out_mid_write_is_finished_by_the_next_holder(
        self, sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store
    ) -> None:
        """A's lease runs out while a create's answer is late; B takes over: A stops, B recovers it, no duplicate.

        The lease outlives the read and plan stages by far (a loaded machine took over half a second for them, and
        a lease lost before the create is journaled tests nothing here); the create's answer outlives the lease.
        """
        before = _titles(sandbox)
        lease = store.acquire(group.name, A, 2.0)
        assert lease is not None
        sandbox.jira.faults.add(FaultRule(kind="delay_after", delay_ms=4000, times=1, method="POST", path="/issue$"))
        taken: list[Lease | None] = []
        takeover = threading.Timer(2.5, lambda: taken.append(store.acquire(group.name, B, 60)))
        takeover.start()
        with pytest.raises(LeaseLost):
            Pass(group, connectors, store, lease=lease).run()
        takeover.join()
        (successor,) = taken
        assert successor is not None
        with store.transaction() as tx:
            assert tx.quarantined() == []  # fenced out is not the item's fault
            assert tx.journal_pending() != []  # the create A sent, for B to resolve
        for _ in range(2):
            report = Pass(group, connectors, store, lease=successor).run()
            assert report.ok, report.failures
        assert report.writes == 0
        for counted in _titles(sandbox):
            assert [title for title, n in counted.items() if n > 1] == []
        assert len(_titles(sandbox)[0]) > len(before[0])
