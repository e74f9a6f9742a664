"""JQL search on the Jira emulator through python-jira: Cloud /search/jql, Server /search, and JQL's quirks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from jira import JIRA, JIRAError

from sandbox.jira import JiraEmulator
from tests.conformance import assert_conforms
from tests.sandbox.jira.support import auth, error_json, move_to_second, server_seed, shut, started

BERLIN = ZoneInfo("Europe/Berlin")
UNINDEXED = "Field 'issue.property[syncd].sync_id' does not exist or you do not have permission to view it."
REMOVED = {
    "errorMessages": [
        "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
        "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
    ],
    "errors": {},
}


def keys(jira: JIRA, jql: str) -> list[str]:
    return [issue.key for issue in jira.search_issues(jql, maxResults=False)]


class TestJql:
    def test_project_status_labels_and_order(self, jira: JIRA) -> None:
        """Clauses combine with AND/OR/parentheses and ORDER BY sorts; numbers sort numerically."""
        found = keys(jira, 'project = ENG AND (status in ("In Progress", Blocked) OR labels = ops) ORDER BY key ASC')
        assert found == ["ENG-1", "ENG-5", "ENG-7", "ENG-9", "ENG-11"]

    def test_status_category_and_not(self, jira: JIRA) -> None:
        """``statusCategory`` groups statuses; NOT negates a clause."""
        assert keys(jira, "statusCategory = Done") == ["ENG-11", "ENG-4"]
        assert len(keys(jira, "project = ENG AND NOT statusCategory = Done")) == 10

    def test_empty_and_negative_clauses(self, jira: JIRA) -> None:
        """``IS EMPTY`` finds unassigned issues; ``labels !=`` never matches issues without labels."""
        assert keys(jira, "project = ENG AND assignee IS EMPTY") == ["ENG-12", "ENG-6"]
        assert keys(jira, "labels != launch") == ["ENG-11"]

    def test_default_order_is_key_descending(self, jira: JIRA) -> None:
        """Without ORDER BY, results come newest key first."""
        assert keys(jira, "labels = compliance OR labels = ops") == ["ENG-11", "ENG-7"]

    def test_key_and_issuekey_lists(self, jira: JIRA) -> None:
        """``key in`` and its alias ``issuekey =`` select exact issues."""
        assert keys(jira, "key in (ENG-2, ENG-10) ORDER BY key") == ["ENG-2", "ENG-10"]
        assert keys(jira, "issuekey = ENG-3") == ["ENG-3"]

    def test_assignee_by_account_id_and_current_user(self, emulator: JiraEmulator, jira: JIRA) -> None:
        """``assignee`` takes an accountId, or currentUser() for the caller."""
        ana = emulator.state.users["ana@corp.example"].account_id
        assert keys(jira, f"assignee = {ana} ORDER BY key") == ["ENG-1", "ENG-4", "ENG-11"]
        jira.issue("ENG-6").update(fields={"assignee": {"accountId": jira.myself()["accountId"]}})
        assert keys(jira, "assignee = currentUser()") == ["ENG-6"]

    def test_property_search(self, emulator: JiraEmulator, jira: JIRA) -> None:
        """``issue.property[key].path = value`` finds issues by an entity property an app indexed."""
        emulator.indexed_properties = {"syncd"}
        jira.add_issue_property("ENG-8", "syncd", {"origin": {"ref": "trello:abc"}})
        assert keys(jira, 'issue.property[syncd].origin.ref = "trello:abc"') == ["ENG-8"]
        assert keys(jira, 'issue.property[syncd].origin.ref = "trello:zzz"') == []

    def test_unindexed_property_is_refused_like_an_unknown_field(self, jira: JIRA) -> None:
        """By default no app indexes any property, so Jira Cloud refuses the clause with 400."""
        jira.add_issue_property("ENG-8", "syncd", {"sync_id": "s-1"})
        with pytest.raises(JIRAError) as caught:
            jira.search_issues('project = ENG AND issue.property[syncd].sync_id = "s-1"')
        assert caught.value.status_code == 400
        assert error_json(caught.value) == {"errorMessages": [UNINDEXED], "errors": {}}

    def test_only_the_declared_path_of_a_property_is_searchable(self, emulator: JiraEmulator, jira: JIRA) -> None:
        """Declaring ``key.path`` indexes that path alone, as an app's module declares paths."""
        emulator.indexed_properties = {"syncd.sync_id"}
        jira.add_issue_property("ENG-8", "syncd", {"sync_id": "s-1", "origin": "trello"})
        assert keys(jira, 'issue.property[syncd].sync_id = "s-1"') == ["ENG-8"]
        with pytest.raises(JIRAError) as caught:
            jira.search_issues('issue.property[syncd].origin = "trello"')
        assert error_json(caught.value)["errorMessages"] == [
            "Field 'issue.property[syncd].origin' does not exist or you do not have permission to view it."
        ]

    def test_creator_current_user_and_created_epoch_millis(self, emulator: JiraEmulator, jira: JIRA) -> None:
        """``creator = currentUser() AND created >= <epoch ms>`` finds the caller's creates, with their property."""
        emulator.clock.advance(60)
        since = int(emulator.clock.now().timestamp() * 1000)
        mine = jira.create_issue(project="ENG", summary="mine", issuetype={"name": "Task"})
        emulator.act_as("ben@corp.example").create("ENG", summary="Ben's")
        jira.add_issue_property(mine.key, "syncd", {"sync_id": "s-9"})
        jql = f"project = ENG AND creator = currentUser() AND created >= {since}"
        assert keys(jira, jql) == [mine.key]
        for use_post in (False, True):
            page = jira.enhanced_search_issues(jql, properties="syncd", json_result=True, use_post=use_post)
            assert [issue["properties"] for issue in page["issues"]] == [{"syncd": {"sync_id": "s-9"}}]
        created = int(emulator.state.issues[mine.key].created.timestamp() * 1000)
        assert keys(jira, f"project = ENG AND creator = currentUser() AND created >= {created + 1}") == []

    @pytest.mark.parametrize(
        ("jql", "message"),
        [
            ("project = ENG AND", "Error in the JQL Query: Expecting more input at the end of the query."),
            ("project ENG", "Error in the JQL Query: Expecting operator but got 'ENG'."),
            ("colour = red", "Field 'colour' does not exist or you do not have permission to view it."),
            ("status = Shipped", "The value 'Shipped' does not exist for the field 'status'."),
            ("project = ENG ORDER BY key", None),
        ],
    )
    def test_bad_jql_is_a_400_never_everything(self, jira: JIRA, jql: str, message: str | None) -> None:
        """Unparseable JQL or unknown fields/values answer 400 with Jira's message."""
        if message is None:
            assert len(keys(jira, jql)) == 12
            return
        with pytest.raises(JIRAError) as caught:
            jira.search_issues(jql)
        assert caught.value.status_code == 400
        assert error_json(caught.value)["errorMessages"][0].startswith(message)

    def test_unbounded_query_is_rejected_on_cloud(self, jira: JIRA) -> None:
        """/search/jql refuses a query without a restriction."""
        with pytest.raises(JIRAError) as caught:
            jira.search_issues("ORDER BY key")
        assert "Unbounded JQL queries are not allowed here" in error_json(caught.value)["errorMessages"][0]


