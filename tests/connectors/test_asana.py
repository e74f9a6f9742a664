"""The Asana connector on the asana v5 SDK, against the Asana emulator: the contract plus Asana's own quirks."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from collections.abc import Iterator, Mapping
from datetime import date, timedelta
from typing import Any, ClassVar

import pytest

from connectors.asana import AsanaConnector
from connectors.asana.errors import refused_field
from connectors.base import Connector
from connectors.pacing import RetryPolicy, TokenBucket
from sandbox.asana import AsanaEmulator
from sandbox.core import Emulator
from sandbox.seed import SERVICE_ACCOUNT, load_seed
from syncd.connector import AgreedSecret
from syncd.errors import AuthFailed, ChangedMeanwhile, InvalidItem, ItemNotFound
from syncd.model import Person, Placed, last_changes
from tests.connectors.contract import ConnectorContract, CustomCase, Human, drain
from tests.connectors.receiver import Receiver

FAST = RetryPolicy(attempts=4, max_total_s=20, initial_s=0.01, max_wait_s=2)
USER_ROUTE = "GET /api/1.0/users/<user_gid>"
TASK_ROUTE = "GET /api/1.0/tasks/<task_gid>"


@pytest.fixture
def emulator() -> Iterator[AsanaEmulator]:
    service = AsanaEmulator(load_seed())
    service.start()
    yield service
    service.stop()


def _project(emulator: AsanaEmulator) -> str:
    return next(iter(emulator.state.projects))


def _connector(emulator: AsanaEmulator, **options: object) -> AsanaConnector:
    return AsanaConnector(
        base_url=emulator.url,
        token=emulator.credentials()["token"],
        project_gid=_project(emulator),
        policy=FAST,
        bucket=TokenBucket.per_window(1500, 60),  # this test's emulator, this test's budget
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
def connector(emulator: AsanaEmulator) -> AsanaConnector:
    return _connector(emulator)


@pytest.fixture
def fresh_connector(emulator: AsanaEmulator) -> AsanaConnector:
    return _connector(emulator)


@pytest.fixture
def impatient_connector(emulator: AsanaEmulator) -> AsanaConnector:
    """A connector that gives up on an answer after half a second (a write may land after that)."""
    return _connector(emulator, timeout_s=0.5)


class AsanaHuman:
    """Gus from Marketing, working in Asana."""

    def __init__(self, emulator: AsanaEmulator) -> None:
        self.actor = emulator.act_as("gus@corp.example")
        self.email = "gus@corp.example"

    def rename(self, ref: str, title: str) -> None:
        self.actor.update_task(ref, name=title)

    def delete(self, ref: str) -> None:
        self.actor.delete(ref)

    def move(self, ref: str, status: str) -> None:
        self.actor.move(ref, status)

    def set_custom(self, ref: str, name: str, value: Any) -> None:
        self.actor.set_field(ref, name, value)


@pytest.fixture
def human(emulator: AsanaEmulator) -> AsanaHuman:
    return AsanaHuman(emulator)


@pytest.fixture
def statuses() -> tuple[str, str]:
    return ("Backlog", "In progress")


@pytest.fixture
def someone() -> Person:
    return Person("hana@corp.example")


class TestAsanaContract(ConnectorContract):
    create_path: ClassVar[str] = r"^/api/1\.0/tasks$"
    comment_path: ClassVar[str] = r"^/api/1\.0/tasks/[^/]+/stories$"
    marker_in_reads: ClassVar[bool] = False
    counts_unknown: ClassVar[bool] = True
    own_writes_in_feed: ClassVar[bool] = False
    custom_cases: ClassVar[tuple[CustomCase, ...]] = (
        ("Priority", "High", "High", "High"),
        ("Status", "At risk", "At risk", "At risk"),
        ("Channels", ("Email", "Web"), ("Email", "Web"), ["Web", "Email"]),
        ("Budget", 1250.5, 1250.5, 1250.5),
        ("Campaign code", "LAUNCH-Q2", "LAUNCH-Q2", "LAUNCH-Q2"),
        ("Launch date", date(2027, 3, 9), date(2027, 3, 9), "2027-03-09"),
        ("Reviewers", (Person("ana@corp.example"),), (Person("ana@corp.example"),), ["ana@corp.example"]),
    )
    custom_blank: ClassVar[dict[str, Any]] = {"Channels": (), "Reviewers": ()}

    @staticmethod
    def rich_text(text: str) -> str:
        return f"<body>{text}</body>"

    def test_history_tells_which_field_changed_when_and_by_whom(
        self, connector: Connector, human: Human, emulator: Emulator, statuses: tuple[str, str]
    ) -> None:
        """The contract's history test, but a section move leaves modified_at (spec: "moving to a new container").

        The contract expects the move's time to be the record's ``modified``, which Asana does not promise.
        """
        created = connector.create({"title": "Contract: history", "status": statuses[0]}, marker="sync-history-1")
        emulator.clock.advance(60)
        human.rename(created.ref, "Renamed an hour in")
        renamed = connector.fetch([created.ref])[0]
        emulator.clock.advance(3600)
        human.move(created.ref, statuses[1])
        moved = connector.fetch([created.ref])[0]
        history = connector.history(created.ref)
        times = last_changes(history)
        assert times["status"] - times["title"] >= timedelta(minutes=59)
        assert moved.modified == renamed.modified
        assert abs(times["title"] - moved.modified) < timedelta(seconds=5)
        people = {change.field for change in history if not change.by_self}
        assert {"title", "status"} <= people
        assert all(change.by_self for change in history if change.at <= created.modified)

    def test_history_credits_the_creator_with_what_nobody_changed_since(
        self, connector: AsanaConnector, emulator: AsanaEmulator
    ) -> None:
        """Gus creates a task with a due date, Hana renames it: the title is Hana's, the due date still Gus's."""
        gid = emulator.act_as("gus@corp.example").create_task("Gus's task", due_on="2027-03-01")
        emulator.clock.advance(60)
        emulator.act_as("hana@corp.example").update_task(gid, name="Hana's title")
        history = connector.history(gid)
        last = {change.field: change for change in sorted(history, key=lambda change: change.at)}
        assert (last["title"].person, last["due"].person) == ("hana@corp.example", "gus@corp.example")
        assert not any(change.by_self for change in history)


class TestAsanaFeed:
    def test_an_idle_poll_costs_one_request(self, connector: AsanaConnector, emulator: AsanaEmulator) -> None:
        """With nothing changed, a poll is exactly one events call."""
        _, cursor = drain(connector, None)
        emulator.reset_counters()
        batch = connector.changes(cursor)
        assert batch.records == ()
        assert emulator.request_count() == 1

    def test_changed_items_are_read_in_pages_not_one_by_one(
        self, connector: AsanaConnector, emulator: AsanaEmulator
    ) -> None:
        """N tasks changed cost at most ceil(N/100) + 2 requests (events, listing pages), never N."""
        _, cursor = drain(connector, None)
        actor = emulator.act_as("gus@corp.example")
        created = [actor.create_task(f"Bulk {n}", section="Backlog") for n in range(130)]
        emulator.reset_counters()
        batches, _ = drain(connector, cursor)
        assert set(created) <= {record.ref for batch in batches for record in batch.records}
        events_calls = emulator.request_count("GET /api/1.0/events")
        listing_calls = emulator.request_count() - events_calls
        assert listing_calls <= math.ceil(130 / 100) + 2
        assert emulator.request_count() <= math.ceil(130 / 100) + 2 + events_calls

    def test_an_expired_sync_token_triggers_a_full_scan(
        self, connector: AsanaConnector, emulator: AsanaEmulator
    ) -> None:
        """After 25 hours the token is gone (412): the next poll lists the whole project, losing nothing."""
        _, cursor = drain(connector, None)
        emulator.clock.advance(25 * 3600)
        batch = connector.changes(cursor)
        assert batch.full_scan
        assert len(batch.records) >= 10

    def test_reconciles_periodically_even_without_412(self, emulator: AsanaEmulator) -> None:
        """Events are at most once, so a full scan runs every reconcile interval regardless."""
        connector = _connector(emulator, reconcile_every=timedelta(seconds=0))
        _, cursor = drain(connector, None)
        assert connector.changes(cursor).full_scan


class TestAsanaFaults:
    def test_a_refused_token_is_fatal_and_names_no_secret(self, emulator: AsanaEmulator) -> None:
        """A bad token raises AuthFailed at once; the message says what to fix and does not quote the token."""
        connector = AsanaConnector(
            base_url=emulator.url, token="not-a-token", project_gid=_project(emulator), policy=FAST
        )
        with pytest.raises(AuthFailed) as raised:
            connector.fetch(["1"])
        assert "not-a-token" not in str(raised.value)
        assert "personal access token" in str(raised.value)

    def test_a_missing_task_is_skippable(self, connector: AsanaConnector) -> None:
        """Fetching a task that does not exist leaves it out; reading it directly is ItemNotFound."""
        assert connector.fetch(["1111111111111111"]) == []
        with pytest.raises(ItemNotFound):
            connector.update("1111111111111111", {"title": "x"})


class TestAsanaWebhooks:
    def test_a_signed_delivery_names_its_tasks(self, emulator: AsanaEmulator) -> None:
        """A delivery signed with the handshake secret yields the task gids; a forged one is refused."""
        connector = _connector(emulator, webhook_secret="s3cret")
        body = json.dumps(
            {"events": [{"resource": {"gid": "42", "resource_type": "task"}, "action": "changed"}]}
        ).encode()
        signature = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert connector.verify_webhook({"X-Hook-Signature": signature}, body) == ["42"]
        assert connector.verify_webhook({"X-Hook-Signature": signature}, body) == []  # redelivered: seen
        with pytest.raises(AuthFailed):
            connector.verify_webhook({"X-Hook-Signature": "0" * 64}, body)

    def test_registered_webhook_handshakes_and_delivers_verifiable_hints(self, emulator: AsanaEmulator) -> None:
        """The handshake secret is kept; registering again is a no-op; a person's edit arrives signed."""
        connector = _connector(emulator)
        with Receiver(handshake=connector.accept_handshake) as receiver:
            first = connector.ensure_webhook(receiver.url)
            assert connector.webhook_secret
            assert connector.ensure_webhook(receiver.url) == first
            task = next(iter(emulator.state.tasks))
            emulator.act_as("gus@corp.example").update_task(task, name="Edited while watched")
            deliveries = receiver.wait_for(1)
            refs = [ref for d in deliveries for ref in connector.verify_webhook(d.headers, d.body)]
            assert task in refs

    def test_the_secret_is_known_when_another_process_answered_the_handshake(self, emulator: AsanaEmulator) -> None:
        """Behind a load balancer the handshake may reach another replica: the create's answer gives the secret,
        and a connector given that secret later (a restart, another replica) keeps the webhook and verifies."""
        answered: list[str] = []

        def elsewhere(headers: Mapping[str, str]) -> dict[str, str]:
            answered.append(headers["X-Hook-Secret"])
            return {"X-Hook-Secret": headers["X-Hook-Secret"]}

        connector = _connector(emulator)
        with Receiver(handshake=elsewhere) as receiver:
            hook = connector.ensure_webhook(receiver.url)
            assert connector.agreed_secret() == AgreedSecret(hook, answered[0])
            assert answered[0] not in repr(connector.agreed_secret())
            later = _connector(emulator)
            later.use_agreed_secret(AgreedSecret(hook, answered[0]))
            assert later.ensure_webhook(receiver.url) == hook
            assert len(answered) == 1  # kept: no second handshake
            task = next(iter(emulator.state.tasks))
            emulator.act_as("gus@corp.example").update_task(task, name="Edited while watched")
            refs = [ref for d in receiver.wait_for(1) for ref in later.verify_webhook(d.headers, d.body)]
            assert task in refs
            stale = _connector(emulator)
            stale.use_agreed_secret(AgreedSecret("1", "not-the-secret"))
            assert stale.ensure_webhook(receiver.url) != hook  # another webhook's secret: replaced
            assert len(answered) == 2

    def test_syncds_own_write_hints_at_nothing_once_it_knows_its_account(self, emulator: AsanaEmulator) -> None:
        """Events syncd's account caused (its writes coming back) start no pass; a person's edit still does."""
        connector = _connector(emulator)
        with Receiver(handshake=connector.accept_handshake) as receiver:
            connector.ensure_webhook(receiver.url)
            task = next(iter(emulator.state.tasks))
            connector.identify()
            seen = len(receiver.deliveries)
            connector.update(task, {"title": "Written by syncd"})
            emulator.act_as("gus@corp.example").update_task(task, name="Edited by Gus")
            # Asana batches events: read every delivery until Gus's edit is named (each is verified once).
            hinted: list[str] = []
            deadline = time.monotonic() + 10
            gus = _gid(emulator, "gus@corp.example")
            while gus not in str([d.body for d in receiver.deliveries[seen:]]) and time.monotonic() < deadline:
                time.sleep(0.02)
            for delivery in receiver.wait_for(seen + 1)[seen:]:
                events = json.loads(delivery.body)["events"]
                refs = connector.verify_webhook(delivery.headers, delivery.body)
                people = {str((event.get("user") or {}).get("gid")) for event in events}
                if people == {connector.identify()}:
                    assert refs == [], events  # syncd's own write alone: nothing to read
                hinted += refs
            assert task in hinted  # Gus's edit


