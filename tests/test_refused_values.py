"""A value one tool refuses or cannot hold: left out (or fitted) there only, the rest of the item kept in step.

Through the real SDKs on the sandbox: Asana refuses an assignee whose e-mail it does not show (a person missing
from the department's ``people``); Jira holds 255 characters of a title and no label with a space; Jira and
Trello refuse a blank title. Each case is reported (audit ``refused`` events, ``syncd status``), the item is
created and kept in step everywhere else, the next pass writes nothing, and the field is tried again once its
value changes.
"""

from __future__ import annotations

from pathlib import Path

from connectors.base import Connector
from connectors.factory import CAPABILITIES
from sandbox.org import Sandbox
from syncd.audit import Recorded, events, verify
from syncd.engine import Pass
from syncd.mapping import UNTITLED, Group, compile_group, utf16_len
from syncd.store import Store
from tests.syncd_env import run

ROOT = Path(__file__).resolve().parent.parent
TITLE = "Launch page for the Q1 release"


def refused(store: Store, sync_id: str) -> list[Recorded]:
    return [e for e in events(store, sync_id=sync_id) if e.event.kind == "refused"]


def sync_id_of(store: Store, member: str, ref: str) -> str:
    with store.transaction() as tx:
        link = tx.find_link(f"launch-requests/{member}", ref)
    assert link is not None
    return link.sync_id


class TestAPersonATaskCannotHold:
    def test_a_hidden_assignee_is_left_out_in_asana_and_the_rest_syncs(
        self, sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store
    ) -> None:
        """Ben's e-mail is hidden from syncd in Asana and he is not in Marketing's people.

        Ana assigns the issue to Ben and renames it: Trello gets both, Asana the new title and its assignee stays
        as it was, reported once with Asana's message; the next pass writes nothing. Ana then assigns Chen: every
        tool gets Chen and the refusal is over.
        """
        sandbox.asana.state.hidden_emails.add("ben@corp.example")
        run(group, connectors, store)
        key = next(k for k, issue in sandbox.jira.state.issues.items() if issue.summary == TITLE)
        ana = sandbox.jira.act_as("ana@corp.example")
        ana.update(key, assignee="ben@corp.example", summary="Launch page, Q1 (Ben)")
        run(group, connectors, store)
        card = next(c for c in sandbox.trello.state.cards.values() if c.name == "Launch page, Q1 (Ben)")
        task = next(t for t in sandbox.asana.state.tasks.values() if t.name == "Launch page, Q1 (Ben)")
        ben = next(m.id for m in sandbox.trello.state.members.values() if m.email == "ben@corp.example")
        assert card.id_members == [ben]
        assert task.assignee is not None
        assert task.assignee.email == "ana@corp.example"  # as it was: Asana refused Ben
        sync_id = sync_id_of(store, "engineering", key)
        (event,) = refused(store, sync_id)
        assert (event.event.endpoint, event.event.field, event.event.outcome) == ("marketing", "assignees", "left out")
        assert event.event.new == ["ben@corp.example"]
        assert event.event.old == ["ana@corp.example"]
        assert "ben@corp.example" in (event.event.message or "")
        with store.transaction() as tx:
            assert {k: list(r) for k, r in tx.refusals(sync_id).items()} == {"launch-requests/marketing": ["assignees"]}
        assert run(group, connectors, store) == 0  # not written again, and Asana's old value is not news
        assert sandbox.jira.state.issues[key].assignee == "ben@corp.example"
        ana.update(key, assignee="chen@corp.example")
        run(group, connectors, store)
        assert task.assignee is not None
        assert task.assignee.email == "chen@corp.example"
        chen = next(m.id for m in sandbox.trello.state.members.values() if m.email == "chen@corp.example")
        assert card.id_members == [chen]
        with store.transaction() as tx:
            assert tx.refusals(sync_id) == {}
        assert len(refused(store, sync_id)) == 1
        assert run(group, connectors, store) == 0
        assert verify(store).ok

    def test_a_new_item_with_a_hidden_assignee_is_still_created_in_asana(
        self, sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store
    ) -> None:
        """The create is sent again without the assignee: the task exists, in step but for him."""
        sandbox.asana.state.hidden_emails.add("ben@corp.example")
        run(group, connectors, store)
        key = sandbox.jira.act_as("ana@corp.example").create(
            "ENG", "Partner pricing sheet", labels=["launch"], assignee="ben@corp.example"
        )
        run(group, connectors, store)
        (task,) = [t for t in sandbox.asana.state.tasks.values() if t.name == "Partner pricing sheet"]
        assert task.assignee is None
        (event,) = refused(store, sync_id_of(store, "engineering", key))
        assert (event.event.endpoint, event.event.field, event.event.old) == ("marketing", "assignees", [])
        assert run(group, connectors, store) == 0
        sandbox.jira.act_as("ana@corp.example").transition(key, "In Progress")
        run(group, connectors, store)
        assert task.memberships[0].section.name == "In progress"  # kept in step everywhere else


