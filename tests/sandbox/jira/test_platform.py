"""The Jira emulator's site: auth, metadata, users, rate limits, signed webhooks and acting as people."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
import requests
from jira import JIRA, JIRAError

from sandbox.core import ACT_AS_HEADER
from sandbox.jira import JiraEmulator
from sandbox.seed import token_for
from tests.conformance import assert_conforms
from tests.sandbox.jira.support import auth, client, delete_issue, error_response, server_seed, shut, started

SECRET = "s3cret-for-tests"
FILTER = "issue-related-events-section"


class Receiver(BaseHTTPRequestHandler):
    """Collects webhook POSTs."""

    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Receiver.received.append((dict(self.headers.items()), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()
    server.server_close()


class TestAuth:
    def test_service_account_credentials_work_with_the_sdk(self, emulator: JiraEmulator, jira: JIRA) -> None:
        """credentials() give a Cloud client whose myself is the service account in the site's zone."""
        me = jira.myself()
        assert (me["emailAddress"], me["timeZone"], me["accountType"]) == (
            "syncd-bot@corp.example",
            "Europe/Berlin",
            "atlassian",
        )
        assert me["accountId"].startswith("712020:")
        assert_conforms("jira", "get", "/rest/api/3/myself", 200, me)

    def test_bad_token_is_401_with_jira_body(self, emulator: JiraEmulator) -> None:
        """A wrong token answers 401 with Jira's error body."""
        response = requests.get(f"{emulator.url}/rest/api/3/myself", auth=("syncd-bot@corp.example", "nope"), timeout=5)
        assert response.status_code == 401
        assert response.json() == {
            "errorMessages": ["Client must be authenticated to access this resource."],
            "errors": {},
        }
        assert_conforms("jira", "post", "/rest/api/3/issue", 401, response.json())

    def test_server_info_is_anonymous_and_conforms(self, emulator: JiraEmulator) -> None:
        """serverInfo answers without credentials and matches ServerInformation."""
        body = requests.get(f"{emulator.url}/rest/api/3/serverInfo", timeout=5).json()
        assert (body["deploymentType"], body["baseUrl"]) == ("Cloud", emulator.url)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}", body["serverTime"])
        assert_conforms("jira", "get", "/rest/api/3/serverInfo", 200, body)

    def test_server_accepts_bearer_and_username_basic(self) -> None:
        """On Server a personal access token (Bearer) and Basic username:token both work; users are names."""
        for server in started(server_seed()):
            token = token_for("jira", "ben@corp.example")
            bearer = JIRA(server=server.url, token_auth=token)
            basic = JIRA(server=server.url, basic_auth=("ben", token))
            try:
                assert bearer.server_info()["deploymentType"] == "Server"
                assert bearer.myself()["name"] == "ben"
                assert basic.myself()["key"] == server.state.users["ben@corp.example"].key
                assert "accountId" not in basic.myself()
                assert [u.name for u in basic.search_users("dan")] == ["dana"]
                assert basic.user("chen").displayName == "Chen Wei"
                latest = requests.get(f"{server.url}/rest/api/latest/myself", auth=("ben", token), timeout=5)
                assert latest.json()["name"] == "ben"
            finally:
                shut(bearer)
                shut(basic)


class TestMetadata:
    def test_workflow_metadata(self, jira: JIRA) -> None:
        """status, project statuses, priority, resolution, issuetype and field lists reflect the seed."""
        assert [s.name for s in jira.statuses()] == ["To Do", "In Progress", "In Review", "Blocked", "Done"]
        per_type = jira.issue_types_for_project("ENG")
        assert [t.name for t in per_type] == ["Task", "Bug", "Story"]
        assert [s.name for s in per_type[0].statuses][-1] == "Done"
        assert [p.name for p in jira.priorities()] == ["Highest", "High", "Medium", "Low", "Lowest"]
        assert [r.name for r in jira.resolutions()] == ["Done", "Won't Do", "Duplicate", "Cannot Reproduce"]
        assert [t.name for t in jira.issue_types()] == ["Task", "Bug", "Story"]
        assert "summary" in {f["id"] for f in jira.fields()}

    def test_projects(self, jira: JIRA) -> None:
        """project lists and project/{key} show Engineering with its lead."""
        assert [p.key for p in jira.projects()] == ["ENG"]
        project = jira.project("ENG")
        assert (project.name, project.lead.displayName) == ("Engineering", "Ana Lima")

    def test_metadata_lists_conform(self, emulator: JiraEmulator) -> None:
        """The v3 metadata lists match their schemas."""
        for path in ("/status", "/priority", "/field", "/resolution", "/issuetype", "/project"):
            body = requests.get(f"{emulator.url}/rest/api/3{path}", auth=auth(), timeout=5).json()
            assert_conforms("jira", "get", f"/rest/api/3{path}", 200, body)
        body = requests.get(f"{emulator.url}/rest/api/3/project/ENG/statuses", auth=auth(), timeout=5).json()
        assert_conforms("jira", "get", "/rest/api/3/project/{projectIdOrKey}/statuses", 200, body)