class TestDates:
    def test_minute_precision_in_the_users_time_zone(self, emulator: JiraEmulator, jira: JIRA) -> None:
        """An edit at 10:05:40 local is found by ``updated >= "…10:05"``; one at 10:04:59 is not."""
        at_40 = move_to_second(emulator, 40)
        jira.issue("ENG-1").update(summary="edited at :40")
        minute = at_40.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M")
        assert keys(jira, f'key = ENG-1 AND updated >= "{minute}"') == ["ENG-1"]
        at_59 = move_to_second(emulator, 59)
        jira.issue("ENG-2").update(summary="edited at :59")
        next_minute = (at_59 + timedelta(seconds=1)).astimezone(BERLIN).strftime("%Y/%m/%d %H:%M")
        assert keys(jira, f'key = ENG-2 AND updated >= "{next_minute}"') == []
        assert keys(jira, f'key = ENG-2 AND updated < "{next_minute}"') == ["ENG-2"]

    def test_dates_are_read_in_the_users_zone_not_utc(self, emulator: JiraEmulator, jira: JIRA) -> None:
        """A wall-clock string means Berlin time for the Berlin service account, not UTC."""
        moment = move_to_second(emulator, 10)
        jira.issue("ENG-1").update(summary="zone check")
        bound = moment + timedelta(minutes=1)
        in_utc = bound.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        in_berlin = bound.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M")
        assert keys(jira, f'key = ENG-1 AND updated <= "{in_berlin}"') == ["ENG-1"]
        assert keys(jira, f'key = ENG-1 AND updated <= "{in_utc}"') == []

    def test_epoch_milliseconds_are_exact(self, emulator: JiraEmulator, jira: JIRA) -> None:
        """A bare number is epoch milliseconds, compared exactly."""
        jira.issue("ENG-3").update(summary="exact")
        updated = emulator.state.issues["ENG-3"].updated
        millis = int(updated.timestamp() * 1000)
        assert keys(jira, f"key = ENG-3 AND updated >= {millis}") == ["ENG-3"]
        assert keys(jira, f"key = ENG-3 AND updated >= {millis + 1}") == []

    def test_seconds_in_a_date_string_are_an_error(self, jira: JIRA) -> None:
        """``"yyyy-MM-dd HH:mm:ss"`` is rejected with Jira's date-format message."""
        with pytest.raises(JIRAError) as caught:
            jira.search_issues('project = ENG AND updated >= "2026-11-24 10:05:30"')
        assert caught.value.status_code == 400
        message = error_json(caught.value)["errorMessages"][0]
        assert message.startswith("Date value '2026-11-24 10:05:30' for field 'updated' is invalid.")

    def test_relative_periods_follow_the_emulated_clock(self, emulator: JiraEmulator, jira: JIRA) -> None:
        """``updated >= -5m`` finds a fresh edit, and no longer after the clock moves ten minutes."""
        emulator.clock.advance(3 * 3600)
        jira.issue("ENG-4").update(summary="recent")
        assert keys(jira, "updated >= -5m") == ["ENG-4"]
        emulator.clock.advance(600)
        assert keys(jira, "updated >= -5m") == []
        assert keys(jira, "updated >= -1h") == ["ENG-4"]


