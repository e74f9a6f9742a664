"""Whole passes over the three sandbox tools: real connectors, the shipped mapping, a real store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.asana import AsanaConnector
from connectors.base import Connector
from connectors.jira import JiraConnector
from connectors.pacing import RetryPolicy, TokenBucket
from connectors.trello import TrelloConnector
from syncd.audit import events, verify
from syncd.engine import Pass
from syncd.mapping import Group, compile_group
from syncd.sandbox.core import FaultRule
from syncd.sandbox.org import Sandbox
from syncd.sandbox.seed import SERVICE_ACCOUNT, token_for
from syncd.store import Store

ROOT = Path(__file__).resolve().parent.parent
FAST = RetryPolicy(attempts=4, max_total_s=30, initial_s=0.05, max_wait_s=2)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        for emulator in running.emulators:
            emulator.rate_limits_enabled = False  # budgets are the connectors' tests' subject, not this one's
        yield running


@pytest.fixture
def group() -> Group:
    return compile_group(
        ROOT / "mappings" / "launch-requests.yaml", {"engineering": "jira", "sales": "trello", "marketing": "asana"}
    )


@pytest.fixture
def connectors(sandbox: Sandbox) -> dict[str, Connector]:
    trello = sandbox.trello.credentials()
    people = {p.email: p.username for p in sandbox.seed.people}
    return {
        "engineering": JiraConnector(
            base_url=sandbox.jira.url,
            user=SERVICE_ACCOUNT,
            token=token_for("jira", SERVICE_ACCOUNT),
            project_key="ENG",
            transition_fields={"Done": {"resolution": {"name": "Done"}}},
            policy=FAST,
            bucket=TokenBucket(rate=1000, capacity=1000),
        ),
        "sales": TrelloConnector(
            base_url=sandbox.trello.url,
            key=trello["key"],
            token=trello["token"],
            board_id=next(iter(sandbox.trello.state.boards)),
            people=people,
            policy=FAST,
            buckets=[TokenBucket(rate=1000, capacity=1000)],
        ),
        "marketing": AsanaConnector(
            base_url=sandbox.asana.url,
            token=sandbox.asana.credentials()["token"],
            project_gid=next(iter(sandbox.asana.state.projects)),
            policy=FAST,
            bucket=TokenBucket(rate=1000, capacity=1000),
        ),
    }


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path / 'syncd.db'}")
    opened.migrate()
    yield opened
    opened.close()


def run(group: Group, connectors: dict[str, Connector], store: Store) -> int:
    report = Pass(group, connectors, store).run()
    assert report.ok, report.failures
    return report.writes


class TestPasses:
    def test_first_pass_mirrors_then_the_next_is_quiet(
        self, group: Group, connectors: dict[str, Connector], store: Store
    ) -> None:
        """The seeded items are mirrored into the other tools, and a second pass writes nothing (no echo)."""
        first = run(group, connectors, store)
        assert first > 0
        assert run(group, connectors, store) == 0
        assert verify(store).ok

    def test_a_persons_rename_reaches_the_other_tools(
        self, sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store
    ) -> None:
        """Eli renames a card in Trello: one pass carries it to Jira and Asana, the next pass is quiet."""
        run(group, connectors, store)
        run(group, connectors, store)
        card = next(c for c in sandbox.trello.state.cards.values() if c.name == "Bulk seat pricing for resellers")
        sandbox.trello.act_as("eli@corp.example").update_card(card.id, name="Bulk seat pricing, v2")
        assert run(group, connectors, store) == 2
        assert run(group, connectors, store) == 0
        titles = {i.summary for i in sandbox.jira.state.issues.values()}
        assert "Bulk seat pricing, v2" in titles
        assert "Bulk seat pricing, v2" in {t.name for t in sandbox.asana.state.tasks.values()}
        renames = [
            e for e in events(store) if e.event.kind == "write" and e.event.new == {"title": "Bulk seat pricing, v2"}
        ]
        assert len(renames) == 2

    def test_a_hinted_pass_carries_the_hinted_item_and_leaves_cursors(
        self, sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store
    ) -> None:
        """A webhook hint for one card syncs that card at once, with its lag measured, and moves no cursor."""
        run(group, connectors, store)
        with store.transaction() as tx:
            cursors = {m: tx.cursor(f"{group.name}/{m}") for m in group.codecs}
        card = next(c for c in sandbox.trello.state.cards.values() if c.name == "Bulk seat pricing for resellers")
        sandbox.trello.act_as("eli@corp.example").update_card(card.id, name="Hinted rename")
        report = Pass(group, connectors, store).run(hints={"sales": [card.id, card.id]})
        assert report.ok, report.failures
        assert report.writes == 2
        assert len(report.plans) == 1
        assert len(report.lags) == 2
        assert all(0 <= lag < 60 for lag in report.lags)
        assert "Hinted rename" in {i.summary for i in sandbox.jira.state.issues.values()}
        with store.transaction() as tx:
            assert {m: tx.cursor(f"{group.name}/{m}") for m in group.codecs} == cursors
        assert run(group, connectors, store) == 0


class TestFailures:
    def test_a_failed_item_is_planned_again_on_the_next_pass(
        self, sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store
    ) -> None:
        """A write refused by a tool leaves the item to be retried, never marked as synced."""
        run(group, connectors, store)
        card = next(c for c in sandbox.trello.state.cards.values() if c.name == "Bulk seat pricing for resellers")
        sandbox.trello.act_as("eli@corp.example").update_card(card.id, name="Renamed while Jira is down")
        sandbox.jira.faults.add(FaultRule(kind="status", status=400, method="PUT"))
        failed = Pass(group, connectors, store).run()
        assert not failed.ok
        sandbox.jira.faults.clear()
        assert run(group, connectors, store) >= 1
        assert "Renamed while Jira is down" in {i.summary for i in sandbox.jira.state.issues.values()}
        assert run(group, connectors, store) == 0