class TestUsers:
    def test_search_and_get_by_account_id(self, emulator: JiraEmulator, jira: JIRA) -> None:
        """user/search?query= finds people by name or e-mail; user?accountId= returns one with their zone."""
        found = jira.search_users(query="chen")
        assert [u.emailAddress for u in found] == ["chen@corp.example"]
        user = jira.user(found[0].accountId)
        assert (user.displayName, user.timeZone) == ("Chen Wei", "Asia/Singapore")

    def test_hidden_email_is_absent_for_others(self, emulator: JiraEmulator, jira: JIRA) -> None:
        """A person who hides their e-mail shows no emailAddress to others, and is found only by exact e-mail."""
        emulator.hidden_emails.add("eli@corp.example")
        eli = emulator.state.users["eli@corp.example"].account_id
        assert "emailAddress" not in jira.user(eli).raw
        assert jira.search_users(query="eli@corp") == []
        assert [u.accountId for u in jira.search_users(query="eli@corp.example")] == [eli]
        own = client(emulator, "eli@corp.example")
        try:
            assert own.myself()["emailAddress"] == "eli@corp.example"
        finally:
            shut(own)

    def test_assignable_users_of_a_project(self, emulator: JiraEmulator, jira: JIRA) -> None:
        """user/assignable/search lists who may be assigned in a project; without a project it is a 400."""
        found = jira.search_assignable_users_for_issues(project="ENG", query="ana")
        assert [u.emailAddress for u in found] == ["ana@corp.example"]
        everyone = requests.get(
            f"{emulator.url}/rest/api/2/user/assignable/search", params={"project": "ENG"}, auth=auth(), timeout=5
        )
        assert len(everyone.json()) == len(emulator.state.users)
        missing = requests.get(f"{emulator.url}/rest/api/2/user/assignable/search", auth=auth(), timeout=5)
        assert missing.status_code == 400


class TestRateLimit:
    def test_burst_answers_429_with_jira_headers(self) -> None:
        """Past the per-user burst budget Jira Cloud answers 429 with Retry-After and X-RateLimit-*."""
        for emulator in started(burst_limit=5, burst_window_s=60):
            sdk = client(emulator, max_retries=0)
            try:
                for _ in range(4):  # the client's serverInfo call at construction spent the fifth
                    sdk.myself()
                with pytest.raises(JIRAError) as caught:
                    sdk.myself()
            finally:
                shut(sdk)
            headers = error_response(caught.value).headers
            assert caught.value.status_code == 429
            assert int(headers["Retry-After"]) >= 1
            assert (headers["X-RateLimit-Limit"], headers["X-RateLimit-Remaining"]) == ("5", "0")
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ", headers["X-RateLimit-Reset"])
            assert headers["RateLimit-Reason"] == "jira-burst-based"
            other = requests.get(f"{emulator.url}/rest/api/2/myself", auth=auth("ana@corp.example"), timeout=5)
            assert other.status_code == 200


