"""Crash safety: `syncd once` is SIGKILLed at each crash point; the next run loses nothing and duplicates nothing.

Each test mirrors the seed, has people make a new item and a rename, kills the pass at one point of the executor,
then runs again without the crash: every tool holds the new item exactly once and the rename everywhere, a third
run writes nothing, the journal is empty, every mirror has exactly one create event, and the audit chain verifies.
"""

from __future__ import annotations

import signal
from collections import Counter

import pytest

from syncd.audit import events, verify
from syncd.crash import POINTS
from syncd.sandbox.org import Sandbox
from syncd.store import Store
from tests.syncd_env import syncd

NEW = "Partner launch kit"
RENAMED = "Bulk seat pricing, after the crash"


def _titles(sandbox: Sandbox) -> dict[str, Counter[str]]:
    return {
        "engineering": Counter(issue.summary for issue in sandbox.jira.state.issues.values()),
        "sales": Counter(card.name for card in sandbox.trello.state.cards.values()),
        "marketing": Counter(task.name for task in sandbox.asana.state.tasks.values()),
    }


def _store(environment: dict[str, str]) -> Store:
    return Store(environment["SYNCD_STORE"])


@pytest.mark.parametrize("point", POINTS)
def test_a_killed_pass_is_finished_by_the_next(sandbox: Sandbox, environment: dict[str, str], point: str) -> None:
    """Killed at ``point``, then run again: converged, no duplicate, no lost edit, audit consistent."""
    assert syncd(environment, "once").returncode == 0
    card = next(c for c in sandbox.trello.state.cards.values() if c.name == "Bulk seat pricing for resellers")
    key = next(k for k, i in sandbox.jira.state.issues.items() if i.summary == card.name)
    task = next(t for t in sandbox.asana.state.tasks.values() if t.name == card.name)
    sandbox.trello.act_as("eli@corp.example").update_card(card.id, name=RENAMED)
    sandbox.jira.act_as("ana@corp.example").create("ENG", NEW, labels=["launch"])
    sandbox.jira.act_as("ana@corp.example").comment(key, "Checked with legal.")

    killed = syncd({**environment, "SYNCD_CRASH_AT": point}, "once")
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    after = syncd(environment, "once")
    assert after.returncode == 0, after.stderr
    quiet = syncd(environment, "once")
    assert quiet.returncode == 0, quiet.stderr
    assert " 0 writes" in quiet.stderr

    titles = _titles(sandbox)
    for member, counted in titles.items():
        assert counted[NEW] == 1, (member, counted[NEW])
        assert counted[RENAMED] == 1, (member, counted[RENAMED])
        assert counted["Bulk seat pricing for resellers"] == 0, member
    # The comment: once in Jira (Ana's), exactly one copy in Trello and in Asana.
    assert len(sandbox.jira.state.issues[key].comments) == 1
    trello = [a for a in sandbox.trello.state.actions if a.type == "commentCard" and a.id_card == card.id]
    asana = [s for s in sandbox.asana.state.stories.values() if s.task is task and s.type == "comment"]
    assert len(trello) == 1
    assert len(asana) == 1
    store = _store(environment)
    try:
        assert verify(store).ok
        with store.transaction() as tx:
            assert tx.journal_pending() == []
            new_item = next(
                link.sync_id
                for link in tx.endpoint_links("launch-requests/engineering")
                if sandbox.jira.state.issues[link.ref].summary == NEW
            )
        creates = Counter(e.event.endpoint for e in events(store, sync_id=new_item) if e.event.kind == "create")
        assert creates == {"sales": 1, "marketing": 1}
    finally:
        store.close()
