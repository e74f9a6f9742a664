"""N-way sync as a state machine over the three sandbox emulators, with the real connectors and the shipped mapping.

Hypothesis plays people creating, renaming, moving, commenting and deleting in random tools, interleaved with
sync passes. When the edits stop, a lead settles the conflicts the ``manual`` rule held and two passes run; then:

- convergence: every linked endpoint of every item decodes to the item's base values;
- quiescence: a further pass writes nothing;
- no duplicates: no two records in a tool carry the same item's marker, and every record in scope is linked;
- audit: every remote write of every pass has its event, and the chain verifies.

:class:`PeopleSizingDeals` adds a custom field, the deal size Engineering and Sales hold (a Jira number and a Trello
number custom field), which their people set and clear at random.

:class:`PeopleKeepingLabels` runs the same people on a group whose labels Engineering and Sales hold and Marketing
does not (a per-member field): people also label issues and cards and tag tasks, and Asana's tags must end exactly
as Marketing's people left them.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from connectors.base import Connector
from connectors.factory import CAPABILITIES
from sandbox.asana import edits
from sandbox.org import Sandbox
from syncd.audit import events, verify
from syncd.engine import Pass, endpoint_key
from syncd.mapping import Group, compile_group
from syncd.merge import ARCHIVED, same
from syncd.store import Store
from tests.syncd_env import FAST, sandbox_connectors

pytestmark = pytest.mark.timeout(900)  # several whole organisations are mirrored, one per example

ROOT = Path(__file__).resolve().parent.parent
WRITE_KINDS = {"write", "create", "archive", "comment"}
PEOPLE = {"engineering": "ana@corp.example", "sales": "eli@corp.example", "marketing": "gus@corp.example"}
STATUSES = {
    "engineering": ["To Do", "In Progress", "Done"],
    "sales": ["Requests", "Doing", "Done"],
    "marketing": ["Backlog", "In progress", "Shipped"],
}
MEMBERS = tuple(PEOPLE)
TOOLS = {"engineering": "jira", "sales": "trello", "marketing": "asana"}

words = st.lists(st.sampled_from(["alpha", "beta", "gamma", "launch", "page", "v2", "pricing"]), min_size=1, max_size=3)
titles = words.map(" ".join)
members = st.sampled_from(MEMBERS)


def _connectors(sandbox: Sandbox) -> dict[str, Connector]:
    # Every pass lists the Jira project, so deletions in Jira are seen at once.
    return sandbox_connectors(sandbox, policy=FAST, reconcile_every=timedelta(0))


class People(RuleBasedStateMachine):
    """People editing in three tools while syncd runs passes."""

    def __init__(self) -> None:
        super().__init__()
        self.sandbox = Sandbox().start()
        for emulator in self.sandbox.emulators:
            emulator.rate_limits_enabled = False
        self.directory = Path(tempfile.mkdtemp(prefix="syncd-sm-"))
        self.store = Store(f"sqlite:///{self.directory / 'syncd.db'}")
        self.store.migrate()
        self.group: Group = compile_group(ROOT / "mappings" / "launch-requests.yaml", TOOLS, CAPABILITIES)
        self.connectors = _connectors(self.sandbox)
        self.passes = 0

    # ----- the tools as people see them --------------------------------------------------------------------

    def _refs(self, member: str) -> list[str]:
        """What a person of ``member`` can pick: the records in the group's scope there."""
        if member == "engineering":
            issues = self.sandbox.jira.state.issues
            return sorted(key for key, issue in issues.items() if "launch" in issue.labels)
        if member == "sales":
            cards = self.sandbox.trello.state.cards.values()
            return sorted(card.id for card in cards if not card.closed and not card.deleted)
        return sorted(self.sandbox.asana.state.tasks)

    def _sync(self) -> None:
        before = {e.seq for e in events(self.store)}
        report = Pass(self.group, self.connectors, self.store).run()
        self.passes += 1
        assert report.ok, report.failures
        written = [e for e in events(self.store) if e.seq not in before and e.event.kind in WRITE_KINDS]
        assert len(written) == report.writes, (len(written), report.writes)

    @initialize()
    def first_pass(self) -> None:
        """The organisation as seeded, mirrored once."""
        self._sync()

    # ----- people's edits ----------------------------------------------------------------------------------

    @rule(member=members, title=titles)
    def create(self, member: str, title: str) -> None:
        person = PEOPLE[member]
        if member == "engineering":
            self.sandbox.jira.act_as(person).create("ENG", title, labels=["launch"])
        elif member == "sales":
            self.sandbox.trello.act_as(person).create_card("Requests", title)
        else:
            self.sandbox.asana.act_as(person).create_task(title, section="Backlog")

    @rule(member=members, title=titles, data=st.data())
    def rename(self, member: str, title: str, data: st.DataObject) -> None:
        refs = self._refs(member)
        if not refs:
            return
        ref = data.draw(st.sampled_from(refs))
        person = PEOPLE[member]
        self.sandbox.clock.advance(1)
        if member == "engineering":
            self.sandbox.jira.act_as(person).update(ref, summary=title)
        elif member == "sales":
            self.sandbox.trello.act_as(person).update_card(ref, name=title)
        else:
            self.sandbox.asana.act_as(person).update_task(ref, name=title)

    @rule(member=members, data=st.data())
    def move(self, member: str, data: st.DataObject) -> None:
        refs = self._refs(member)
        if not refs:
            return
        ref = data.draw(st.sampled_from(refs))
        status = data.draw(st.sampled_from(STATUSES[member]))
        person = PEOPLE[member]
        self.sandbox.clock.advance(1)
        if member == "engineering":
            self.sandbox.jira.act_as(person).transition(ref, status, resolution="Done")
        elif member == "sales":
            self.sandbox.trello.act_as(person).move_card(ref, status)
        else:
            self.sandbox.asana.act_as(person).move(ref, status)

    @rule(member=members, text=titles, data=st.data())
    def comment(self, member: str, text: str, data: st.DataObject) -> None:
        refs = self._refs(member)
        if not refs:
            return
        ref = data.draw(st.sampled_from(refs))
        person = PEOPLE[member]
        if member == "engineering":
            self.sandbox.jira.act_as(person).comment(ref, text)
        elif member == "sales":
            self.sandbox.trello.act_as(person).comment(ref, text)
        else:
            self.sandbox.asana.act_as(person).comment(ref, text)

    @rule(member=members, data=st.data())
    def delete(self, member: str, data: st.DataObject) -> None:
        refs = self._refs(member)
        if len(refs) < 12:  # keep far above the mass-delete guard: these are single deletions
            return
        ref = data.draw(st.sampled_from(refs))
        person = PEOPLE[member]
        if member == "engineering":
            self.sandbox.jira.act_as(person).delete(ref)
        elif member == "sales":
            self.sandbox.trello.act_as(person).delete(ref)
        else:
            self.sandbox.asana.act_as(person).delete(ref)

    @precondition(lambda self: self.passes < 12)
    @rule()
    def sync(self) -> None:
        self._sync()

    # ----- when the edits stop ------------------------------------------------------------------------------

    def teardown(self) -> None:
        try:
            self._settle()
            self._check()
        finally:
            self.store.close()
            self.sandbox.stop()
            shutil.rmtree(self.directory, ignore_errors=True)

    def _settle(self) -> None:
        """A pass; a lead takes the first department's value for each held conflict; two passes."""
        self._sync()
        with self.store.transaction() as tx:
            for held in tx.conflicts(states=("open",)):
                tx.decide_conflict(held.id, sorted(held.values)[0], "lead@corp.example")
        self._sync()
        self._sync()

    def _check(self) -> None:
        quiet = Pass(self.group, self.connectors, self.store).run()
        assert quiet.ok, quiet.failures
        assert quiet.writes == 0, [p for p in quiet.plans if not p.quiet]
        with self.store.transaction() as tx:
            assert tx.conflicts() == []
            assert tx.quarantined() == []
            assert tx.journal_pending() == []
        for member in MEMBERS:
            self._check_member(member)
        assert verify(self.store).ok

    def _check_member(self, member: str) -> None:
        key = endpoint_key(self.group.name, member)
        codec = self.group.codecs[member]
        listing = self.connectors[member].changes(None)
        in_scope = [record for record in listing.records if codec.in_scope(record)]
        # Every record, in scope or not: a mirror that fell out of scope and was created again is a duplicate too.
        markers = Counter(record.marker for record in listing.records if record.marker and not record.archived)
        assert all(count == 1 for count in markers.values()), (member, markers.most_common(3))
        with self.store.transaction() as tx:
            links = {link.ref: link for link in tx.endpoint_links(key)}
            bases: dict[str, dict[str, Any] | None] = {link.sync_id: tx.base(link.sync_id) for link in links.values()}
        unlinked = [record.ref for record in in_scope if record.ref not in links]
        assert unlinked == [], (member, unlinked)
        for record in in_scope:
            base = bases[links[record.ref].sync_id] or {}
            view = codec.align(codec.decode(record)[0], base)
            if view.archived:
                # Archived items are frozen (archiving itself may change them, e.g. Jira's done status).
                assert base.get(ARCHIVED), (member, record.ref, "archived here, not in the base")
                continue
            differing = {
                name: (value, base.get(name))
                for name, value in view.values.items()
                if name in base and not same(value, base[name])
            }
            assert differing == {}, (member, record.ref, differing)