class TestWebhooks:
    def register(self, emulator: JiraEmulator, url: str, **extra: object) -> dict[str, object]:
        body = {"name": "syncd", "url": url, "events": ["jira:issue_updated", "jira:issue_created"], **extra}
        response = requests.post(f"{emulator.url}/rest/webhooks/1.0/webhook", json=body, auth=auth(), timeout=5)
        assert response.status_code == 201
        result: dict[str, object] = response.json()
        return result

    def test_registration_lifecycle(self, emulator: JiraEmulator, receiver: str) -> None:
        """Webhooks can be registered, listed, read and deleted; the secret is never shown."""
        created = self.register(emulator, receiver, secret=SECRET)
        assert "secret" not in created
        base = f"{emulator.url}/rest/webhooks/1.0/webhook"
        assert [w["name"] for w in requests.get(base, auth=auth(), timeout=5).json()] == ["syncd"]
        one = requests.get(str(created["self"]), auth=auth(), timeout=5).json()
        assert one["url"] == receiver
        assert requests.delete(str(created["self"]), auth=auth(), timeout=5).status_code == 204
        assert requests.get(str(created["self"]), auth=auth(), timeout=5).status_code == 404

    def test_signed_delivery_with_identifier_and_actor(self, emulator: JiraEmulator, receiver: str) -> None:
        """An edit by Ben is POSTed with an HMAC-SHA256 signature, a unique identifier and Ben as ``user``."""
        self.register(emulator, receiver, secret=SECRET)
        ben = emulator.act_as("ben@corp.example")
        ben.update("ENG-2", summary="Pricing API (Ben)")
        ben.update("ENG-2", labels=["api"])
        assert emulator.webhooks.wait_idle()
        assert len(Receiver.received) == 2
        identifiers = set()
        for headers, body in Receiver.received:
            expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(headers["X-Hub-Signature"], expected)
            identifiers.add(headers["X-Atlassian-Webhook-Identifier"])
        assert len(identifiers) == 2
        payloads = [json.loads(body) for _, body in Receiver.received]
        payload = next(p for p in payloads if p["changelog"]["items"][0]["field"] == "summary")
        assert payload["webhookEvent"] == "jira:issue_updated"
        assert payload["issue_event_type_name"] == "issue_updated"
        assert payload["user"]["accountId"] == emulator.state.users["ben@corp.example"].account_id
        assert payload["issue"]["key"] == "ENG-2"
        item = payload["changelog"]["items"][0]
        assert (item["field"], item["toString"]) == ("summary", "Pricing API (Ben)")

    def test_jql_filter_limits_deliveries(self, emulator: JiraEmulator, jira: JIRA, receiver: str) -> None:
        """Only issues matching the registration's JQL filter are delivered; no secret means no signature."""
        self.register(emulator, receiver, filters={"issue-related-events-section": "labels = compliance"})
        jira.issue("ENG-1").update(summary="not compliance")
        jira.issue("ENG-7").update(summary="compliance one")
        assert emulator.webhooks.wait_idle()
        delivered = [json.loads(body)["issue"]["key"] for _, body in Receiver.received]
        assert delivered == ["ENG-7"]
        assert "X-Hub-Signature" not in Receiver.received[0][0]

    def test_comment_events(self, emulator: JiraEmulator, jira: JIRA, receiver: str) -> None:
        """A comment is announced as comment_created (and as an issue_commented update)."""
        self.register(emulator, receiver, events=["comment_created", "jira:issue_updated"])
        jira.add_comment("ENG-3", "ping")
        assert emulator.webhooks.wait_idle()
        events = sorted(
            (json.loads(body)["webhookEvent"], json.loads(body).get("issue_event_type_name"))
            for _, body in Receiver.received
        )
        assert events == [("comment_created", None), ("jira:issue_updated", "issue_commented")]

    def test_created_and_deleted_events(self, emulator: JiraEmulator, jira: JIRA, receiver: str) -> None:
        """Creating and deleting an issue are announced with issue_created and issue_deleted."""
        self.register(emulator, receiver, events=["jira:issue_created", "jira:issue_deleted"])
        issue = jira.create_issue(project="ENG", summary="short-lived", issuetype={"name": "Task"})
        delete_issue(issue)
        assert emulator.webhooks.wait_idle()
        payloads = sorted((json.loads(body) for _, body in Receiver.received), key=lambda p: p["timestamp"])
        assert [(p["webhookEvent"], p["issue_event_type_name"]) for p in payloads] == [
            ("jira:issue_created", "issue_created"),
            ("jira:issue_deleted", "issue_deleted"),
        ]
        assert {p["issue"]["key"] for p in payloads} == {issue.key}

    def test_bad_filter_is_rejected(self, emulator: JiraEmulator, receiver: str) -> None:
        """A registration with invalid JQL answers 400."""
        body = {
            "name": "x",
            "url": receiver,
            "events": ["jira:issue_updated"],
            "filters": {"issue-related-events-section": "nope = 1"},
        }
        response = requests.post(f"{emulator.url}/rest/webhooks/1.0/webhook", json=body, auth=auth(), timeout=5)
        assert response.status_code == 400
        assert "filters" in response.json()["errors"]

    def test_property_filter_needs_an_indexed_property(self, emulator: JiraEmulator, receiver: str) -> None:
        """A webhook filter on an unindexed property is refused at registration like a search, then accepted."""
        jql = 'issue.property[syncd].sync_id = "s-1"'
        body = {"name": "x", "url": receiver, "events": ["jira:issue_updated"], "filters": {FILTER: jql}}
        response = requests.post(f"{emulator.url}/rest/webhooks/1.0/webhook", json=body, auth=auth(), timeout=5)
        assert response.status_code == 400
        message = "Field 'issue.property[syncd].sync_id' does not exist or you do not have permission to view it."
        assert response.json()["errors"] == {"filters": message}
        emulator.indexed_properties = {"syncd"}
        self.register(emulator, receiver, filters={FILTER: jql})
        ben = emulator.act_as("ben@corp.example")
        ben.set_property("ENG-3", "syncd", {"sync_id": "s-1"})
        ben.update("ENG-3", summary="while indexed")
        assert emulator.webhooks.wait_idle()
        assert len(Receiver.received) == 1
        emulator.indexed_properties = set()
        # A filter that no longer compiles delivers nothing; the write that raised the event still succeeds.
        ben.update("ENG-3", summary="after the app left")
        assert emulator.webhooks.wait_idle()
        assert len(Receiver.received) == 1


