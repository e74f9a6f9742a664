"""The Jira emulator's issue routes through python-jira: issues, transitions, comments, changelog, properties."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from jira import JIRA, JIRAError

from sandbox.core import FaultRule
from sandbox.jira import JiraEmulator
from tests.conformance import assert_conforms
from tests.sandbox.jira.support import auth, client, delete_issue, error_json, server_seed, shut, started


class TestIssues:
    def test_create_returns_key_and_the_issue_reads_back(self, jira: JIRA) -> None:
        """POST issue answers id/key/self and GET issue shows the fields as written."""
        issue = jira.create_issue(
            project="ENG",
            summary="Ship the changelog page",
            issuetype={"name": "Bug"},
            description="Write *all* the notes",
            labels=["launch", "docs"],
            priority={"name": "High"},
            duedate="2027-03-01",
        )
        fetched = jira.issue(issue.key)
        assert fetched.key == "ENG-13"
        assert fetched.fields.summary == "Ship the changelog page"
        assert fetched.fields.issuetype.name == "Bug"
        assert fetched.fields.description == "Write *all* the notes"
        assert fetched.fields.labels == ["launch", "docs"]
        assert fetched.fields.priority.name == "High"
        assert fetched.fields.duedate == "2027-03-01"
        assert fetched.fields.status.name == "To Do"
        assert fetched.fields.status.statusCategory.key == "new"
        assert fetched.fields.reporter.emailAddress == "syncd-bot@corp.example"
        assert fetched.fields.resolution is None

    def test_missing_summary_is_a_field_error(self, jira: JIRA) -> None:
        """A create without summary answers 400 with Jira's per-field message."""
        with pytest.raises(JIRAError) as caught:
            jira.create_issue(fields={"project": {"key": "ENG"}, "issuetype": {"name": "Task"}})
        assert caught.value.status_code == 400
        assert error_json(caught.value) == {
            "errorMessages": [],
            "errors": {"summary": "You must specify a summary of the issue."},
        }
        assert_conforms("jira", "post", "/rest/api/3/issue", 400, error_json(caught.value))

    def test_unknown_project_priority_and_assignee_are_rejected(self, emulator: JiraEmulator) -> None:
        """Unknown project, priority and assignee each get their own error; nothing is created."""
        body = {
            "fields": {
                "project": {"key": "NOPE"},
                "summary": "x",
                "priority": {"name": "Urgent"},
                "issuetype": {"name": "Epic"},
                "assignee": {"accountId": "712020:nobody"},
            }
        }
        response = requests.post(f"{emulator.url}/rest/api/2/issue", json=body, auth=auth(), timeout=5)
        assert response.status_code == 400
        errors = response.json()["errors"]
        assert set(errors) == {"project", "issuetype", "priority", "assignee"}
        assert errors["priority"] == "The priority selected is invalid."
        assert len(emulator.state.issues) == 12

    def test_get_honours_fields_and_expand(self, jira: JIRA) -> None:
        """``fields=`` limits the fields; ``expand=names,renderedFields`` adds them."""
        issue = jira.issue("ENG-1", fields="summary,status", expand="names,renderedFields")
        assert set(issue.raw["fields"]) == {"summary", "status"}
        assert issue.raw["names"] == {"summary": "Summary", "status": "Status"}
        assert "renderedFields" in issue.raw

    def test_timestamps_are_in_the_viewers_time_zone(self, emulator: JiraEmulator) -> None:
        """The same issue shows ``updated`` with the offset of each viewer's zone (Berlin bot, Tokyo Hana)."""
        bot = client(emulator)
        hana = client(emulator, "hana@corp.example")
        try:
            assert bot.issue("ENG-1").fields.updated.endswith("+0100")
            assert hana.issue("ENG-1").fields.updated.endswith("+0900")
        finally:
            shut(bot)
            shut(hana)

    def test_update_fields_and_label_operations(self, jira: JIRA) -> None:
        """PUT issue applies ``fields`` and labels add/remove operations, and ``updated`` moves."""
        issue = jira.issue("ENG-2")
        before = issue.fields.updated
        issue.update(
            fields={"summary": "Pricing API v2", "assignee": {"accountId": jira.myself()["accountId"]}},
            update={"labels": [{"add": "beta"}, {"remove": "api"}]},
        )
        after = jira.issue("ENG-2")
        assert after.fields.summary == "Pricing API v2"
        assert after.raw["fields"]["assignee"]["displayName"] == "syncd bot"
        assert after.fields.labels == ["launch", "beta"]
        assert after.fields.updated > before
        after.update(update={"labels": [{"set": ["only"]}]})
        assert jira.issue("ENG-2").fields.labels == ["only"]

    def test_status_in_an_edit_is_ignored(self, jira: JIRA) -> None:
        """A ``status`` field in PUT is accepted (204) but the status does not change."""
        issue = jira.issue("ENG-2")
        issue.update(fields={"status": {"name": "Done"}, "summary": "Still to do"})
        after = jira.issue("ENG-2")
        assert after.fields.status.name == "To Do"
        assert after.fields.summary == "Still to do"

    def test_delete_then_404(self, jira: JIRA) -> None:
        """DELETE issue answers 204; afterwards GET is Jira's 404."""
        delete_issue(jira.issue("ENG-12"))
        with pytest.raises(JIRAError) as caught:
            jira.issue("ENG-12")
        assert caught.value.status_code == 404
        assert error_json(caught.value)["errorMessages"] == [
            "Issue does not exist or you do not have permission to see it."
        ]

    def test_an_issue_with_subtasks_is_deleted_only_with_delete_subtasks(
        self, emulator: JiraEmulator, jira: JIRA
    ) -> None:
        """Spec: 400 "if the issue has subtasks and `deleteSubtasks` is not set to *true*"; with it, all go."""
        child = emulator.act_as("ana@corp.example").create_subtask("ENG-12", "A part of it")
        url = f"{emulator.url}/rest/api/3/issue/ENG-12"
        for params in ({}, {"deleteSubtasks": "false"}, {"deleteSubtasks": "False"}):
            refused = requests.delete(url, params=params, auth=auth(), timeout=5)
            assert refused.status_code == 400
            assert refused.json() == {
                "errorMessages": [
                    f"The issue ENG-12 has subtasks ({child}): set deleteSubtasks=true to delete them with it."
                ],
                "errors": {},
            }
        assert {"ENG-12", child} <= set(emulator.state.issues)
        assert requests.delete(url, params={"deleteSubtasks": "True"}, auth=auth(), timeout=5).status_code == 204
        assert not {"ENG-12", child} & set(emulator.state.issues)

    @pytest.mark.parametrize("status", [502, 504])
    def test_lost_answer_still_creates_and_the_sdk_sees_the_status(
        self, emulator: JiraEmulator, jira: JIRA, status: int
    ) -> None:
        """``status_after``: python-jira raises JIRAError with the gateway's status, yet the issue exists."""
        before = len(emulator.state.issues)
        emulator.faults.add(FaultRule(kind="status_after", status=status, writes=True, path=r"/issue$", times=1))
        with pytest.raises(JIRAError) as caught:
            jira.create_issue(project="ENG", summary="answer lost", issuetype={"name": "Task"})
        assert caught.value.status_code == status
        assert "<h1>" in str(caught.value.text)
        assert len(emulator.state.issues) == before + 1
        assert [i.summary for i in emulator.state.issues.values()][-1] == "answer lost"

    def test_issue_conforms_to_the_v3_spec(self, jira3: JIRA) -> None:
        """GET /rest/api/3/issue matches IssueBean, with an ADF description."""
        issue = jira3.issue("ENG-1", expand="names")
        assert issue.raw["fields"]["description"]["type"] == "doc"
        assert_conforms("jira", "get", "/rest/api/3/issue/{issueIdOrKey}", 200, issue.raw)


