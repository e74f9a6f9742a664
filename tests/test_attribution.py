"""Audit attribution over whole passes: each write names, per field, the person whose change it carries.

The people come from the origin tool's own history (Jira changelog, Trello actions, Asana stories), not from the
record, which says nothing about who edited it; a decision names who decided (issue 19).
"""

from __future__ import annotations

from pathlib import Path

from connectors.factory import CAPABILITIES
from sandbox.org import Sandbox
from syncd.audit import AuditEvent, events, verify
from syncd.connector import Connector
from syncd.mapping import Group, compile_group
from syncd.store import Store
from tests.syncd_env import ROOT, run

SUBJECT = "Onboarding checklist"
"""A Jira issue assigned to Ben: the person the log named for every change before (the view's assignee)."""
LEAD = "lead@corp.example"


def _writes(store: Store, sync_id: str, name: str) -> dict[str, AuditEvent]:
    """The last write of a field per endpoint, in the item's audit log."""
    found = {}
    for each in events(store, sync_id=sync_id):
        if each.event.kind == "write" and name in (each.event.new or {}) and each.event.endpoint:
            found[each.event.endpoint] = each.event
    return found


def _priority_conflict(store: Store, card: str) -> tuple[str, AuditEvent]:
    """The item of a Trello card, and the one conflict over its priority the audit log holds."""
    sync_id = next(e.event.sync_id for e in events(store) if e.event.refs.get("sales") == card)
    assert sync_id is not None
    (decided,) = [
        e.event for e in events(store, sync_id=sync_id) if e.event.kind == "conflict" and e.event.field == "priority"
    ]
    return sync_id, decided