class TestActAs:
    def test_actor_edits_are_authored_by_that_person(self, emulator: JiraEmulator, jira: JIRA) -> None:
        """create/update/transition/comment as Dana show Dana as creator, changelog author and comment author."""
        dana = emulator.act_as("dana@corp.example")
        key = dana.create("ENG", "Dana's bug", issuetype="Bug", assignee="chen@corp.example", labels=["x"])
        dana.update(key, summary="Dana's bug, renamed", duedate="2027-02-02")
        dana.transition(key, "Done", resolution="Done")
        comment_id = dana.comment(key, "fixed *now*")
        dana.set_property(key, "syncd", {"ref": 1})
        issue = jira.issue(key, expand="changelog")
        assert issue.fields.creator.displayName == "Dana Kovacs"
        assert issue.raw["fields"]["assignee"]["displayName"] == "Chen Wei"
        assert issue.fields.status.name == "Done"
        assert {h.author.displayName for h in issue.changelog.histories} == {"Dana Kovacs"}
        assert len(issue.changelog.histories) == 4  # the edit, then To Do -> In Progress -> In Review -> Done
        assert jira.comment(key, comment_id).author.displayName == "Dana Kovacs"
        assert jira.issue_property(key, "syncd").raw["value"] == {"ref": 1}
        dana.delete(key)
        assert emulator.admin_state()["issues"] == {"ENG": 12}

    def test_act_as_header_over_http(self, emulator: JiraEmulator, jira: JIRA) -> None:
        """The X-Sandbox-Act-As header makes an HTTP edit count as that person's."""
        requests.put(
            f"{emulator.url}/rest/api/2/issue/ENG-9",
            json={"fields": {"summary": "Gus was here"}},
            headers={ACT_AS_HEADER: "gus@corp.example"},
            auth=auth(),
            timeout=5,
        ).raise_for_status()
        history = jira.issue("ENG-9", expand="changelog").changelog.histories[-1]
        assert history.author.displayName == "Gus Petersen"

    def test_unreachable_status_is_an_error(self, emulator: JiraEmulator) -> None:
        """A status outside the workflow cannot be reached."""
        with pytest.raises(ValueError, match="not in the workflow"):
            emulator.act_as("ana@corp.example").transition("ENG-1", "Shipped")