class TestCloudPaging:
    def test_search_jql_pages_by_token_without_total(self, jira: JIRA) -> None:
        """/search/jql answers isLast and nextPageToken, never total; following tokens yields every issue once."""
        first = jira.enhanced_search_issues("project = ENG ORDER BY key", maxResults=5, json_result=True)
        assert "total" not in first
        assert (len(first["issues"]), first["isLast"]) == (5, False)
        seen = [i["key"] for i in first["issues"]]
        token = first["nextPageToken"]
        while token:
            page = jira.enhanced_search_issues(
                "project = ENG ORDER BY key", nextPageToken=token, maxResults=5, json_result=True, use_post=True
            )
            seen += [i["key"] for i in page["issues"]]
            token = page.get("nextPageToken")
        assert seen == [f"ENG-{n}" for n in range(1, 13)]

    def test_default_fields_are_only_the_id(self, emulator: JiraEmulator) -> None:
        """Without ``fields``, /search/jql returns issues with ids only, and the page conforms."""
        body = requests.get(
            f"{emulator.url}/rest/api/3/search/jql", params={"jql": "key = ENG-1"}, auth=auth(), timeout=5
        ).json()
        assert body["issues"][0]["id"] == emulator.state.issues["ENG-1"].id
        assert body["issues"][0]["fields"] == {}
        assert_conforms("jira", "get", "/rest/api/3/search/jql", 200, body)

    def test_search_page_with_fields_conforms(self, emulator: JiraEmulator) -> None:
        """A POST /search/jql page with all fields matches SearchAndReconcileResults."""
        body = requests.post(
            f"{emulator.url}/rest/api/3/search/jql",
            json={"jql": "project = ENG", "fields": ["*all"], "maxResults": 3},
            auth=auth(),
            timeout=5,
        ).json()
        assert len(body["issues"]) == 3
        assert_conforms("jira", "post", "/rest/api/3/search/jql", 200, body)

    @pytest.mark.parametrize("method", ["GET", "POST"])
    def test_properties_parameter_returns_the_named_properties(self, emulator: JiraEmulator, method: str) -> None:
        """``properties`` lists up to 5 keys; each issue carries those it has (no JQL indexing needed to read)."""
        emulator.act_as("ana@corp.example").set_property("ENG-1", "syncd", {"sync_id": "s-1"})
        emulator.act_as("ana@corp.example").set_property("ENG-1", "other", {"x": 1})
        params = {"jql": "key in (ENG-1, ENG-2) ORDER BY key", "properties": ["syncd", "absent"]}
        url = f"{emulator.url}/rest/api/3/search/jql"
        if method == "GET":
            answer = requests.get(url, params={**params, "properties": "syncd,absent"}, auth=auth(), timeout=5)
        else:
            answer = requests.post(url, json=params, auth=auth(), timeout=5)
        issues = answer.json()["issues"]
        assert [issue["properties"] for issue in issues] == [{"syncd": {"sync_id": "s-1"}}, {}]
        assert_conforms("jira", method.lower(), "/rest/api/3/search/jql", 200, answer.json())

    def test_more_than_five_properties_is_a_400(self, emulator: JiraEmulator) -> None:
        """The spec allows up to 5 properties; a sixth is refused (the unfavourable reading)."""
        body = {"jql": "key = ENG-1", "properties": [f"p{n}" for n in range(6)]}
        answer = requests.post(f"{emulator.url}/rest/api/3/search/jql", json=body, auth=auth(), timeout=5)
        assert answer.status_code == 400
        assert answer.json()["errorMessages"] == ["The maximum number of issue properties to return is 5."]

    @pytest.mark.parametrize("version", ["2", "3"])
    @pytest.mark.parametrize("method", ["GET", "POST"])
    def test_old_search_is_gone(self, emulator: JiraEmulator, version: str, method: str) -> None:
        """/rest/api/{2,3}/search answers 410 with Atlassian's migration message."""
        response = requests.request(
            method, f"{emulator.url}/rest/api/{version}/search", params={"jql": "project = ENG"}, auth=auth(), timeout=5
        )
        assert response.status_code == 410
        assert response.json() == REMOVED

    def test_search_lag_hides_fresh_issues_unless_reconciled(self, emulator: JiraEmulator, jira: JIRA) -> None:
        """With ``search_lag_s`` a just-created issue is missing until the clock passes it (or it is reconciled)."""
        emulator.search_lag_s = 30.0
        issue = jira.create_issue(project="ENG", summary="fresh", issuetype={"name": "Task"})
        assert keys(jira, "summary ~ fresh") == []
        reconciled = jira.enhanced_search_issues("summary ~ fresh", reconcileIssues=[int(issue.id)], json_result=True)
        assert [i["id"] for i in reconciled["issues"]] == [issue.id]
        emulator.clock.advance(31)
        assert keys(jira, "summary ~ fresh") == [issue.key]


