"""The Jira connector on python-jira, against the Jira emulator (Cloud and Server): the contract plus Jira's quirks."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import ClassVar

import pytest

from connectors.base import Connector
from connectors.jira import JiraConnector
from connectors.pacing import RetryPolicy, TokenBucket
from syncd.errors import AuthFailed, ChangedMeanwhile, InvalidItem, NoTransition
from syncd.model import Person
from syncd.sandbox.core import FaultRule
from syncd.sandbox.jira import JiraEmulator
from syncd.sandbox.seed import SERVICE_ACCOUNT, Seed, load_seed, token_for
from tests.connectors.contract import LOST_ANSWERS, ConnectorContract, Human, drain, lost_answer
from tests.connectors.receiver import Receiver

FAST = RetryPolicy(attempts=4, max_total_s=20, initial_s=0.01, max_wait_s=2)
CLOUD = load_seed()
SERVER = CLOUD.model_copy(update={"jira": CLOUD.jira.model_copy(update={"deployment": "Server"})})


def _start(seed: Seed, **options: object) -> Iterator[JiraEmulator]:
    service = JiraEmulator(seed, **options)  # type: ignore[arg-type]
    service.start()
    yield service
    service.stop()


@pytest.fixture
def emulator() -> Iterator[JiraEmulator]:
    yield from _start(CLOUD)


def _connector(emulator: JiraEmulator, **options: object) -> JiraConnector:
    return JiraConnector(
        base_url=emulator.url,
        user=SERVICE_ACCOUNT,
        token=token_for("jira", SERVICE_ACCOUNT),
        project_key="ENG",
        policy=FAST,
        bucket=TokenBucket.per_window(100, 1),  # this test's emulator, this test's budget
        **{"search_settle_s": 0.5, **options},  # type: ignore[arg-type]
    )


# What a department's config says for its workflow: Done's screen requires a resolution.
DONE = {"Done": {"resolution": {"name": "Done"}}}


@pytest.fixture
def connector(emulator: JiraEmulator) -> JiraConnector:
    return _connector(emulator, transition_fields=DONE)


@pytest.fixture
def fresh_connector(emulator: JiraEmulator) -> JiraConnector:
    return _connector(emulator, transition_fields=DONE)


@pytest.fixture
def impatient_connector(emulator: JiraEmulator) -> JiraConnector:
    """A connector that gives up on an answer after half a second (a write may land after that)."""
    return _connector(emulator, transition_fields=DONE, timeout_s=0.5)


class JiraHuman:
    """Ana from Engineering, working in Jira."""

    def __init__(self, emulator: JiraEmulator) -> None:
        self.actor = emulator.act_as("ana@corp.example")

    def rename(self, ref: str, title: str) -> None:
        self.actor.update(ref, summary=title)

    def delete(self, ref: str) -> None:
        self.actor.delete(ref)

    def move(self, ref: str, status: str) -> None:
        self.actor.transition(ref, status)


@pytest.fixture
def human(emulator: JiraEmulator) -> JiraHuman:
    return JiraHuman(emulator)


@pytest.fixture
def statuses() -> tuple[str, str]:
    return ("To Do", "In Progress")


@pytest.fixture
def someone() -> Person:
    return Person("chen@corp.example")


class TestJiraContract(ConnectorContract):
    due_instants: ClassVar[bool] = False
    create_path: ClassVar[str] = r"^/rest/api/2/issue$"
    comment_path: ClassVar[str] = r"^/rest/api/2/issue/[^/]+/comment$"

    def test_an_empty_first_scan_keeps_its_time_and_the_feed_goes_on(
        self, connector: JiraConnector, emulator: JiraEmulator
    ) -> None:
        """A first scan that lists nothing (the index lags behind every issue) still gives a cursor Jira accepts."""
        emulator.search_lag_s = 60.0
        first = connector.changes(None)
        assert first.full_scan
        assert first.records == ()
        cursor = json.loads(json.dumps(first.cursor))
        assert int(cursor["since_ms"]) > 0
        emulator.search_lag_s = 0.0
        key = emulator.act_as("ana@corp.example").create("ENG", "Made after an empty scan")
        batch = connector.changes(cursor)
        assert not batch.full_scan
        assert key in {record.ref for record in batch.records}

    def test_a_deletion_is_reported(self, connector: Connector, human: Human) -> None:
        """Search cannot see deletions: the periodic full scan no longer lists the deleted issue."""
        created = connector.create({"title": "Contract: delete"}, marker="sync-delete-1")
        _, cursor = drain(connector, None)
        human.delete(created.ref)
        assert isinstance(connector, JiraConnector)
        connector.reconcile_every = timedelta(0)
        batch = connector.changes(cursor)
        assert batch.full_scan
        assert created.ref not in {record.ref for record in batch.records}
        assert connector.fetch([created.ref]) == []


class TestJiraWorkflow:
    def test_a_status_several_transitions_away_is_reached(self, connector: JiraConnector) -> None:
        """To Do -> Blocked takes Start work then Block; the connector finds and walks that path."""
        created = connector.create({"title": "Walk the workflow"}, marker="sync-walk-1")
        assert created.fields["status"] == "To Do"
        moved = connector.update(created.ref, {"status": "Blocked"})
        assert moved.fields["status"] == "Blocked"

    @pytest.mark.parametrize("fault", LOST_ANSWERS)
    def test_a_move_whose_transition_answer_is_lost_resumes_where_the_issue_is(
        self, connector: JiraConnector, emulator: JiraEmulator, fault: str
    ) -> None:
        """To Do -> Blocked with its first transition's answer lost: Blocked, each step made once, no error."""
        created = connector.create({"title": f"Lost transition {fault}"}, marker=f"sync-lost-move-{fault}")
        emulator.faults.add(lost_answer(fault, path=r"^/rest/api/2/issue/[^/]+/transitions$"))
        route = "POST /rest/api/<any('2', '3', 'latest'):version>/issue/<issue_id>/transitions"
        before = emulator.request_count(route)
        moved = connector.update(created.ref, {"status": "Blocked"})
        assert moved.fields["status"] == "Blocked"
        posts = emulator.request_count(route) - before
        assert posts == 2  # two steps, each applied once (a refused request is counted under its raw path)
        moves = [c for c in connector.history(created.ref) if c.field == "status" and c.by_self]
        assert len(moves) == 3  # creation, then each of the two transitions once

    def test_a_transition_requiring_a_field_says_what_to_configure(self, emulator: JiraEmulator) -> None:
        """Approve (to Done) needs a resolution: without configuration the error names the field and the fix."""
        connector = _connector(emulator)
        created = connector.create({"title": "Needs approval", "status": "In Review"}, marker="sync-approve-1")
        with pytest.raises(InvalidItem, match=r"resolution.*transition_fields"):
            connector.update(created.ref, {"status": "Done"})

    def test_configured_transition_fields_are_sent(self, connector: JiraConnector) -> None:
        """With transition_fields for Done, the issue reaches Done and counts as done."""
        created = connector.create({"title": "Approved", "status": "In Review"}, marker="sync-approve-2")
        done = connector.update(created.ref, {"status": "Done"})
        assert done.fields["status"] == "Done"
        assert done.fields["done"] is True

    def test_an_unknown_status_is_no_transition(self, connector: JiraConnector) -> None:
        """A status the workflow never reaches raises NoTransition naming both ends."""
        created = connector.create({"title": "Nowhere"}, marker="sync-nowhere-1")
        with pytest.raises(NoTransition) as raised:
            connector.update(created.ref, {"status": "Shipped to the moon"})
        assert raised.value.from_status == "To Do"

    def test_a_person_moving_the_issue_while_syncd_reads_it_teaches_no_wrong_transition(
        self, connector: JiraConnector, emulator: JiraEmulator
    ) -> None:
        """An issue's status and the transitions it offers are read together, so a move in between misleads nothing.

        Jira's transition list does not say which status it is for. Read apart from the status, with Ana reopening
        the issue (Done -> To Do) in between, Done would be learned with To Do's transitions, and no issue could
        ever be reopened again (the graph is shared by every thread). Her move is her edit: ChangedMeanwhile.
        """
        first = connector.create({"title": "Reopened meanwhile", "status": "Done"}, marker="sync-race-1")
        second = connector.create({"title": "Reopened later", "status": "Done"}, marker="sync-race-2")
        fresh = _connector(emulator, transition_fields=DONE)  # a workflow it has not learned yet
        emulator.faults.add(FaultRule(kind="delay", delay_ms=800, method="GET", path=r"/transitions$", times=1))
        ana = threading.Timer(0.3, emulator.act_as("ana@corp.example").transition, (first.ref, "To Do"))
        ana.start()
        try:
            with pytest.raises(ChangedMeanwhile):
                fresh.update(first.ref, {"status": "To Do"})
        finally:
            ana.join()
        assert fresh.fetch([first.ref])[0].fields["status"] == "To Do"
        assert fresh.update(second.ref, {"status": "To Do"}).fields["status"] == "To Do"

    def test_a_move_through_a_status_no_issue_is_in_reads_it_on_the_way(
        self, connector: JiraConnector, emulator: JiraEmulator
    ) -> None:
        """No issue sits In Review: a connector that never saw it still takes an issue from To Do to Done.

        Jira lists the transitions of an issue's own status only. With In Review empty, exploring through other
        issues learns To Do, In Progress and Blocked but never In Review, the one status that leads to Done; the
        move walks the issue there and reads them on the way (found by the long crash loop: a fresh daemon
        quarantined items it could not move to Done).
        """
        ana = emulator.act_as("ana@corp.example")
        for key in [k for k, issue in emulator.state.issues.items() if issue.status == "In Review"]:
            ana.transition(key, "In Progress")
        created = connector.create({"title": "Straight to done"}, marker="sync-detour-1")
        fresh = _connector(emulator, transition_fields=DONE)
        assert fresh.update(created.ref, {"status": "Done"}).fields["status"] == "Done"

    def test_describe_explores_the_transition_graph(self, connector: JiraConnector) -> None:
        """The schema holds every status and the one-step moves the workflow allows (read-only exploration)."""
        schema = connector.describe()
        assert set(schema.statuses) == {"To Do", "In Progress", "In Review", "Blocked", "Done"}
        assert "Done" in schema.transitions["In Review"]
        assert "Done" not in schema.transitions["To Do"]
        assert schema.requirements == {"Done": ("resolution",)}