def _gid(emulator: AsanaEmulator, email: str) -> str:
    return emulator.state.users_by_email[email].gid


class TestAsanaPeople:
    def test_a_hidden_assignee_email_comes_from_people(self, emulator: AsanaEmulator) -> None:
        """Gus hides his e-mail: the directory (e-mail -> gid) names him, on tasks and comments, with no lookup."""
        emulator.hidden_emails.add("gus@corp.example")
        gus = _gid(emulator, "gus@corp.example")
        connector = _connector(emulator, people={"Gus@corp.example": gus})
        task = next(t.gid for t in emulator.state.tasks.values() if t.name == "Launch blog post")
        emulator.act_as("gus@corp.example").comment(task, "Draft is up")
        connector.changes(None)  # a connector at work already knows its own account (GET /users/me, once)
        emulator.reset_counters()
        (record,) = connector.fetch([task])
        assert record.fields["assignees"] == (Person("gus@corp.example"),)
        assert record.fields["assignees"][0].account == gus
        assert [comment.author.email for comment in connector.comments(task)] == ["gus@corp.example"]
        assert emulator.request_count(USER_ROUTE) == 0

    def test_without_people_a_hidden_email_is_looked_up_once(self, emulator: AsanaEmulator) -> None:
        """Four of Gus's tasks cost one GET /users/{gid}; still hidden there, he has no e-mail (never guessed)."""
        emulator.hidden_emails.add("gus@corp.example")
        connector = _connector(emulator)
        emulator.reset_counters()
        batch = connector.changes(None)
        assert batch.full_scan
        gus = [
            p for r in batch.records for p in r.fields["assignees"] if p.account == _gid(emulator, "gus@corp.example")
        ]
        assert len(gus) == 4
        assert {person.email for person in gus} == {None}
        assert emulator.request_count(USER_ROUTE) == 2  # Gus once, and syncd's own account (/users/me) once
        assert {p.email for r in batch.records for p in r.fields["assignees"]} == {None, "hana@corp.example"}

    def test_an_assignee_given_by_email_is_written_by_the_directory_gid(self, emulator: AsanaEmulator) -> None:
        """Hana hides her e-mail, so Asana refuses it as a reference: the directory's gid is written instead."""
        emulator.hidden_emails.add("hana@corp.example")
        hana = _gid(emulator, "hana@corp.example")
        connector = _connector(emulator, people={"hana@corp.example": hana})
        created = connector.create({"title": "Assigned by e-mail", "assignees": (Person("hana@corp.example"),)}, "m-1")
        assert emulator.state.tasks[created.ref].assignee is emulator.state.users[hana]
        assert created.fields["assignees"] == (Person("hana@corp.example"),)
        updated = connector.update(created.ref, {"assignees": ()})
        assert updated.fields["assignees"] == ()
        updated = connector.update(created.ref, {"assignees": (Person("hana@corp.example"),)})
        assert updated.fields["assignees"] == (Person("hana@corp.example"),)

    def test_an_unknown_email_is_refused_with_the_fix(self, emulator: AsanaEmulator, connector: AsanaConnector) -> None:
        """Not in the directory and hidden: Asana's 400 becomes InvalidItem telling what to add, like Jira's."""
        emulator.hidden_emails.add("hana@corp.example")
        task = next(iter(emulator.state.tasks))
        with pytest.raises(InvalidItem) as refused:
            connector.update(task, {"assignees": (Person("hana@corp.example"),)})
        assert "hana@corp.example is not known to Asana" in str(refused.value)
        assert "add 'e-mail: user gid' to the department's people" in str(refused.value)
        assert refused.value.field == "assignees"
        with pytest.raises(InvalidItem, match="department's people"):
            connector.create({"title": "Nobody", "assignees": (Person("nobody@corp.example"),)}, "m-2")

    def test_a_people_field_given_by_email_is_written_by_the_directory_gid(self, emulator: AsanaEmulator) -> None:
        """Hana hides her e-mail: a people custom field names her by the directory's gid, as an assignee does."""
        emulator.hidden_emails.add("hana@corp.example")
        hana = emulator.state.users_by_email["hana@corp.example"]
        connector = _connector(emulator, people={"hana@corp.example": hana.gid})
        placed = Placed((Person("hana@corp.example"),), custom="Reviewers")
        created = connector.create({"title": "Reviewed by e-mail", "c:Reviewers": placed}, "m-3")
        reviewers = emulator.state.find_custom_field("Reviewers")
        assert reviewers is not None
        assert emulator.state.tasks[created.ref].custom_values[reviewers.gid] == [hana]
        assert created.fields["custom"]["Reviewers"] == (Person("hana@corp.example"),)

    def test_an_unknown_email_in_a_people_field_is_refused_with_the_fix(self, connector: AsanaConnector) -> None:
        """Asana's 400 for a people value it does not know names the write field and tells what to add."""
        placed = Placed((Person("nobody@corp.example"),), custom="Reviewers")
        with pytest.raises(InvalidItem) as refused:
            connector.create({"title": "Nobody reviews", "c:Reviewers": placed}, "m-4")
        assert refused.value.field == "c:Reviewers"
        assert "nobody@corp.example is not known to Asana" in str(refused.value)
        assert "add 'e-mail: user gid' to the department's people" in str(refused.value)


