"""``on_delete: delete`` (issue 18): a deletion in a member that asks for it deletes the mirrors, for real.

Sales says ``on_delete: delete`` in a copy of the shipped mapping: Eli deletes a card and the Jira issue and the
Asana task are deleted through the real SDKs (DELETE issue, DELETE task), each audited with the values it held.
A deletion in Asana (no ``on_delete`` of its own) still archives; a mass deletion is held by the guard until a
person confirms it; a pass killed between a remote delete and its commit is finished by the next one, with no
mirror made again. Also here: Jira's default priority on an issue syncd creates reaches Trello and Asana in the
same pass (the shipped mapping maps priority). Whole passes over the sandbox, a real store.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from connectors.base import Connector
from connectors.factory import CAPABILITIES
from sandbox.core import FaultRule
from sandbox.org import Sandbox
from syncd.audit import events
from syncd.cli import app
from syncd.engine import Pass, endpoint_key
from syncd.guard import Threshold
from syncd.mapping import Group, compile_group
from syncd.store import Store
from syncd.store import guards as stored
from tests.syncd_env import ROOT, run

ELI = "eli@corp.example"
GUS = "gus@corp.example"
TOOLS = {"engineering": "jira", "sales": "trello", "marketing": "asana"}


def deleting_mapping(directory: Path) -> Path:
    """The shipped mapping with ``on_delete: delete`` for Sales, in ``directory``."""
    text = (ROOT / "mappings" / "launch-requests.yaml").read_text()
    assert "  sales: {}\n" in text
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "launch-requests.yaml"
    path.write_text(text.replace("  sales: {}\n", "  sales: {on_delete: delete}\n"))
    return path


@pytest.fixture
def group(tmp_path: Path) -> Group:
    return compile_group(deleting_mapping(tmp_path / "mappings"), TOOLS, CAPABILITIES)


def mirrored(group: Group, connectors: dict[str, Connector], store: Store) -> list[dict[str, str]]:
    """Mirror the organisation; it settles in one pass (Jira's default priorities included). Refs per item."""
    run(group, connectors, store)
    assert run(group, connectors, store) == 0
    with store.transaction() as tx:
        return [
            {key.split("/", 1)[1]: each.ref for key, each in tx.links(link.sync_id).items()}
            for link in tx.endpoint_links(endpoint_key(group.name, "sales"))
        ]


def exists(sandbox: Sandbox, refs: dict[str, str]) -> dict[str, bool]:
    """Whether each of the item's records still exists in its tool (the emulators' state, not syncd's view)."""
    return {
        "engineering": refs["engineering"] in sandbox.jira.state.issues,
        "sales": refs["sales"] in sandbox.trello.state.cards and not sandbox.trello.state.cards[refs["sales"]].deleted,
        "marketing": refs["marketing"] in sandbox.asana.state.tasks,
    }


def linked(group: Group, store: Store) -> dict[str, set[str]]:
    with store.transaction() as tx:
        return {m: {link.ref for link in tx.endpoint_links(endpoint_key(group.name, m))} for m in group.codecs}


class TestDeleteMirrors:
    def test_a_deleted_card_deletes_its_mirrors_audited_with_their_values(
        self, sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store
    ) -> None:
        """Eli deletes a card: the issue and the task are deleted; each delete event holds its mirror's values."""
        items = mirrored(group, connectors, store)
        refs = next(r for r in items if sandbox.trello.state.cards[r["sales"]].name == "Acme Foods asks for SSO")
        title = sandbox.trello.state.cards[refs["sales"]].name
        sandbox.trello.act_as(ELI).delete(refs["sales"])

        assert run(group, connectors, store) == 2
        assert exists(sandbox, refs) == {"engineering": False, "sales": False, "marketing": False}
        deletes = [e.event for e in events(store) if e.event.kind == "delete"]
        assert sorted(e.endpoint or "" for e in deletes) == ["engineering", "marketing"]
        for event in deletes:
            assert event.refs == {"sales": refs["sales"], event.endpoint: refs[event.endpoint or ""]}
            assert event.old["title"] == title
            assert event.old["priority"] == "high"  # the card's Priority High, mirrored before
            assert {"status", "labels", "assignees"} <= set(event.old)
            assert event.message == "deleted at sales"
        now = linked(group, store)
        assert all(refs[m] not in now[m] for m in group.codecs)
        assert run(group, connectors, store) == 0  # nothing made again, nothing else touched

    def test_a_deletion_where_on_delete_is_not_delete_still_archives(
        self, sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store
    ) -> None:
        """Gus deletes a task in Asana, whose member says nothing: the issue and the card are archived, not deleted."""
        refs = mirrored(group, connectors, store)[0]
        sandbox.asana.act_as(GUS).delete(refs["marketing"])
        assert run(group, connectors, store) == 2
        assert exists(sandbox, refs) == {"engineering": True, "sales": True, "marketing": False}
        records = {m: connectors[m].fetch([refs[m]])[0] for m in ("engineering", "sales")}
        assert all(record.archived for record in records.values())
        assert not any(e.event.kind == "delete" for e in events(store))

    def test_a_mass_deletion_is_held_until_a_person_confirms_it(
        self,
        sandbox: Sandbox,
        group: Group,
        connectors: dict[str, Connector],
        store: Store,
        environment: dict[str, str],
    ) -> None:
        """Eli deletes 6 cards with a threshold of 3: nothing is deleted, two guards hold them; confirmed, gone."""
        items = mirrored(group, connectors, store)
        doomed = items[:6]
        for refs in doomed:
            sandbox.trello.act_as(ELI).delete(refs["sales"])
        thresholds = {member: Threshold(max_items=3, max_share=0.05) for member in group.codecs}
        report = Pass(group, connectors, store, mass_change=thresholds).run()
        assert len(report.held) == 6
        assert all(exists(sandbox, refs)["engineering"] and exists(sandbox, refs)["marketing"] for refs in doomed)
        with store.transaction() as tx:
            pending = [guard for guard in stored.active(tx) if guard.state == "pending"]
        assert sorted(guard.endpoint for guard in pending) == ["engineering", "marketing"]
        assert all(entry["what"] == "delete" for guard in pending for entry in guard.items.values())

        for guard in pending:  # the CLI on the same store (the environment names the test's database)
            said = CliRunner().invoke(
                app,
                ["guard", "confirm", guard.id, "--by", "ops@corp.example", "--config", environment["CONFIG_DIR"]],
                env=environment,
            )
            assert said.exit_code == 0, said.output
        Pass(group, connectors, store, mass_change=thresholds).run()
        assert all(not any(exists(sandbox, refs).values()) for refs in doomed)
        assert sum(e.event.kind == "delete" for e in events(store)) == 12
        assert run(group, connectors, store) == 0


class TestPriority:
    def test_jira_default_priority_reaches_trello_and_asana_in_the_same_pass(
        self, sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store
    ) -> None:
        """A card without a priority is mirrored into Jira, which gives the issue Medium: Trello and Asana get
        medium in that pass, and the next pass writes nothing (no ping-pong)."""
        mirrored(group, connectors, store)
        card = sandbox.trello.act_as(ELI).create_card("Requests", "Reseller onboarding guide")
        run(group, connectors, store)
        with store.transaction() as tx:
            (link,) = tx.find_links(endpoint_key(group.name, "sales"), [card]).values()
            refs = {key.split("/", 1)[1]: each.ref for key, each in tx.links(link.sync_id).items()}
            base = tx.base(link.sync_id) or {}
        assert base["priority"] == "medium"
        assert sandbox.jira.state.issues[refs["engineering"]].priority == "Medium"
        for member in ("sales", "marketing"):
            (view, _) = group.codecs[member].decode(connectors[member].fetch([refs[member]])[0])
            assert view.values["priority"] == "medium", member
        assert run(group, connectors, store) == 0

    def test_no_mirror_is_planned_into_a_member_that_is_down(
        self, sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store
    ) -> None:
        """Asana refuses every request while a new card is mirrored into Jira (which adds its default priority):
        the round that reads that priority back must not take Asana's silence for a missing task. Asana gets the
        card once, when it answers again."""
        mirrored(group, connectors, store)
        card = sandbox.trello.act_as(ELI).create_card("Requests", "Partner webinar kit")
        sandbox.asana.faults.add(FaultRule(kind="status", status=503))
        sandbox.asana.reset_counters()
        report = Pass(group, connectors, store).run()
        assert "marketing" in report.down
        assert sandbox.asana.request_count("POST /api/1.0/tasks") == 0  # no create was even tried
        sandbox.asana.faults.clear()
        run(group, connectors, store)
        assert [t.name for t in sandbox.asana.state.tasks.values()].count("Partner webinar kit") == 1
        assert card in {each.ref for each in store_links(store, group, "sales")}
        assert run(group, connectors, store) == 0


def store_links(store: Store, group: Group, member: str) -> list[Any]:
    """The links of one member of the group."""
    with store.transaction() as tx:
        return list(tx.endpoint_links(endpoint_key(group.name, member)))


def test_a_pass_killed_after_a_delete_is_finished_without_a_resurrection(
    sandbox: Sandbox, environment: dict[str, str], tmp_path: Path
) -> None:
    """`syncd once` killed right after deleting the first mirror; the next run deletes the other, makes nothing."""
    import subprocess  # noqa: PLC0415 - only this test runs syncd as a process

    from tests.syncd_env import SYNCD  # noqa: PLC0415

    mappings = deleting_mapping(tmp_path / "mappings").parent

    def once(**extra: str) -> subprocess.CompletedProcess[str]:
        command = [str(SYNCD), "once", "--config", environment["CONFIG_DIR"], "--mappings", str(mappings)]
        return subprocess.run(
            command, capture_output=True, text=True, env={**environment, **extra}, timeout=300, check=False
        )

    assert once().returncode == 0
    card = next(c for c in sandbox.trello.state.cards.values() if c.name == "Bulk seat pricing for resellers")
    key = next(k for k, i in sandbox.jira.state.issues.items() if i.summary == card.name)
    task = next(g for g, t in sandbox.asana.state.tasks.items() if t.name == card.name)
    issues, tasks = len(sandbox.jira.state.issues), len(sandbox.asana.state.tasks)
    sandbox.trello.act_as(ELI).delete(card.id)

    killed = once(SYNCD_CRASH_AT="after-delete")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # Killed after a delete (the tools' deletes go out at once, so the other may have landed too), uncommitted.
    assert key not in sandbox.jira.state.issues or task not in sandbox.asana.state.tasks

    assert once().returncode == 0
    quiet = once()
    assert quiet.returncode == 0, quiet.stderr
    assert " 0 writes" in quiet.stderr, quiet.stderr
    assert key not in sandbox.jira.state.issues
    assert task not in sandbox.asana.state.tasks
    assert (len(sandbox.jira.state.issues), len(sandbox.asana.state.tasks)) == (issues - 1, tasks - 1)
    store = Store(environment["SYNCD_STORE"])
    try:
        deletes = [e.event for e in events(store) if e.event.kind == "delete"]
        with store.transaction() as tx:
            assert not tx.journal_for("launch-requests")
    finally:
        store.close()
    assert sorted(e.endpoint or "" for e in deletes) == ["engineering", "marketing"]
    assert all(e.old and e.old["title"] == card.name for e in deletes)