class TestValuesATitleOrLabelCannotBe:
    def test_a_long_title_and_a_label_with_a_space_are_fitted_for_jira(
        self, sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store
    ) -> None:
        """Gus's 1,004-character title and his tag "launch plan": Jira gets 255 characters and no such label."""
        run(group, connectors, store)
        long_title = ("Quarterly launch narrative " * 40)[:1004]
        gus = sandbox.asana.act_as("gus@corp.example")
        gid = gus.create_task(long_title, section="Backlog", tags=[_tag(sandbox, "launch plan")])
        run(group, connectors, store)
        (card,) = [c for c in sandbox.trello.state.cards.values() if c.name == long_title]
        (issue,) = [i for i in sandbox.jira.state.issues.values() if i.summary.startswith("Quarterly launch")]
        assert utf16_len(issue.summary) == 255
        assert issue.summary.endswith("…")
        assert "launch plan" not in issue.labels
        labels = {sandbox.trello.state.labels[label].name for label in card.id_labels}
        assert "launch plan" in labels
        fitted = {(e.event.endpoint, e.event.field, e.event.outcome) for e in refused(store, _sid(store, gid))}
        assert fitted == {("engineering", "title", "fitted"), ("engineering", "labels", "fitted")}
        report = Pass(group, connectors, store).run()
        assert report.writes == 0, [(s, p.base) for p in report.plans for s in p.steps]
        gus.update_task(gid, name="Launch narrative")
        run(group, connectors, store)
        assert (issue.summary, card.name) == ("Launch narrative", "Launch narrative")
        assert "launch plan" not in issue.labels
        assert run(group, connectors, store) == 0

    def test_a_blank_title_is_untitled_where_a_title_is_required(
        self, sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store
    ) -> None:
        """Gus clears a task's name to spaces: Jira and Trello show "(untitled)", nothing flaps, a rename ends it."""
        run(group, connectors, store)
        task = next(t for t in sandbox.asana.state.tasks.values() if t.name == "Launch blog post")
        gus = sandbox.asana.act_as("gus@corp.example")
        gus.update_task(task.gid, name="   ")
        run(group, connectors, store)
        issue = next(i for i in sandbox.jira.state.issues.values() if i.summary == UNTITLED)
        card = next(c for c in sandbox.trello.state.cards.values() if c.name == UNTITLED)
        assert task.name == "   "
        fitted = {(e.event.endpoint, e.event.outcome) for e in refused(store, _sid(store, task.gid))}
        assert fitted == {("engineering", "fitted"), ("sales", "fitted")}
        assert run(group, connectors, store) == 0
        sandbox.trello.act_as("eli@corp.example").update_card(card.id, name="Launch blog post, v2")
        run(group, connectors, store)
        assert (issue.summary, task.name) == ("Launch blog post, v2", "Launch blog post, v2")
        assert run(group, connectors, store) == 0

    def test_a_due_date_no_other_tool_holds_is_left_empty_there(
        self, sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store
    ) -> None:
        """Gus types 1200-03-01 in Asana: Jira and Trello hold no day before 1583, so theirs is left empty.

        Reported, never written malformed (Trello once got ``1-01-01T00:00:00.000Z``); a rename still reaches all.
        """
        run(group, connectors, store)
        task = next(t for t in sandbox.asana.state.tasks.values() if t.name == "Launch blog post")
        gus = sandbox.asana.act_as("gus@corp.example")
        gus.update_task(task.gid, due_on="1200-03-01", name="Launch blog post (medieval)")
        run(group, connectors, store)
        issue = next(i for i in sandbox.jira.state.issues.values() if i.summary == "Launch blog post (medieval)")
        card = next(c for c in sandbox.trello.state.cards.values() if c.name == "Launch blog post (medieval)")
        assert (issue.duedate, card.due) == (None, None)
        assert str(task.due_on) == "1200-03-01"
        events = {(e.event.endpoint, e.event.field, e.event.outcome) for e in refused(store, _sid(store, task.gid))}
        assert events == {("engineering", "due", "fitted"), ("sales", "due", "fitted")}
        assert run(group, connectors, store) == 0
        gus.update_task(task.gid, due_on="2027-03-01")
        run(group, connectors, store)
        assert str(issue.duedate) == "2027-03-01"
        assert card.due is not None
        assert run(group, connectors, store) == 0


