"""The Jira connector on python-jira, against the Jira emulator (Cloud and Server): the contract plus Jira's quirks."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from jira import JIRAError

from connectors.base import Connector
from connectors.factory import CAPABILITIES
from connectors.jira import JiraConnector
from connectors.jira.connector import KEYS_PAGE_CLOUD, KEYS_PAGE_SERVER
from connectors.jira.errors import translate
from connectors.pacing import RetryPolicy, TokenBucket
from sandbox.core import FaultRule
from sandbox.jira import JiraEmulator
from sandbox.jira.jqleval import key_order
from sandbox.seed import SERVICE_ACCOUNT, JiraIssue, Seed, load_seed, token_for
from syncd.errors import AuthFailed, ChangedMeanwhile, InvalidItem, NoTransition
from syncd.mapping import UNTITLED, Group, compile_group
from syncd.model import Cursor, Person, Placed, Record, custom_change
from tests.connectors.contract import LOST_ANSWERS, ConnectorContract, CustomCase, Human, drain, lost_answer
from tests.connectors.receiver import Receiver

FAST = RetryPolicy(attempts=4, max_total_s=20, initial_s=0.01, max_wait_s=2)
CLOUD = load_seed()
SERVER = CLOUD.model_copy(update={"jira": CLOUD.jira.model_copy(update={"deployment": "Server"})})
MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


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
        self.email = "ana@corp.example"
        self.emulator = emulator

    def rename(self, ref: str, title: str) -> None:
        self.actor.update(ref, summary=title)

    def delete(self, ref: str) -> None:
        self.actor.delete(ref)

    def move(self, ref: str, status: str) -> None:
        self.actor.transition(ref, status)

    def set_custom(self, ref: str, name: str, value: Any) -> None:
        """Edit the field in Jira's REST API as Ana (the act-as actor sets system fields only)."""
        found = self.api("GET", "field").json()
        field = "priority" if name == "priority" else next(f["id"] for f in found if f["name"] == name)
        if isinstance(value, str) and "@" in value:  # a person, picked by e-mail
            (user,) = self.api("GET", "user/search", params={"query": value}).json()
            value = {"accountId": user["accountId"]}
        self.api("PUT", f"issue/{ref}", json={"fields": {field: value}}).raise_for_status()

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        credentials = self.emulator.credentials()
        return requests.request(
            method,
            f"{self.emulator.url}/rest/api/2/{path}",
            auth=(credentials["email"], credentials["token"]),
            headers={"X-Sandbox-Act-As": "ana@corp.example"},
            timeout=10,
            **kwargs,
        )


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
    custom_cases: ClassVar[tuple[CustomCase, ...]] = (
        ("Segment", "SMB", "SMB", {"value": "SMB"}),
        ("Regions", ("APAC", "EMEA"), ("APAC", "EMEA"), [{"value": "EMEA"}, {"value": "APAC"}]),
        ("Customer", "Globex", "Globex", "Globex"),
        ("Deal size", 12500.5, 12500.5, 12500.5),
        ("Launch date", date(2027, 3, 9), date(2027, 3, 9), "2027-03-09"),
        ("Account manager", Person("eli@corp.example"), Person("eli@corp.example"), "eli@corp.example"),
        ("Themes", ("growth", "pricing"), ("growth", "pricing"), ["pricing", "growth"]),
    )
    custom_blank: ClassVar[dict[str, Any]] = {"Regions": (), "Themes": ()}

    def test_priority_read_write_clear_and_feed(self, connector: JiraConnector, human: JiraHuman) -> None:
        """Jira's own priority field: written by name, read back, cleared, and a person's change in the feed."""
        created = connector.create(
            {"title": "Contract: priority", "priority": Placed("High", field="priority")}, marker="sync-prio-1"
        )
        assert created.fields["priority"] == "High"
        updated = connector.update(created.ref, {"priority": Placed("Lowest", field="priority")})
        assert updated.fields["priority"] == "Lowest"
        _, cursor = drain(connector, None)
        human.set_custom(created.ref, "priority", {"name": "Highest"})
        changed = {record.ref: record for record in connector.changes(cursor).records}
        assert changed[created.ref].fields["priority"] == "Highest"

    def test_an_unknown_option_is_refused_naming_the_field(self, connector: JiraConnector) -> None:
        """An option Jira lacks is a refusal of that one write field, so the engine leaves it out and goes on."""
        created = connector.create({"title": "Contract: bad option"}, marker="sync-bad-option-1")
        with pytest.raises(InvalidItem) as refused:
            connector.update(created.ref, {"segment": Placed("Galactic", custom="Segment")})
        assert refused.value.field == "segment"

    def test_a_create_held_up_by_a_gateway_then_its_answer_lost_is_found(
        self, emulator: JiraEmulator, connector: JiraConnector
    ) -> None:
        """Held 2 s before Jira made it, then a 502: the look waits for search from the loss, not from the send.

        Found by the long fault run (four issues made twice): measured from the send, the settle time had passed
        while the gateway held the request, so the search ran before Jira's index listed the issue.
        """
        emulator.search_lag_s = 0.3
        path = r"^/rest/api/2/issue$"
        emulator.faults.add(FaultRule(kind="delay", delay_ms=2000, method="POST", path=path, times=1))
        emulator.faults.add(FaultRule(kind="status_after", status=502, method="POST", path=path, times=1))
        record = connector.create({"title": "Held up, then lost"}, marker="sync-held-1")
        made = [key for key, issue in emulator.state.issues.items() if issue.summary == "Held up, then lost"]
        assert made == [record.ref]

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