class TestRichText:
    def test_v2_wiki_write_reads_as_adf_on_v3_and_back(self, jira: JIRA, jira3: JIRA) -> None:
        """Wiki markup written through v2 is the equivalent ADF on v3, and reads back unchanged on v2."""
        wiki = (
            "h2. Plan\n\nSee [the spec|https://example.com/spec] and {{make}}.\nNext line\n\n"
            "* one\n** _nested_\n\n# a\n# b\n\nbq. quoted\n\n----"
        )
        key = jira.create_issue(project="ENG", summary="Rich", issuetype={"name": "Task"}, description=wiki).key
        adf = jira3.issue(key).raw["fields"]["description"]
        kinds = [block["type"] for block in adf["content"]]
        assert kinds == ["heading", "paragraph", "bulletList", "orderedList", "blockquote", "rule"]
        assert adf["content"][1]["content"][-2] == {"type": "hardBreak"}
        nested = adf["content"][2]["content"][0]["content"][1]
        assert nested["type"] == "bulletList"
        link = adf["content"][1]["content"][1]
        assert link == {
            "type": "text",
            "text": "the spec",
            "marks": [{"type": "link", "attrs": {"href": "https://example.com/spec"}}],
        }
        assert jira.issue(key).fields.description == wiki

    def test_v3_adf_write_reads_as_wiki_on_v2(self, jira: JIRA, jira3: JIRA) -> None:
        """An ADF description written through v3 reads as wiki markup on v2, code block included."""
        adf = {
            "type": "doc",
            "version": 1,
            "content": [
                {"type": "paragraph", "content": [{"type": "text", "text": "bold", "marks": [{"type": "strong"}]}]},
                {"type": "codeBlock", "attrs": {"language": "python"}, "content": [{"type": "text", "text": "x = 1"}]},
            ],
        }
        key = jira3.create_issue(project="ENG", summary="ADF", issuetype={"name": "Task"}, description=adf).key
        assert jira.issue(key).fields.description == "*bold*\n\n{code:python}\nx = 1\n{code}"
        assert jira3.issue(key).raw["fields"]["description"] == adf

    def test_v3_rejects_a_plain_string_description(self, jira3: JIRA) -> None:
        """v3 wants an Atlassian Document; a string answers 400 on the description field."""
        with pytest.raises(JIRAError) as caught:
            jira3.create_issue(project="ENG", summary="x", issuetype={"name": "Task"}, description="plain")
        assert caught.value.status_code == 400
        assert "Atlassian Document" in error_json(caught.value)["errors"]["description"]