class TestServerPaging:
    @pytest.fixture
    def server(self) -> Iterator[JiraEmulator]:
        yield from started(server_seed())

    def test_search_pages_with_start_at_and_total(self, server: JiraEmulator) -> None:
        """Server's /search pages by startAt/maxResults and reports the total; the SDK walks every page."""
        sdk = JIRA(server=server.url, token_auth=server.credentials()["token"])
        try:
            page = sdk.search_issues("project = ENG ORDER BY key", startAt=10, maxResults=5)
            assert [i.key for i in page] == ["ENG-11", "ENG-12"]
            assert (page.total, page.startAt) == (12, 10)
            every = sdk.search_issues("project = ENG ORDER BY key", maxResults=False)
            assert len(every) == 12
        finally:
            shut(sdk)

    def test_unindexed_property_is_refused_on_server_too(self, server: JiraEmulator) -> None:
        """Data Center indexes a property only for a plugin's index-document-configuration: 400 without one."""
        url = f"{server.url}/rest/api/2/search"
        answer = requests.get(url, params={"jql": 'issue.property[syncd].sync_id = "s-1"'}, auth=auth(), timeout=5)
        assert answer.status_code == 400
        assert answer.json() == {"errorMessages": [UNINDEXED], "errors": {}}
        server.indexed_properties = {"syncd"}
        assert requests.get(url, params={"jql": 'issue.property[syncd].sync_id = "s-1"'}, auth=auth(), timeout=5).ok

    def test_search_jql_does_not_exist_on_server(self, server: JiraEmulator) -> None:
        """There is no /search/jql (nor any v3) on Server."""
        url = f"{server.url}/rest/api/2/search/jql"
        assert requests.get(url, params={"jql": "project = ENG"}, auth=auth(), timeout=5).status_code == 404
        assert requests.get(f"{server.url}/rest/api/3/myself", auth=auth(), timeout=5).status_code == 404