class TestAValueTheMappingCannotCarry:
    def test_a_status_with_no_place_in_the_other_tools_is_left_out_there_once(
        self, sandbox: Sandbox, connectors: dict[str, Connector], store: Store, tmp_path: Path
    ) -> None:
        """Blocked maps to a status only Engineering has: Trello and Asana keep theirs, and nothing repeats.

        Each pass would otherwise plan the write again and read Trello's and Asana's old status as their change.
        """
        text = (ROOT / "mappings" / "launch-requests.yaml").read_text()
        mapping = tmp_path / "launch-requests.yaml"
        mapping.write_text(text.replace("Blocked: doing", "Blocked: blocked"))
        group = compile_group(mapping, {"engineering": "jira", "sales": "trello", "marketing": "asana"}, CAPABILITIES)
        run(group, connectors, store)
        key = next(k for k, issue in sandbox.jira.state.issues.items() if issue.summary == TITLE)
        card = next(c for c in sandbox.trello.state.cards.values() if c.name == TITLE)
        before = sandbox.trello.state.lists[card.id_list].name
        sandbox.jira.act_as("ana@corp.example").transition(key, "Blocked")
        report = Pass(group, connectors, store).run()
        assert report.ok, report.failures
        assert sandbox.trello.state.lists[card.id_list].name == before
        sync_id = sync_id_of(store, "engineering", key)
        left_out = {(e.event.endpoint, e.event.field, e.event.outcome) for e in refused(store, sync_id)}
        assert left_out == {("sales", "status", "left out"), ("marketing", "status", "left out")}
        again = Pass(group, connectors, store).run()
        assert (again.writes, [p.steps for p in again.plans if p.steps], again.problems) == (0, [], [])
        assert sandbox.jira.state.issues[key].status == "Blocked"
        sandbox.jira.act_as("ana@corp.example").transition(key, "Done", resolution="Done")
        run(group, connectors, store)
        assert sandbox.trello.state.lists[card.id_list].name == "Done"
        with store.transaction() as tx:
            assert tx.refusals(sync_id) == {}


def _tag(sandbox: Sandbox, name: str) -> str:
    """The gid of an Asana tag, made in the workspace if it does not exist yet."""
    with sandbox.asana.lock:
        tag = sandbox.asana.state.find_tag(name) or sandbox.asana.state.add_tag(name)
        return tag.gid


def _sid(store: Store, gid: str) -> str:
    return sync_id_of(store, "marketing", gid)