class TestTransitions:
    def test_available_transitions_follow_the_workflow(self, jira: JIRA) -> None:
        """GET transitions lists only those leaving the current status."""
        names = sorted(t["name"] for t in jira.transitions("ENG-3"))
        assert names == ["Approve", "Block", "Request changes"]

    def test_transition_fields_show_required_resolution(self, jira: JIRA) -> None:
        """``expand=transitions.fields`` shows the Approve screen's required resolution."""
        approve = next(t for t in jira.transitions("ENG-3", expand="transitions.fields") if t["name"] == "Approve")
        assert approve["fields"]["resolution"]["required"] is True

    def test_invalid_transition_for_the_status(self, jira: JIRA) -> None:
        """A transition not available from the current status is Jira's 400."""
        with pytest.raises(JIRAError) as caught:
            jira.transition_issue("ENG-2", "61")
        assert caught.value.status_code == 400
        assert error_json(caught.value)["errorMessages"] == ["Transition id '61' is not valid for this issue."]

    def test_transition_requiring_resolution(self, jira: JIRA) -> None:
        """Approve without resolution is 400; with it the issue is Done and resolved."""
        with pytest.raises(JIRAError) as caught:
            jira.transition_issue("ENG-3", "Approve")
        assert error_json(caught.value)["errors"] == {"resolution": "Resolution is required."}
        assert jira.issue("ENG-3").fields.status.name == "In Review"
        jira.transition_issue("ENG-3", "Approve", fields={"resolution": {"name": "Won't Do"}})
        issue = jira.issue("ENG-3")
        assert issue.fields.status.name == "Done"
        assert issue.raw["fields"]["resolution"]["name"] == "Won't Do"
        assert issue.fields.resolutiondate is not None

    def test_leaving_done_clears_resolution(self, jira: JIRA) -> None:
        """Reopen from Done clears the resolution and records it in the changelog."""
        jira.transition_issue("ENG-4", "Reopen")
        issue = jira.issue("ENG-4", expand="changelog")
        assert issue.fields.resolution is None
        items = [(i.field, i.fromString, i.toString) for i in issue.changelog.histories[-1].items]
        assert items == [("status", "Done", "To Do"), ("resolution", "Done", None)]

    def test_transitions_conform_to_the_spec(self, jira3: JIRA) -> None:
        """GET /rest/api/3/issue/{key}/transitions matches Transitions."""
        body = jira3._get_json("issue/ENG-3/transitions", params={"expand": "transitions.fields"})
        assert_conforms("jira", "get", "/rest/api/3/issue/{issueIdOrKey}/transitions", 200, body)