class TestJiraDelete:
    def test_an_issue_with_subtasks_is_refused_not_deleted_with_them(
        self, connector: JiraConnector, emulator: JiraEmulator
    ) -> None:
        """Jira's 400 (no deleteSubtasks) becomes InvalidItem with what to do; both issues stay until it is done."""
        created = connector.create({"title": "Parent of a subtask"}, marker="sync-parent-1")
        ana = emulator.act_as("ana@corp.example")
        child = ana.create_subtask(created.ref, "Its part")
        with pytest.raises(InvalidItem) as refused:
            connector.delete(created.ref)
        assert str(refused.value).startswith(
            f"jira: {created.ref} has subtasks, which syncd does not delete (they are not mirrored, so their "
            "deletion could not be audited): delete or move them in Jira"
        )
        assert refused.value.ref == created.ref
        assert {created.ref, child} <= set(emulator.state.issues)
        ana.delete(child)
        connector.delete(created.ref)
        assert created.ref not in emulator.state.issues


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


def _with_issues(seed: Seed, count: int) -> Seed:
    """The seed with ``count`` more issues in ENG: a project too large for one page of keys."""
    project = seed.jira.projects[0]
    issues = [*project.issues, *(JiraIssue(summary=f"Filler {n}") for n in range(count))]
    projects = [project.model_copy(update={"issues": issues}), *seed.jira.projects[1:]]
    return seed.model_copy(update={"jira": seed.jira.model_copy(update={"projects": projects})})


def _project_keys(emulator: JiraEmulator) -> frozenset[str]:
    return frozenset(key for key, issue in emulator.state.issues.items() if issue.project == "ENG")


def _due(connector: JiraConnector, cursor: Cursor) -> Cursor:
    """The cursor as stored, its last key listing one ``deletion_check`` earlier: time moved on, no one waited."""
    aged = json.loads(json.dumps(cursor))
    aged["checked_at"] = (datetime.fromisoformat(aged["checked_at"]) - connector.deletion_check).isoformat()
    return dict(aged)


@pytest.fixture(params=["cloud", "server"])
def large(request: pytest.FixtureRequest) -> Iterator[tuple[JiraEmulator, int]]:
    """An emulator whose ENG project needs two pages of keys, and that page size (Cloud 5,000, Server 1,000)."""
    seed, page = {"cloud": (CLOUD, KEYS_PAGE_CLOUD), "server": (SERVER, KEYS_PAGE_SERVER)}[request.param]
    for service in _start(_with_issues(seed, page + 50)):
        yield service, page