class TestAsanaSectionMoves:
    def test_a_persons_move_comes_back_though_its_version_did_not_move(
        self, connector: AsanaConnector, emulator: AsanaEmulator, human: AsanaHuman
    ) -> None:
        """modified_since misses a moved task (modified_at stays): the event names it and it is read on its own.

        Its modified time stays; its version names the section too, so a version check before a write sees the move.
        """
        created = connector.create({"title": "Moved quietly", "status": "Backlog"}, marker="sync-quiet-1")
        (before,) = connector.fetch([created.ref])
        _, cursor = drain(connector, None)
        emulator.clock.advance(600)
        human.move(created.ref, "In progress")
        emulator.reset_counters()
        changed = {record.ref: record for record in connector.changes(cursor).records}
        assert changed[created.ref].fields["status"] == "In progress"
        assert changed[created.ref].modified == before.modified
        assert changed[created.ref].version != before.version
        assert emulator.request_count(TASK_ROUTE) == 1  # not in the listing: read on its own
        with pytest.raises(ChangedMeanwhile):
            connector.update(created.ref, {"status": "Shipped"}, expected_version=before.version)


class TestAsanaLostCreate:
    """A create whose task landed before its marker: what recovery's look adopts, and what it leaves alone."""

    def test_a_lost_create_a_person_renamed_is_adopted_by_its_first_name(
        self, emulator: AsanaEmulator, connector: AsanaConnector, human: AsanaHuman
    ) -> None:
        """People edit what they see: the task is renamed before recovery looks, and still found, not made again."""
        sent = emulator.clock.now()
        orphan = emulator.act_as(SERVICE_ACCOUNT).create_task("Spring launch brief", section="Backlog")
        emulator.clock.advance(5)
        human.rename(orphan, "Spring launch brief (final)")
        found = connector.find_by_marker("sync-lost-1", sent, {"title": "Spring launch brief"})
        assert found is not None
        assert (found.ref, found.fields["title"]) == (orphan, "Spring launch brief (final)")
        marked = [a for a in emulator.state.attachments.values() if a.parent.gid == orphan]
        assert [a.url.rsplit("/", 1)[-1] for a in marked] == ["sync-lost-1"]
        again = connector.find_by_marker("sync-lost-1", sent, {"title": "Spring launch brief"})
        assert again is not None
        assert again.ref == orphan

    def test_another_items_lost_create_is_left_alone(
        self, emulator: AsanaEmulator, connector: AsanaConnector, human: AsanaHuman
    ) -> None:
        """A task of syncd's without a marker created under another name is another item's: never adopted."""
        sent = emulator.clock.now()
        other = emulator.act_as(SERVICE_ACCOUNT).create_task("Pricing page copy", section="Backlog")
        human.rename(other, "Spring launch brief")
        assert connector.find_by_marker("sync-lost-2", sent, {"title": "Spring launch brief"}) is None
        assert not [a for a in emulator.state.attachments.values() if a.parent.gid == other]

    def test_a_marked_task_a_person_renamed_is_found(
        self, emulator: AsanaEmulator, connector: AsanaConnector, human: AsanaHuman
    ) -> None:
        """The marker, not the name, identifies a task once it carries one."""
        sent = emulator.clock.now()
        created = connector.create({"title": "Webinar deck", "status": "Backlog"}, marker="sync-lost-3")
        human.rename(created.ref, "Webinar deck v2")
        found = connector.find_by_marker("sync-lost-3", sent, {"title": "Webinar deck"})
        assert found is not None
        assert found.ref == created.ref