class TestChangelog:
    def test_every_change_is_recorded_with_author_and_items(self, emulator: JiraEmulator, jira: JIRA) -> None:
        """Edits and transitions produce histories with Jira's item fields, read via expand and /changelog."""
        jira.issue("ENG-2").update(summary="Pricing API, take two", assignee=None)
        jira.transition_issue("ENG-2", "Start work")
        issue = jira.issue("ENG-2", expand="changelog")
        histories = issue.changelog.histories
        assert [h.author.displayName for h in histories] == ["syncd bot", "syncd bot"]
        raw = issue.raw["changelog"]["histories"]
        first = {item["field"]: item for item in raw[0]["items"]}
        assert first["summary"]["fromString"] == "Pricing API for the partner portal"
        assert first["summary"]["toString"] == "Pricing API, take two"
        assert first["assignee"]["fromString"] == "Ben Okafor"
        assert first["assignee"]["from"] == emulator.state.users["ben@corp.example"].account_id
        status = raw[1]["items"][0]
        assert (status["fieldId"], status["fromString"], status["toString"]) == ("status", "To Do", "In Progress")
        paged = requests.get(
            f"{emulator.url}/rest/api/3/issue/ENG-2/changelog", params={"maxResults": 1}, auth=auth(), timeout=5
        ).json()
        assert (paged["total"], paged["isLast"], len(paged["values"])) == (2, False, 1)
        assert "nextPage" in paged

    def test_a_long_changelog_is_cut_to_its_recent_entries(self, emulator: JiraEmulator, jira: JIRA) -> None:
        """GET issue carries the latest 100 entries, a search result the latest 40, each with the full ``total``;
        only the paged resource has them all."""
        for n in range(105):
            jira.issue("ENG-3").update(summary=f"Take {n}")
        issue = jira.issue("ENG-3", expand="changelog").raw["changelog"]
        assert (issue["total"], issue["maxResults"], len(issue["histories"])) == (105, 100, 100)
        assert issue["histories"][-1]["items"][0]["toString"] == "Take 104"
        found = requests.get(
            f"{emulator.url}/rest/api/3/search/jql",
            params={"jql": "key = ENG-3", "fields": "summary", "expand": "changelog"},
            auth=auth(),
            timeout=5,
        ).json()["issues"][0]["changelog"]
        assert (found["total"], len(found["histories"])) == (105, 40)
        assert found["histories"][0]["items"][0]["toString"] == "Take 65"
        pages = [
            requests.get(
                f"{emulator.url}/rest/api/3/issue/ENG-3/changelog",
                params={"maxResults": 200, "startAt": start},
                auth=auth(),
                timeout=5,
            ).json()
            for start in (0, 100)
        ]
        assert [(len(page["values"]), page["isLast"]) for page in pages] == [(100, False), (5, True)]

    def test_noop_edit_records_nothing(self, jira: JIRA) -> None:
        """Writing the same value leaves the changelog empty."""
        jira.issue("ENG-1").update(summary="Launch page for the Q1 release")
        assert jira.issue("ENG-1", expand="changelog").changelog.total == 0


class TestComments:
    def test_comment_lifecycle(self, jira: JIRA) -> None:
        """Add, list, get, edit and delete a comment; ``updated`` and author fields follow."""
        before = jira.issue("ENG-5").fields.updated
        added = jira.add_comment("ENG-5", "Looks *good*")
        assert jira.issue("ENG-5").fields.updated > before
        assert added.body == "Looks *good*"
        assert added.author.displayName == "syncd bot"
        assert [c.id for c in jira.comments("ENG-5")] == [added.id]
        fetched = jira.comment("ENG-5", added.id)
        fetched.update(body="Looks great")
        assert jira.comment("ENG-5", added.id).body == "Looks great"
        fetched.delete()
        assert jira.comments("ENG-5") == []

    def test_comment_page_and_single_comment_conform(self, emulator: JiraEmulator, jira3: JIRA) -> None:
        """The v3 comment list and a single comment match PageOfComments and Comment."""
        jira3.add_comment("ENG-5", {"type": "doc", "version": 1, "content": []})
        page = jira3._get_json("issue/ENG-5/comment")
        assert page["total"] == 1
        assert_conforms("jira", "get", "/rest/api/3/issue/{issueIdOrKey}/comment", 200, page)
        comment_id = page["comments"][0]["id"]
        single = jira3._get_json(f"issue/ENG-5/comment/{comment_id}")
        assert_conforms("jira", "get", "/rest/api/3/issue/{issueIdOrKey}/comment/{id}", 200, single)

    def test_empty_comment_is_rejected(self, jira: JIRA) -> None:
        """A blank comment body is Jira's 400."""
        with pytest.raises(JIRAError) as caught:
            jira.add_comment("ENG-5", "")
        assert error_json(caught.value)["errors"] == {"comment": "Comment body can not be empty!"}