class TestJiraFeed:
    def test_an_idle_poll_costs_one_request(self, connector: JiraConnector, emulator: JiraEmulator) -> None:
        """With nothing changed, a poll is one search request (the overlap window is filtered locally)."""
        _, cursor = drain(connector, None)
        emulator.reset_counters()
        assert connector.changes(cursor).records == ()
        assert emulator.request_count() == 1

    def test_changed_items_are_read_in_pages(self, connector: JiraConnector, emulator: JiraEmulator) -> None:
        """N changed issues cost ceil(N/100) search requests, never one per issue."""
        _, cursor = drain(connector, None)
        actor = emulator.act_as("dana@corp.example")
        keys = [actor.create("ENG", f"Bulk {n}") for n in range(150)]
        emulator.reset_counters()
        batch = connector.changes(cursor)
        assert set(keys) <= {record.ref for record in batch.records}
        assert emulator.request_count() <= math.ceil(150 / 100) + 2

    def test_an_issue_missing_from_an_eventually_consistent_page_is_not_lost(self, emulator: JiraEmulator) -> None:
        """A person's new issue invisible to the first search (index lag) is read on a later poll, by the overlap."""
        connector = _connector(emulator)
        _, cursor = drain(connector, None)
        emulator.search_lag_s = 30
        key = emulator.act_as("ana@corp.example").create("ENG", "Freshly created")
        missing = connector.changes(cursor)
        assert key not in {record.ref for record in missing.records}
        cursor = json.loads(json.dumps(missing.cursor))
        emulator.clock.advance(31)
        found = connector.changes(cursor)
        assert key in {record.ref for record in found.records}

    def test_the_connectors_own_write_is_visible_at_once(self, emulator: JiraEmulator) -> None:
        """Its own recent writes go in reconcileIssues, so search shows them despite the lag."""
        connector = _connector(emulator)
        _, cursor = drain(connector, None)
        emulator.search_lag_s = 30
        created = connector.create({"title": "Mine"}, marker="sync-mine-1")
        assert created.ref in {record.ref for record in connector.changes(cursor).records}