class TestAsanaRefusals:
    def test_a_refused_update_names_the_field(self, emulator: AsanaEmulator, connector: AsanaConnector) -> None:
        """Asana's 400 names the property; InvalidItem.field is the record field (invalid HTML, due before start)."""
        task = next(t.gid for t in emulator.state.tasks.values() if t.name == "Launch blog post")
        with pytest.raises(InvalidItem) as html:
            connector.update(task, {"description": "<body><script>x</script></body>"})
        assert (html.value.field, html.value.ref) == ("description", task)
        emulator.act_as("gus@corp.example").update_task(task, due_on="2027-03-01", start_on="2027-02-01")
        with pytest.raises(InvalidItem) as due:
            connector.update(task, {"due": date(2027, 1, 15)})
        assert due.value.field == "due"
        assert "start_on" in due.value.message
        with pytest.raises(InvalidItem) as status:
            connector.update(task, {"status": "Nowhere"})
        assert status.value.field == "status"

    def test_the_feed_leaves_out_what_syncd_did(self, emulator: AsanaEmulator, connector: AsanaConnector) -> None:
        """syncd's create, its marker and its update come back as events by syncd's account: not news, not read
        (a new task's version, taken before its marker moved ``modified_at``, would plan it again). A person's
        edit of the same task is read.
        """
        cursor = connector.changes(None).cursor
        made = connector.create({"title": "Made by syncd", "status": "Backlog"}, "sync-own-1")
        connector.update(made.ref, {"title": "Renamed by syncd"})
        quiet = connector.changes(cursor)
        assert made.ref not in {record.ref for record in quiet.records}
        emulator.act_as("gus@corp.example").update_task(made.ref, name="Renamed by Gus")
        (record,) = [r for r in connector.changes(quiet.cursor).records if r.ref == made.ref]
        assert record.fields["title"] == "Renamed by Gus"

    def test_a_refused_create_names_the_field(self, emulator: AsanaEmulator, connector: AsanaConnector) -> None:
        """A create refused for one value names it, and nothing is created."""
        tasks = len(emulator.state.tasks)
        with pytest.raises(InvalidItem) as html:
            connector.create({"title": "Bad notes", "description": "<body><b>x</b></body>"}, "sync-bad-1")
        assert html.value.field == "description"
        with pytest.raises(InvalidItem) as person:
            connector.create({"title": "Nobody's", "assignees": (Person("nobody@corp.example"),)}, "sync-bad-2")
        assert person.value.field == "assignees"
        assert len(emulator.state.tasks) == tasks


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ("name: Missing input", "title"),
        ("1208000000000042: html_notes: XML is invalid: Unsupported tag <script>", "description"),
        ("due_on: Invalid date value, expected YYYY-MM-DD: 20270201", "due"),
        ("start_on: The start date must be on or before the due date", "due"),
        ("You may only provide one of due_on or due_at.", "due"),
        ("assignee: Not a recognized ID or e-mail: x@corp.example", "assignees"),
        ("memberships.section: Section is not in the given project", "status"),
        ("tags: Unknown object: 12", "labels"),
        ("completed: Invalid value", "done"),
        ("external.gid: Must be at most 1024 characters", None),
        ("Must specify exactly one of project, tag, section, user task list, or assignee + workspace", None),
        ("name: too long; due_on: Invalid date value", None),
        ("no error message in the answer", None),
    ],
)
def test_refused_field_maps_asanas_message_to_the_record_field(message: str, field: str | None) -> None:
    """The property a message starts with (after an optional ref), or snake_case names inside it; one or none."""
    assert refused_field(message) == field