class TestProperties:
    def test_property_lifecycle(self, emulator: JiraEmulator, jira: JIRA) -> None:
        """PUT answers 201 when new and 200 when replaced; GET lists keys and values; DELETE removes."""
        created = jira.add_issue_property("ENG-6", "syncd", {"ref": "trello:1"})
        replaced = jira.add_issue_property("ENG-6", "syncd", {"ref": "trello:2"})
        assert (created.status_code, replaced.status_code) == (201, 200)
        assert [p.key for p in jira.issue_properties("ENG-6")] == ["syncd"]
        assert jira.issue_property("ENG-6", "syncd").raw["value"] == {"ref": "trello:2"}
        url = f"{emulator.url}/rest/api/2/issue/ENG-6/properties/syncd"
        assert requests.delete(url, auth=auth(), timeout=5).status_code == 204
        assert requests.get(url, auth=auth(), timeout=5).status_code == 404

    def test_properties_can_be_set_in_the_create_request(self, emulator: JiraEmulator, jira: JIRA) -> None:
        """POST issue with ``properties`` stores them atomically with the issue, as Jira does."""
        body = {
            "fields": {"project": {"key": "ENG"}, "summary": "With a marker", "issuetype": {"name": "Task"}},
            "properties": [{"key": "syncd", "value": {"sync_id": "s-1"}}],
        }
        created = requests.post(f"{emulator.url}/rest/api/2/issue", json=body, auth=auth(), timeout=5)
        assert created.status_code == 201
        key = created.json()["key"]
        assert jira.issue_property(key, "syncd").raw["value"] == {"sync_id": "s-1"}
        emulator.indexed_properties = {"syncd"}
        found = jira.search_issues('issue.property[syncd].sync_id = "s-1"')
        assert [issue.key for issue in found] == [key]

    def test_malformed_create_properties_are_a_400(self, emulator: JiraEmulator) -> None:
        """Properties that are not a list of {key, value} are refused, and no issue is created."""
        before = len(emulator.state.issues)
        body = {
            "fields": {"project": {"key": "ENG"}, "summary": "Bad", "issuetype": {"name": "Task"}},
            "properties": {"syncd": 1},
        }
        answer = requests.post(f"{emulator.url}/rest/api/2/issue", json=body, auth=auth(), timeout=5)
        assert answer.status_code == 400
        assert "properties" in answer.json()["errors"]
        assert len(emulator.state.issues) == before


class TestServerIssues:
    @pytest.fixture
    def server(self) -> Iterator[JIRA]:
        for emulator in started(server_seed()):
            sdk = JIRA(server=emulator.url, token_auth=emulator.credentials()["token"])
            yield sdk
            shut(sdk)

    def test_people_are_names_on_server(self, server: JIRA) -> None:
        """On Server, assignees are written and read by name, and the changelog records names."""
        issue = server.create_issue(
            project="ENG", summary="Server side", issuetype={"name": "Task"}, assignee={"name": "ben"}
        )
        fetched = server.issue(issue.key)
        assert fetched.raw["fields"]["assignee"]["name"] == "ben"
        assert "accountId" not in fetched.raw["fields"]["assignee"]
        fetched.update(assignee="chen")
        history = server.issue(issue.key, expand="changelog").raw["changelog"]["histories"][0]
        item = history["items"][0]
        assert (item["field"], item["from"], item["to"], item["toString"]) == ("assignee", "ben", "chen", "Chen Wei")
        assert history["author"]["name"] == "syncd-bot"

    def test_unknown_user_on_server(self, server: JIRA) -> None:
        """An unknown user name is Jira Server's per-field error."""
        with pytest.raises(JIRAError) as caught:
            server.issue("ENG-1").update(assignee="nobody")
        assert error_json(caught.value)["errors"] == {"assignee": "User 'nobody' does not exist."}