class PeopleKeepingLabels(People):
    """The same people on a group whose labels Marketing does not hold: its tags are its own, never synced."""

    def __init__(self) -> None:
        super().__init__()
        shipped = (ROOT / "mappings" / "launch-requests.yaml").read_text()
        kept, found = re.subn(
            r"^  labels: \{rule: union\}", "  labels: {rule: union, members: [engineering, sales]}", shipped, flags=re.M
        )
        assert found == 1, "the shipped group's labels line changed: update this variant"
        path = self.directory / "launch-requests.yaml"
        path.write_text(kept)
        self.group = compile_group(path, TOOLS, CAPABILITIES)
        self.tags = self._tags()
        """Task gid -> the tags Marketing's people gave it: all a task may hold (syncd's tasks: none)."""

    def _tags(self) -> dict[str, list[str]]:
        return {gid: sorted(tag.name for tag in task.tags) for gid, task in self.sandbox.asana.state.tasks.items()}

    @rule(member=members, label=st.sampled_from(["urgent", "enterprise"]), add=st.booleans(), data=st.data())
    def label(self, member: str, label: str, add: bool, data: st.DataObject) -> None:
        """Ana labels an issue, Eli a card (board labels), Gus tags a task (Asana's own tags)."""
        refs = self._refs(member)
        if not refs:
            return
        ref = data.draw(st.sampled_from(refs))
        person = PEOPLE[member]
        self.sandbox.clock.advance(1)
        if member == "engineering":
            labels = set(self.sandbox.jira.state.issues[ref].labels)
            self.sandbox.jira.act_as(person).update(ref, labels=sorted(labels | {label} if add else labels - {label}))
        elif member == "sales":
            trello = self.sandbox.trello.state
            held = {trello.labels[each].name for each in trello.cards[ref].id_labels}
            actor = self.sandbox.trello.act_as(person)
            if add and label not in held:
                actor.add_label(ref, label)
            elif not add and label in held:
                actor.remove_label(ref, label)
        else:
            user = self.sandbox.asana.act_as(person).user
            with self.sandbox.asana.lock:
                state = self.sandbox.asana.state
                tag = state.find_tag("press" if label == "urgent" else "web")
                assert tag is not None
                (edits.add_tag if add else edits.remove_tag)(state, user, state.task(ref), tag)
            self.tags[ref] = self._tags()[ref]

    def _check(self) -> None:
        super()._check()
        tags = self._tags()
        assert {gid: tags[gid] for gid in tags if tags[gid] != self.tags.get(gid, [])} == {}