class TestAttribution:
    def test_a_decided_due_date_names_its_author_and_the_lead(
        self, sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store
    ) -> None:
        """Eli sets the due date in Trello, Ben renames the Jira issue, a lead takes Sales' date: the Jira and Asana
        writes of ``due`` name Eli (and the lead as decider), the rename names Ben, the decision names the lead."""
        run(group, connectors, store)
        run(group, connectors, store)
        key = next(k for k, issue in sandbox.jira.state.issues.items() if issue.summary == SUBJECT)
        card = next(c for c in sandbox.trello.state.cards.values() if c.name == SUBJECT)
        sandbox.trello.act_as("eli@corp.example").update_card(card.id, due="2027-03-05T12:00:00Z")
        sandbox.jira.act_as("ana@corp.example").update(key, duedate="2027-03-09")
        sandbox.jira.act_as("ben@corp.example").update(key, summary="Onboarding checklist v2")
        run(group, connectors, store)
        with store.transaction() as tx:
            (queued,) = tx.conflicts(group=group.name)
            tx.decide_conflict(queued.id, "sales", LEAD)
        renames = _writes(store, queued.sync_id, "title")
        assert {endpoint: event.person for endpoint, event in renames.items()} == {
            "sales": "ben@corp.example",
            "marketing": "ben@corp.example",
        }

        assert run(group, connectors, store) == 2
        dues = _writes(store, queued.sync_id, "due")
        assert set(dues) == {"engineering", "marketing"}
        for event in dues.values():
            assert (event.origin, event.person, event.people) == (
                "sales",
                "eli@corp.example",
                {"due": "eli@corp.example"},
            )
            assert (event.decided_by, event.rule) == ({"due": LEAD}, "manual:sales")
        (resolved,) = [e.event for e in events(store, sync_id=queued.sync_id) if e.event.kind == "resolve"]
        assert resolved.person == LEAD
        assert run(group, connectors, store) == 0
        assert verify(store).ok

    def test_a_write_of_two_peoples_changes_names_each(
        self, sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store
    ) -> None:
        """Eli renames the card, Gus sets the task's due date: Jira's one write names each per field, and no one
        person for the whole write."""
        run(group, connectors, store)
        run(group, connectors, store)
        card = next(c for c in sandbox.trello.state.cards.values() if c.name == SUBJECT)
        task = next(t for t in sandbox.asana.state.tasks.values() if t.name == SUBJECT)
        sandbox.trello.act_as("eli@corp.example").update_card(card.id, name="Onboarding checklist, reviewed")
        sandbox.asana.act_as("gus@corp.example").update_task(task.gid, due_on="2027-03-12")
        run(group, connectors, store)
        sync_id = next(e.event.sync_id for e in events(store) if e.event.refs.get("sales") == card.id)
        assert sync_id is not None
        jira = _writes(store, sync_id, "title")["engineering"]
        assert set(jira.new) == {"title", "due"}
        assert (jira.origin, jira.person) == ("marketing,sales", None)
        assert jira.people == {"title": "eli@corp.example", "due": "gus@corp.example"}
        assert verify(store).ok

    def test_a_new_issue_is_credited_from_the_search_without_a_read_of_its_own(
        self, sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store
    ) -> None:
        """Ben opens an issue in Jira: its mirrors' creates name him, from the changelog the search carried; the pass
        reads neither the issue's history nor its comments (it has none) by itself (issue 15: a backfill's pace)."""
        run(group, connectors, store)
        run(group, connectors, store)
        key = sandbox.jira.act_as("ben@corp.example").create("ENG", "Pricing page copy", labels=["launch"])
        sandbox.jira.reset_counters()
        assert run(group, connectors, store) == 2
        with store.transaction() as tx:
            sync_id = next(link.sync_id for link in tx.endpoint_links(f"{group.name}/engineering") if link.ref == key)
        creates = [e.event for e in events(store, sync_id=sync_id) if e.event.kind == "create"]
        assert {event.endpoint for event in creates} == {"sales", "marketing"}
        for event in creates:
            assert event.person == "ben@corp.example"
            assert (event.people or {}).get("title") == "ben@corp.example"
        routes = sandbox.jira.counters()["routes"]
        per_issue = {r: n for r, n in routes.items() if "/issue/<issue_id>" in r and r.startswith("GET")}
        assert per_issue == {}
        assert verify(store).ok

    def test_a_priority_kept_in_custom_fields_goes_to_the_later_change_and_names_its_author(
        self, sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store
    ) -> None:
        """Eli sets the card's Priority (a Trello custom field), Gus an hour later the task's (an Asana one), then
        Eli edits the card's description: ``latest`` weighs the Priority changes by the tools' history, not by the
        card's newer modified time, so Gus's High wins, and the writes and the decision name him."""
        run(group, connectors, store)
        run(group, connectors, store)
        card = next(c for c in sandbox.trello.state.cards.values() if c.name == SUBJECT)
        task = next(t for t in sandbox.asana.state.tasks.values() if t.name == SUBJECT)
        sandbox.trello.act_as("eli@corp.example").set_custom_field(card.id, "Priority", "Low")
        sandbox.clock.advance(3600)
        sandbox.asana.act_as("gus@corp.example").set_field(task.gid, "Priority", "High")
        sandbox.clock.advance(3600)
        sandbox.trello.act_as("eli@corp.example").update_card(card.id, desc="Checked by Eli.")
        run(group, connectors, store)
        sync_id, decided = _priority_conflict(store, card.id)
        assert (decided.rule, decided.new, decided.origin) == ("latest", "high", "marketing")
        assert decided.people == {"priority": "gus@corp.example"}
        priorities = _writes(store, sync_id, "priority")
        assert set(priorities) == {"engineering", "sales"}
        for event in priorities.values():
            assert event.new["priority"] == "high"
            assert (event.people or {})["priority"] == "gus@corp.example"
        assert priorities["engineering"].person is None  # it carries Eli's description too
        assert priorities["engineering"].people == {"priority": "gus@corp.example", "description": "eli@corp.example"}
        assert run(group, connectors, store) == 0
        assert verify(store).ok

    def test_a_priority_set_back_in_a_custom_field_is_a_change_there(
        self, sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store
    ) -> None:
        """Gus raises the task's Priority; an hour later Eli lowers the card's and sets it back: by state the card is
        untouched, by Trello's actions Eli's change is the later, so ``latest`` keeps his value and names him."""
        run(group, connectors, store)
        run(group, connectors, store)
        card = next(c for c in sandbox.trello.state.cards.values() if c.name == SUBJECT)
        task = next(t for t in sandbox.asana.state.tasks.values() if t.name == SUBJECT)
        (before,) = connectors["sales"].fetch([card.id])
        assert before.fields["custom"]["Priority"] == "Medium"
        sandbox.asana.act_as("gus@corp.example").set_field(task.gid, "Priority", "High")
        sandbox.clock.advance(3600)
        eli = sandbox.trello.act_as("eli@corp.example")
        eli.set_custom_field(card.id, "Priority", "Low")
        eli.set_custom_field(card.id, "Priority", "Medium")
        run(group, connectors, store)
        sync_id, decided = _priority_conflict(store, card.id)
        assert (decided.new, decided.origin, decided.people) == ("medium", "sales", {"priority": "eli@corp.example"})
        priorities = _writes(store, sync_id, "priority")
        assert set(priorities) == {"marketing"}
        assert (priorities["marketing"].new["priority"], priorities["marketing"].person) == (
            "medium",
            "eli@corp.example",
        )
        assert run(group, connectors, store) == 0
        assert verify(store).ok

    def test_a_status_kept_in_an_asana_custom_field_names_who_set_that_field(
        self, sandbox: Sandbox, connectors: dict[str, Connector], store: Store, tmp_path: Path
    ) -> None:
        """Marketing keeps status in its Status enum: Gus sets it On track, then Hana moves the task to another
        section (which maps to nothing now). The mirrors' status writes name Gus, from his custom-field story."""
        text = (ROOT / "mappings" / "launch-requests.yaml").read_text()
        sections = "      marketing: {Backlog: todo, In progress: doing, Shipped: done}\n"
        assert sections in text
        text = text.replace(
            sections, "      marketing: {Not started: todo, On track: doing, At risk: doing, Done: done}\n"
        )
        text = text.replace("  status:\n", "  status:\n    at: {marketing: {custom: Status}}\n", 1)
        path = tmp_path / "launch-requests.yaml"
        path.write_text(text)
        group = compile_group(path, {"engineering": "jira", "sales": "trello", "marketing": "asana"}, CAPABILITIES)
        run(group, connectors, store)
        run(group, connectors, store)
        task = next(t for t in sandbox.asana.state.tasks.values() if t.name == SUBJECT)
        sandbox.asana.act_as("gus@corp.example").set_field(task.gid, "Status", "On track")
        sandbox.clock.advance(3600)
        sandbox.asana.act_as("hana@corp.example").move(task.gid, "Shipped")
        run(group, connectors, store)
        sync_id = next(e.event.sync_id for e in events(store) if e.event.refs.get("marketing") == task.gid)
        assert sync_id is not None
        statuses = _writes(store, sync_id, "status")
        assert set(statuses) == {"engineering", "sales"}
        for event in statuses.values():
            assert (event.new["status"], event.origin) == ("doing", "marketing")
            assert (event.people or {})["status"] == "gus@corp.example"
        assert run(group, connectors, store) == 0
        assert verify(store).ok