class TestJiraServer:
    @pytest.fixture
    def emulator(self) -> Iterator[JiraEmulator]:
        yield from _start(SERVER)

    def test_the_same_connector_works_on_server(self, connector: JiraConnector, emulator: JiraEmulator) -> None:
        """On Server the connector pages /search by startAt and names people by user name."""
        assert not connector.cloud
        created = connector.create(
            {"title": "On the server", "assignees": (Person("ben@corp.example"),)}, marker="sync-server-1"
        )
        assert created.fields["assignees"][0].account == "ben"
        _, cursor = drain(connector, None)
        emulator.act_as("ben@corp.example").update(created.ref, summary="Edited on the server")
        (changed,) = connector.changes(cursor).records
        assert changed.fields["title"] == "Edited on the server"
        routes = emulator.counters()["routes"]
        assert any(route.startswith("GET /rest/api/") and route.endswith("/search") for route in routes)
        assert not any(route.endswith("/search/jql") for route in routes)


class TestJiraWebhooks:
    def test_a_signed_delivery_is_accepted_once(self, emulator: JiraEmulator) -> None:
        """A delivery signed sha256=HMAC(body) names its issue; the same identifier again yields nothing."""
        connector = _connector(emulator, webhook_secret="hook-secret")
        body = json.dumps({"webhookEvent": "jira:issue_updated", "issue": {"key": "ENG-1"}}).encode()
        signature = "sha256=" + hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
        headers = {"X-Hub-Signature": signature, "X-Atlassian-Webhook-Identifier": "delivery-1"}
        assert connector.verify_webhook(headers, body) == ["ENG-1"]
        assert connector.verify_webhook(headers, body) == []
        with pytest.raises(AuthFailed):
            connector.verify_webhook({"X-Hub-Signature": "sha256=00"}, body)

    def test_registered_webhook_delivers_verifiable_hints(self, emulator: JiraEmulator) -> None:
        """ensure_webhook registers once (idempotent); a person's edit arrives signed and names the issue."""
        with Receiver() as receiver:
            connector = _connector(emulator, webhook_secret="hook-secret")
            first = connector.ensure_webhook(receiver.url)
            assert connector.ensure_webhook(receiver.url) == first
            emulator.act_as("ana@corp.example").update("ENG-2", summary="Edited while watched")
            (delivery,) = receiver.wait_for(1)
            assert connector.verify_webhook(delivery.headers, delivery.body) == ["ENG-2"]