DEAL_SIZE = """\
  deal_size:
    type: number
    members: [engineering, sales]
    at: {engineering: {custom: Deal size}, sales: {custom: Deal size}}
"""


class PeopleSizingDeals(People):
    """The same people on a group with a custom field: the deal size Engineering (Jira) and Sales (Trello) hold."""

    def __init__(self) -> None:
        super().__init__()
        shipped = (ROOT / "mappings" / "launch-requests.yaml").read_text()
        assert "\ncomments:" in shipped, "the shipped group's last key changed: update this variant"
        path = self.directory / "launch-requests.yaml"
        path.write_text(shipped.replace("\ncomments:", "\n" + DEAL_SIZE + "comments:"))
        self.group = compile_group(path, TOOLS, CAPABILITIES)

    @rule(
        member=st.sampled_from(["engineering", "sales"]), size=st.sampled_from([None, 0, 1500, 48000.5]), data=st.data()
    )
    def size(self, member: str, size: float | None, data: st.DataObject) -> None:
        """Ana sets an issue's Deal size (Jira's REST API), Eli a card's (Trello's Custom Fields power-up)."""
        refs = self._refs(member)
        if not refs:
            return
        ref = data.draw(st.sampled_from(refs))
        self.sandbox.clock.advance(1)
        if member == "sales":
            self.sandbox.trello.act_as(PEOPLE[member]).set_custom_field(ref, "Deal size", size)
            return
        jira = self.sandbox.jira
        credentials = jira.credentials()
        fields = requests.get(
            f"{jira.url}/rest/api/2/field", auth=(credentials["email"], credentials["token"]), timeout=10
        )
        field = next(f["id"] for f in fields.json() if f["name"] == "Deal size")
        requests.put(
            f"{jira.url}/rest/api/2/issue/{ref}",
            json={"fields": {field: size}},
            auth=(credentials["email"], credentials["token"]),
            headers={"X-Sandbox-Act-As": PEOPLE[member]},
            timeout=10,
        ).raise_for_status()


SETTINGS = settings(
    max_examples=12,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
People.TestCase.settings = SETTINGS
TestPeople = People.TestCase
PeopleKeepingLabels.TestCase.settings = settings(SETTINGS, max_examples=8)
TestPeopleKeepingLabels = PeopleKeepingLabels.TestCase
PeopleSizingDeals.TestCase.settings = settings(SETTINGS, max_examples=6)
TestPeopleSizingDeals = PeopleSizingDeals.TestCase