@pytest.fixture
def large_server() -> Iterator[JiraEmulator]:
    """A Server emulator whose ENG project needs two pages of keys."""
    yield from _start(_with_issues(SERVER, KEYS_PAGE_SERVER + 50))


class TestJiraDeletionCheck:
    def test_the_check_runs_only_when_due(self, connector: JiraConnector, emulator: JiraEmulator) -> None:
        """Until deletion_check has passed since the last listing a poll is the feed alone; then one page more.

        The full scan lists every key too, so the first check falls due one interval after it; the check is not a
        full scan (``scanned_at`` stays), and the next poll is the feed alone again.
        """
        assert connector.deletion_check == timedelta(minutes=5)
        _, cursor = drain(connector, None)
        emulator.reset_counters()
        idle = connector.changes(cursor)
        assert idle.present is None
        assert emulator.request_count() == 1
        emulator.reset_counters()
        checked = connector.changes(_due(connector, idle.cursor))
        assert not checked.full_scan
        assert checked.present == _project_keys(emulator)
        assert emulator.request_count() == 2  # the feed and one page of keys
        assert checked.cursor["scanned_at"] == cursor["scanned_at"]
        assert datetime.fromisoformat(checked.cursor["checked_at"]) > datetime.fromisoformat(cursor["checked_at"])
        emulator.reset_counters()
        assert connector.changes(json.loads(json.dumps(checked.cursor))).present is None
        assert emulator.request_count() == 1

    def test_the_check_asks_for_keys_alone_in_the_largest_pages(self, connector: JiraConnector) -> None:
        """The listing asks for the key and nothing else, 5,000 a page: Cloud's largest, kept for id or key only.

        Read from the requests python-jira's session sends (observed, not altered): the SDK's own search would
        have renamed ``key`` to ``issuekey``.
        """
        _, cursor = drain(connector, None)
        sent: list[dict[str, list[str]]] = []

        def record(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            if urlsplit(response.url).path.endswith("/search/jql"):
                sent.append(parse_qs(urlsplit(response.url).query))

        connector._client()._session.hooks["response"].append(record)
        connector.changes(_due(connector, cursor))
        listing = [params for params in sent if params.get("fields") == ["key"]]
        assert len(listing) == 1
        assert listing[0]["maxResults"] == [str(KEYS_PAGE_CLOUD)]
        assert "properties" not in listing[0]
        assert "expand" not in listing[0]

    def test_a_deleted_issue_is_missing_from_the_listing(
        self, connector: JiraConnector, emulator: JiraEmulator, human: JiraHuman
    ) -> None:
        """Ana deletes an issue: the feed says nothing, the check lists every key but that one."""
        created = connector.create({"title": "Short-lived"}, marker="sync-check-1")
        _, cursor = drain(connector, None)
        human.delete(created.ref)
        batch = connector.changes(_due(connector, cursor))
        assert created.ref not in {record.ref for record in batch.records}
        assert batch.present is not None
        assert created.ref not in batch.present
        assert batch.present == _project_keys(emulator)

    def test_every_key_is_listed_past_one_page(self, large: tuple[JiraEmulator, int]) -> None:
        """A project larger than a page is listed whole, ceil(N / page) requests (Cloud by token, Server startAt)."""
        emulator, page = large
        connector = _connector(emulator)
        _, cursor = drain(connector, None)
        keys = _project_keys(emulator)
        assert len(keys) > page
        emulator.reset_counters()
        connector.changes(cursor)
        feed = emulator.request_count()  # every seeded issue has the same time: the overlap re-reads them all
        emulator.reset_counters()
        batch = connector.changes(_due(connector, cursor))
        assert batch.present == keys
        assert emulator.request_count() - feed == math.ceil(len(keys) / page)

    def test_the_connectors_own_create_is_listed_despite_the_search_lag(
        self, connector: JiraConnector, emulator: JiraEmulator
    ) -> None:
        """A mirror syncd just created is linked at once: the listing reconciles it, or it would look deleted."""
        _, cursor = drain(connector, None)
        emulator.search_lag_s = 30
        created = connector.create({"title": "Mirrored just now"}, marker="sync-check-2")
        batch = connector.changes(_due(connector, cursor))
        assert batch.present is not None
        assert created.ref in batch.present

    def test_an_empty_projects_check_keeps_the_cursor(self, connector: JiraConnector, emulator: JiraEmulator) -> None:
        """Every issue deleted: the listing is empty, the cursor keeps its place, and the feed goes on from it."""
        _, cursor = drain(connector, None)
        ana = emulator.act_as("ana@corp.example")
        for key in _project_keys(emulator):
            ana.delete(key)
        batch = connector.changes(_due(connector, cursor))
        assert batch.present == frozenset()
        stored = json.loads(json.dumps(batch.cursor))
        assert stored["since_ms"] == cursor["since_ms"] > 0
        assert stored["scanned_at"] == cursor["scanned_at"]
        key = ana.create("ENG", "Made after the empty check")
        after = connector.changes(stored)
        assert not after.full_scan
        assert key in {record.ref for record in after.records}

    def test_an_issue_deleted_while_the_keys_are_listed_hides_no_other(self, large_server: JiraEmulator) -> None:
        """Ana deletes an issue of the first page while the second is on its way: every remaining key is listed.

        Paged by position (Server's startAt), her deletion slides the second page's first key into the first page,
        already read; the keys between the two pages count as present, so that issue is not taken for deleted.
        """
        emulator = large_server
        connector = _connector(emulator)
        _, cursor = drain(connector, None)
        first = min(_project_keys(emulator), key=key_order)
        emulator.reset_counters()
        connector.changes(cursor)
        feed = emulator.request_count()  # the overlap re-reads the seeded issues, all of the same time
        # The feed's pages and the first page of keys pass; the second page waits while Ana deletes.
        late = FaultRule(kind="delay", delay_ms=1000, method="GET", path=r"/search$", after=feed + 1, times=1)
        emulator.faults.add(late)
        served: list[int] = []

        def searches() -> int:
            return sum(n for route, n in emulator.counters()["routes"].items() if route.endswith("/search"))

        def delete_after_the_first_page() -> None:
            deadline = time.monotonic() + 10
            while searches() < feed + 1 and time.monotonic() < deadline:
                time.sleep(0.002)
            emulator.act_as("ana@corp.example").delete(first)
            served.append(searches())

        emulator.reset_counters()
        ana = threading.Thread(target=delete_after_the_first_page)
        ana.start()
        batch = connector.changes(_due(connector, cursor))
        ana.join()
        assert served == [feed + 1]  # deleted after the first page of keys, before the second
        assert batch.present is not None
        assert _project_keys(emulator) <= batch.present


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


class TestJiraHistoryInSearch:
    """A search asks for each issue's changelog: whole, it names who changed what without a read per issue."""

    def test_a_listed_record_carries_the_history_a_read_would_give(
        self, connector: JiraConnector, emulator: JiraEmulator
    ) -> None:
        created = connector.create({"title": "Listed with its history"}, marker="sync-listed-history")
        connector.fetch([created.ref])  # what a connector reads once (its account, the site's fields) is read
        emulator.act_as("ben@corp.example").update(created.ref, summary="Ben's title")
        emulator.act_as("ana@corp.example").transition(created.ref, "In Progress")
        before = emulator.request_count()
        (record,) = connector.fetch([created.ref])
        assert emulator.request_count() - before == 1  # the search alone
        assert record.history is not None
        carried = record.history.expanded()
        assert sorted(carried, key=repr) == sorted(connector.history(created.ref), key=repr)
        last = {change.field: change.person for change in sorted(carried, key=lambda c: c.at)}
        assert (last["title"], last["status"]) == ("ben@corp.example", "ana@corp.example")
        assert record.comments == 0

    def test_a_listed_record_carries_custom_field_changes_and_their_creation(
        self, connector: JiraConnector, human: JiraHuman, emulator: JiraEmulator
    ) -> None:
        """A custom field syncd set in the create is its own (Jira logs no item for it); Ana's later edit of another,
        a ``fieldtype: custom`` changelog item, is hers: in the search's history and in a read's alike."""
        created = connector.create(
            {"title": "Custom history", "segment": Placed("SMB", custom="Segment")}, marker="sync-custom-listed"
        )
        emulator.clock.advance(60)
        human.set_custom(created.ref, "Customer", "Globex")
        (record,) = connector.fetch([created.ref])
        assert record.history is not None
        carried = record.history.expanded()
        assert sorted(carried, key=repr) == sorted(connector.history(created.ref), key=repr)
        segment = [c for c in carried if c.field == custom_change("Segment")]
        customer = [c for c in carried if c.field == custom_change("Customer")]
        assert [(c.by_self, c.at) for c in segment] == [(True, record.history.created)]
        assert [(c.by_self, c.person) for c in customer][-1] == (False, "ana@corp.example")
        assert max(c.at for c in customer) - record.history.created >= timedelta(seconds=59)

    def test_a_changelog_cut_short_is_not_taken_for_the_whole(
        self, connector: JiraConnector, emulator: JiraEmulator
    ) -> None:
        """Past 40 entries a search carries none (the history is read); past 100 the read pages the changelog and
        still credits Ben, who set the due date first of all, not the issue's creator."""
        created = connector.create({"title": "A long life"}, marker="sync-long-history")
        emulator.act_as("ben@corp.example").update(created.ref, duedate="2027-03-01")
        for n in range(104):
            emulator.act_as("ana@corp.example").update(created.ref, summary=f"Take {n}")
        (record,) = connector.fetch([created.ref])
        assert record.history is None
        history = connector.history(created.ref)
        assert emulator.request_count("GET /rest/api/<any('2', '3', 'latest'):version>/issue/<issue_id>/changelog")
        due = [change.person for change in sorted(history, key=lambda c: c.at) if change.field == "due"]
        assert due[-1] == "ben@corp.example"
        assert len([change for change in history if change.field == "title"]) == 105  # created, then 104 takes


class TestJiraServerHistory:
    @pytest.fixture
    def emulator(self) -> Iterator[JiraEmulator]:
        yield from _start(SERVER)

    def test_a_cut_changelog_on_server_names_no_one_for_what_it_lost(
        self, connector: JiraConnector, emulator: JiraEmulator
    ) -> None:
        """Server has no paged changelog: the recent 100 entries stand, and the creation is not guessed from."""
        created = connector.create({"title": "Long on the server"}, marker="sync-server-long")
        emulator.act_as("ben@corp.example").update(created.ref, duedate="2027-03-01")
        for n in range(100):
            emulator.act_as("ana@corp.example").update(created.ref, summary=f"Take {n}")
        history = connector.history(created.ref)
        assert [change for change in history if change.field == "due"] == []
        assert {change.person for change in history if change.field == "title"} == {"ana@corp.example"}


class TestJiraWebhooks:
    def test_a_signed_delivery_is_accepted_once(self, emulator: JiraEmulator) -> None:
        """A delivery signed sha256=HMAC(body) names its issue; the same signed body again yields nothing.

        Even under a new X-Atlassian-Webhook-Identifier: the signature does not cover that header.
        """
        connector = _connector(emulator, webhook_secret="hook-secret")
        body = json.dumps({"webhookEvent": "jira:issue_updated", "issue": {"key": "ENG-1"}}).encode()
        signature = "sha256=" + hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
        headers = {"X-Hub-Signature": signature, "X-Atlassian-Webhook-Identifier": "delivery-1"}
        assert connector.verify_webhook(headers, body) == ["ENG-1"]
        assert connector.verify_webhook(headers, body) == []
        assert connector.verify_webhook({**headers, "X-Atlassian-Webhook-Identifier": "delivery-2"}, body) == []
        deep = b"[" * 100_000 + b"]" * 100_000
        deep_signature = "sha256=" + hmac.new(b"hook-secret", deep, hashlib.sha256).hexdigest()
        with pytest.raises(InvalidItem):
            connector.verify_webhook({"X-Hub-Signature": deep_signature}, deep)
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

    def test_syncds_own_write_hints_at_nothing_once_it_knows_its_account(self, emulator: JiraEmulator) -> None:
        """An event syncd's account caused (its write coming back) starts no pass; a person's edit still does."""
        with Receiver() as receiver:
            connector = _connector(emulator, webhook_secret="hook-secret")
            connector.ensure_webhook(receiver.url)
            connector.update("ENG-2", {"title": "Written by syncd, before it knows itself"})
            (unknown,) = receiver.wait_for(1)
            assert connector.verify_webhook(unknown.headers, unknown.body) == ["ENG-2"]
            assert connector.identify()
            connector.update("ENG-2", {"title": "Written by syncd"})
            ours = receiver.wait_for(2)[1]
            assert connector.verify_webhook(ours.headers, ours.body) == []
            emulator.act_as("ana@corp.example").update("ENG-2", summary="Edited by Ana")
            theirs = receiver.wait_for(3)[2]
            assert connector.verify_webhook(theirs.headers, theirs.body) == ["ENG-2"]


def _group() -> Group:
    """The shipped example group: engineering is this Jira, sales a Trello board."""
    return compile_group(
        MAPPINGS / "launch-requests.yaml",
        {"engineering": "jira", "sales": "trello", "marketing": "asana"},
        CAPABILITIES,
    )


def _nothing_sent_refused(emulator: JiraEmulator) -> None:
    """No request reached Jira only to be refused (a value it cannot hold was never sent)."""
    assert emulator.counters()["statuses"].get("400", 0) == 0


class TestJiraRefusedValues:
    """One refused value fails only its field: InvalidItem names it, and the codec keeps it from being sent."""

    @pytest.mark.parametrize(
        ("jira_field", "field"),
        [
            ("summary", "title"),
            ("description", "description"),
            ("assignee", "assignees"),
            ("duedate", "due"),
            ("labels", "labels"),
        ],
    )
    def test_the_error_table_names_the_refused_field(self, jira_field: str, field: str) -> None:
        """A 400 whose errors name a Jira field is an InvalidItem naming the canonical field."""
        body = {"errorMessages": [], "errors": {jira_field: "refused"}}
        translated = translate(JIRAError(status_code=400, text=json.dumps(body)), "ENG-7")
        assert isinstance(translated, InvalidItem)
        assert (translated.field, translated.ref, translated.status) == (field, "ENG-7", 400)

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"errors": {"labels": "bad", "summary": "bad"}}, "title"),
            ({"errors": {"duedate": "bad", "resolution": "bad"}}, "due"),
            ({"errors": {"resolution": "Resolution is required."}}, None),
            ({"errorMessages": ["Transition id '9' is not valid for this issue."], "errors": {}}, None),
            ("<html>Bad Request</html>", None),
        ],
    )
    def test_the_error_table_names_one_field_or_none(self, body: object, field: str | None) -> None:
        """Several fields: the first in canonical order; none syncd writes, or no errors object: no field."""
        text = body if isinstance(body, str) else json.dumps(body)
        translated = translate(JIRAError(status_code=400, text=text))
        assert isinstance(translated, InvalidItem)
        assert translated.field == field

    def test_jiras_own_refusal_of_a_label_names_the_labels(self, connector: JiraConnector) -> None:
        """Sent as is, 'needs review' is refused by Jira (through the table): the error says which field."""
        with pytest.raises(InvalidItem, match="contains spaces") as raised:
            connector.create({"title": "Raw labels", "labels": ("launch", "needs review")}, marker="sync-raw-label")
        assert raised.value.field == "labels"

    def test_a_label_with_a_space_is_left_out_and_reported(
        self, connector: JiraConnector, emulator: JiraEmulator
    ) -> None:
        """Through the codec the issue is created with the labels Jira holds; the one it cannot is a problem."""
        fields, problems = (
            _group()
            .codecs["engineering"]
            .encode({"title": "From Sales", "labels": ["needs review", "web"]}, create=True)
        )
        created = connector.create(fields, marker="sync-label-space")
        assert created.fields["labels"] == ("launch", "web")
        assert [(p.endpoint, p.field, p.value) for p in problems] == [("engineering", "labels", "needs review")]
        _nothing_sent_refused(emulator)

    def test_a_1004_character_title(self, connector: JiraConnector, emulator: JiraEmulator) -> None:
        """Sent whole, Jira refuses it naming the title; through the codec it is written shortened, and reported."""
        title = "Launch " + "checklist " * 99 + "end" + "!" * 4
        assert len(title) == 1004
        with pytest.raises(InvalidItem, match="less than 255 characters") as raised:
            connector.create({"title": title}, marker="sync-long-raw")
        assert raised.value.field == "title"
        fields, problems = _group().codecs["engineering"].encode({"title": title}, create=True)
        created = connector.create(fields, marker="sync-long-title")
        assert created.fields["title"] == title[:254].rstrip() + "\u2026"
        assert len(created.fields["title"]) <= 255
        assert [(p.field, p.value) for p in problems] == [("title", title[:80])]

    def test_a_blank_title_is_written_untitled(self, connector: JiraConnector, emulator: JiraEmulator) -> None:
        """A title of only spaces (from a tool that holds one) becomes an issue called "(untitled)", reported."""
        fields, problems = _group().codecs["engineering"].encode({"title": "   "}, create=True)
        created = connector.create(fields, marker="sync-blank-title")
        assert created.fields["title"] == UNTITLED
        assert [(p.field, p.value) for p in problems] == [("title", "   ")]
        _nothing_sent_refused(emulator)

    def test_year_1_is_never_sent(self, connector: JiraConnector, emulator: JiraEmulator) -> None:
        """The connector refuses 0001-01-01 itself, naming the due date; nothing reaches Jira."""
        issues = len(emulator.state.issues)
        with pytest.raises(InvalidItem, match="1583-01-01 to 9999-12-31") as raised:
            connector.create({"title": "Year one", "due": date(1, 1, 1)}, marker="sync-year-1-raw")
        assert raised.value.field == "due"
        assert len(emulator.state.issues) == issues
        _nothing_sent_refused(emulator)

    def test_year_1_from_trello_is_reported_and_the_rest_written(
        self, connector: JiraConnector, emulator: JiraEmulator
    ) -> None:
        """A Trello card due in year 1 becomes an issue without a due date; the date is a reported problem."""
        group = _group()
        card = Record(
            tool="trello",
            ref="c1",
            version="v1",
            modified=datetime(2027, 1, 1, tzinfo=UTC),
            fields={"title": "Due long ago", "due": datetime(1, 1, 1, tzinfo=UTC)},
        )
        view, _ = group.codecs["sales"].decode(card)
        assert view.values["due"] == "0001-01-01"
        fields, problems = group.codecs["engineering"].encode(view.values, create=True)
        created = connector.create(fields, marker="sync-year-1-trello")
        assert (created.fields["title"], created.fields["due"]) == ("Due long ago", None)
        assert [(p.field, p.value) for p in problems] == [("due", "0001-01-01")]
        _nothing_sent_refused(emulator)

    def test_the_connectors_own_refusals_name_their_field(self, connector: JiraConnector) -> None:
        """Two assignees, a person Jira does not know, an instant for a date: each names its field."""
        refused: list[dict[str, Any]] = [
            {"title": "x", "assignees": (Person("ana@corp.example"), Person("ben@corp.example"))},
            {"title": "x", "assignees": (Person("stranger@else.example"),)},
            {"title": "x", "due": datetime(2027, 1, 1, 9, 0, tzinfo=UTC)},
        ]
        fields: list[str | None] = []
        for index, values in enumerate(refused):
            with pytest.raises(InvalidItem) as raised:
                connector.create(values, marker=f"sync-own-refusal-{index}")
            fields.append(raised.value.field)
        assert fields == ["assignees", "assignees", "due"]
