"""Asana custom fields through the real asana SDK: definitions, task values by type, stories, events, errors."""

from __future__ import annotations

from typing import Any

import asana
import pytest
import requests

from sandbox.asana import AsanaEmulator
from sandbox.asana.model import CustomField
from sandbox.seed import SERVICE_ACCOUNT
from tests.conformance import assert_conforms
from tests.sandbox.asana.support import project_gid, task_gid
from tests.sandbox.asana.test_feed import events_since, sync_token


def raw(emulator: AsanaEmulator, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {emulator.credentials()['token']}"}
    return requests.request(method, emulator.api_url + path, headers=headers, timeout=10, **kwargs)


def field(emulator: AsanaEmulator, name: str) -> CustomField:
    found = emulator.state.find_custom_field(name)
    assert found is not None
    return found


def option(emulator: AsanaEmulator, field_name: str, name: str) -> str:
    return next(o.gid for o in field(emulator, field_name).enum_options if o.name == name)


def values(client: Any, gid: str) -> dict[str, Any]:
    """A task's custom field values by field name, read the way a connector asks for them."""
    fields = "custom_fields.name,custom_fields.display_value,custom_fields.enum_value.name,custom_fields.number_value"
    task = asana.TasksApi(client).get_task(gid, {"opt_fields": fields})
    return {entry["name"]: entry for entry in task["custom_fields"]}


class TestDefinitions:
    def test_project_settings_list_every_seeded_field(self, emulator: AsanaEmulator, client: Any) -> None:
        """GET /projects/{gid}/custom_field_settings: each setting carries its field, enum options included."""
        settings = list(
            asana.CustomFieldSettingsApi(client).get_custom_field_settings_for_project(project_gid(emulator), {})
        )
        kinds = {s["custom_field"]["name"]: s["custom_field"]["resource_subtype"] for s in settings}
        assert kinds == {
            "Priority": "enum", "Status": "enum", "Channels": "multi_enum", "Budget": "number",
            "Campaign code": "text", "Launch date": "date", "Reviewers": "people",
        }  # fmt: skip
        priority = next(s for s in settings if s["custom_field"]["name"] == "Priority")
        assert [o["name"] for o in priority["custom_field"]["enum_options"]] == ["High", "Medium", "Low"]
        assert priority["parent"]["gid"] == priority["project"]["gid"] == project_gid(emulator)
        assert priority["resource_type"] == "custom_field_setting"
        body = raw(emulator, "GET", f"/projects/{project_gid(emulator)}/custom_field_settings").json()
        assert_conforms("asana", "GET", "/projects/{project_gid}/custom_field_settings", 200, body)
        project = asana.ProjectsApi(client).get_project(project_gid(emulator), {})
        assert [s["gid"] for s in project["custom_field_settings"]] == [s["gid"] for s in settings]

    def test_workspace_listing_and_single_get(self, emulator: AsanaEmulator, client: Any) -> None:
        """GET /workspaces/{gid}/custom_fields is compact; GET /custom_fields/{gid} full, description opt-in."""
        ws = emulator.state.workspace.gid
        listed = list(asana.CustomFieldsApi(client).get_custom_fields_for_workspace(ws, {}))
        assert [f["name"] for f in listed][:2] == ["Priority", "Status"]
        body = raw(emulator, "GET", f"/workspaces/{ws}/custom_fields").json()
        assert_conforms("asana", "GET", "/workspaces/{workspace_gid}/custom_fields", 200, body)
        budget = field(emulator, "Budget").gid
        got = raw(emulator, "GET", f"/custom_fields/{budget}").json()
        assert_conforms("asana", "GET", "/custom_fields/{custom_field_gid}", 200, got)
        assert got["data"]["precision"] == 2
        assert "enum_options" not in got["data"]
        assert "description" not in got["data"]
        assert asana.CustomFieldsApi(client).get_custom_field(budget, {"opt_fields": "description"}) == {
            "gid": budget,
            "description": "",
        }
        missing = raw(emulator, "GET", "/custom_fields/1208999999999999")
        assert missing.status_code == 404
        assert_conforms("asana", "GET", "/custom_fields/{custom_field_gid}", 404, missing.json())


class TestTaskValues:
    def test_full_record_carries_each_type_and_conforms(self, emulator: AsanaEmulator, client: Any) -> None:
        """A task lists every field of its projects, with the value key of the field's type only."""
        gid = task_gid(emulator, "Social teaser campaign")
        body = raw(emulator, "GET", f"/tasks/{gid}").json()
        assert_conforms("asana", "GET", "/tasks/{task_gid}", 200, body)
        entries = {entry["name"]: entry for entry in body["data"]["custom_fields"]}
        assert entries["Priority"]["enum_value"]["name"] == "Medium"
        assert entries["Priority"]["gid"] == field(emulator, "Priority").gid
        assert entries["Channels"]["multi_enum_values"] == []
        assert entries["Budget"]["number_value"] == 1200
        assert entries["Budget"]["display_value"] == "1200.00"
        assert entries["Campaign code"]["text_value"] == "LAUNCH-Q1"
        assert entries["Launch date"]["date_value"] == {"date": "2027-01-20"}
        assert [p["name"] for p in entries["Reviewers"]["people_value"]] == ["Ana Lima"]
        assert "text_value" not in entries["Priority"]
        assert "enum_value" not in entries["Budget"]

    def test_people_are_written_by_gid_email_or_me(self, emulator: AsanaEmulator) -> None:
        """CustomFieldRequest.people_value: "user GIDs, emails, or the string "me"" (a hidden e-mail is refused)."""
        gid = task_gid(emulator, "Launch blog post")
        reviewers = field(emulator, "Reviewers").gid
        ben = emulator.state.users_by_email["ben@corp.example"].gid
        body = {"custom_fields": {reviewers: [ben, "Ana@corp.example", "me", "ana@corp.example"]}}
        response = raw(emulator, "PUT", f"/tasks/{gid}", json={"data": body})
        assert response.status_code == 200, response.text
        written = emulator.state.tasks[gid].custom_values[reviewers]
        assert isinstance(written, list)
        assert [getattr(user, "email", None) for user in written] == [
            "ben@corp.example",
            "ana@corp.example",
            SERVICE_ACCOUNT,
        ]
        emulator.hidden_emails.add("hana@corp.example")
        assert "Not a recognized ID or e-mail: hana@corp.example" in refused(
            emulator, gid, {reviewers: ["hana@corp.example"]}
        )

    def test_opt_fields_select_inside_custom_fields(self, emulator: AsanaEmulator, client: Any) -> None:
        """Named alone, custom_fields answers {gid, resource_type}; dotted paths pick the values; lists omit them."""
        gid = task_gid(emulator, "Launch blog post")
        bare = asana.TasksApi(client).get_task(gid, {"opt_fields": "custom_fields"})
        assert bare["custom_fields"][0] == {"gid": field(emulator, "Priority").gid, "resource_type": "custom_field"}
        picked = values(client, gid)
        assert picked["Priority"]["enum_value"] == {"gid": option(emulator, "Priority", "High"), "name": "High"}
        assert picked["Channels"]["display_value"] == "Web, Email"
        listed = list(asana.TasksApi(client).get_tasks_for_project(project_gid(emulator), {}))
        assert all("custom_fields" not in task for task in listed)

    def test_every_type_is_set_and_cleared_through_update_task(self, emulator: AsanaEmulator, client: Any) -> None:
        """PUT /tasks/{gid} custom_fields: one body form per type, null (or []) clears."""
        tasks = asana.TasksApi(client)
        gid = task_gid(emulator, "Webinar with partners")
        ana = emulator.state.users_by_email["ana@corp.example"].gid
        ben = emulator.state.users_by_email["ben@corp.example"].gid
        body = {
            field(emulator, "Priority").gid: option(emulator, "Priority", "Low"),
            field(emulator, "Channels").gid: [
                option(emulator, "Channels", "Web"),
                option(emulator, "Channels", "Events"),
            ],
            field(emulator, "Budget").gid: 2500.5,
            field(emulator, "Campaign code").gid: "WEB-7",
            field(emulator, "Launch date").gid: {"date": "2027-03-01"},
            field(emulator, "Reviewers").gid: [ana, ben],
        }
        updated = tasks.update_task({"data": {"custom_fields": body}}, gid, {})
        shown = {entry["name"]: entry["display_value"] for entry in updated["custom_fields"]}
        assert shown == {
            "Priority": "Low", "Status": None, "Channels": "Web, Events", "Budget": "2500.50",
            "Campaign code": "WEB-7", "Launch date": "2027-03-01", "Reviewers": "Ana Lima, Ben Okafor",
        }  # fmt: skip
        cleared: dict[str, object] = {key: [] if isinstance(value, list) else None for key, value in body.items()}
        updated = tasks.update_task({"data": {"custom_fields": cleared}}, gid, {})
        assert {entry["display_value"] for entry in updated["custom_fields"]} == {None}

    def test_create_with_values_in_a_project(self, emulator: AsanaEmulator, client: Any) -> None:
        """POST /tasks takes custom_fields of the projects it is created in, without change stories."""
        priority = field(emulator, "Priority").gid
        created = asana.TasksApi(client).create_task(
            {
                "data": {
                    "name": "Podcast",
                    "projects": [project_gid(emulator)],
                    "custom_fields": {priority: option(emulator, "Priority", "High")},
                }
            },
            {},
        )
        assert values(client, created["gid"])["Priority"]["display_value"] == "High"
        assert list(asana.StoriesApi(client).get_stories_for_task(created["gid"], {})) == []


class TestHistory:
    def test_changes_write_typed_stories_that_conform(self, emulator: AsanaEmulator, client: Any) -> None:
        """Each change writes a <type>_custom_field_changed story with old_/new_ values; no change, no story."""
        tasks = asana.TasksApi(client)
        gid = task_gid(emulator, "Launch blog post")
        priority, budget = field(emulator, "Priority").gid, field(emulator, "Budget").gid
        low = option(emulator, "Priority", "Low")
        tasks.update_task({"data": {"custom_fields": {priority: low, budget: 300}}}, gid, {})
        tasks.update_task({"data": {"custom_fields": {priority: low}}}, gid, {})  # unchanged: no story
        stories = list(asana.StoriesApi(client).get_stories_for_task(gid, {}))
        assert [s["resource_subtype"] for s in stories] == ["enum_custom_field_changed", "number_custom_field_changed"]
        enum_story = raw(emulator, "GET", f"/stories/{stories[0]['gid']}").json()
        assert_conforms("asana", "GET", "/stories/{story_gid}", 200, enum_story)
        assert enum_story["data"]["custom_field"]["name"] == "Priority"
        assert enum_story["data"]["old_enum_value"]["name"] == "High"
        assert enum_story["data"]["new_enum_value"]["name"] == "Low"
        assert enum_story["data"]["text"] == 'changed Priority to "Low"'
        number_story = raw(emulator, "GET", f"/stories/{stories[1]['gid']}").json()
        assert_conforms("asana", "GET", "/stories/{story_gid}", 200, number_story)
        assert number_story["data"]["old_number_value"] is None
        assert number_story["data"]["new_number_value"] == 300

    def test_events_name_the_field_and_move_modified_at(self, emulator: AsanaEmulator, client: Any) -> None:
        """The project's event stream says the task's custom_fields changed, naming the field (not the value)."""
        gid = task_gid(emulator, "Press kit")
        token = sync_token(client, project_gid(emulator))
        before = emulator.state.tasks[gid].modified_at
        emulator.clock.advance(5)
        emulator.act_as("hana@corp.example").set_field(gid, "Status", "At risk")
        assert emulator.state.tasks[gid].modified_at > before
        body = events_since(client, project_gid(emulator), token)
        change = next(e for e in body["data"] if e["action"] == "changed")
        assert change["parent"] is None  # the spec's Event prose: "Event.parent will be null" for a field change
        assert change["resource"]["gid"] == gid
        assert change["user"]["name"] == "Hana Sato"
        assert change["change"]["field"] == "custom_fields"
        assert change["change"]["new_value"]["gid"] == field(emulator, "Status").gid
        assert change["change"]["new_value"]["resource_type"] == "custom_field"


def refused(emulator: AsanaEmulator, gid: str, custom_fields: object) -> str:
    response = raw(emulator, "PUT", f"/tasks/{gid}", json={"data": {"name": "Changed", "custom_fields": custom_fields}})
    assert response.status_code == 400, response.text
    assert_conforms("asana", "PUT", "/tasks/{task_gid}", 400, response.json())
    message: str = response.json()["errors"][0]["message"]
    assert message.startswith("custom_fields: ")
    return message


class TestRefusals:
    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("Priority", "High"),  # an option's name, not its gid
            ("Priority", ["1"]),
            ("Channels", "Web"),  # multi_enum takes a list
            ("Budget", "12"),  # a numeric string is not a number
            ("Budget", True),
            ("Campaign code", 7),
            ("Launch date", "2027-01-01"),  # a date is {"date": ...}
            ("Launch date", {"date": "2027-02-30"}),
            ("Launch date", {"date_time": "2027-01-01T10:00:00Z"}),
            ("Reviewers", "ana@corp.example"),  # people takes a list
            ("Reviewers", ["nobody@corp.example"]),  # an e-mail nobody in the workspace has
            ("Reviewers", ["1208999999999999"]),
        ],
    )
    def test_a_wrong_value_refuses_the_whole_request(self, emulator: AsanaEmulator, name: str, value: object) -> None:
        """A value of the wrong type or an unknown option is a 400 naming the field, and nothing changes."""
        gid = task_gid(emulator, "Launch blog post")
        stories = len(emulator.state.stories)
        assert name in refused(emulator, gid, {field(emulator, name).gid: value})
        assert emulator.state.tasks[gid].name == "Launch blog post"
        assert len(emulator.state.stories) == stories

    def test_fields_not_on_the_task_and_bad_shapes(self, emulator: AsanaEmulator, client: Any) -> None:
        """A task outside the project has no fields; custom_fields must be an object; a disabled option is refused."""
        loose = asana.TasksApi(client).create_task(
            {"data": {"name": "Loose", "workspace": emulator.state.workspace.gid}}, {}
        )
        priority = field(emulator, "Priority")
        assert "is not on given object" in refused(emulator, loose["gid"], {priority.gid: priority.enum_options[0].gid})
        assert loose["custom_fields"] == []
        gid = task_gid(emulator, "Launch blog post")
        assert "Must be an object" in refused(emulator, gid, [priority.gid])
        priority.enum_options[2].enabled = False
        assert "disabled" in refused(emulator, gid, {priority.gid: priority.enum_options[2].gid})


class TestTags:
    def test_tasks_of_a_tag(self, emulator: AsanaEmulator, client: Any) -> None:
        """GET /tags/{gid}/tasks lists the tasks carrying the tag; addTag adds to it."""
        press = next(tag.gid for tag in emulator.state.tags.values() if tag.name == "press")
        tags_api = asana.TasksApi(client)
        assert {t["name"] for t in tags_api.get_tasks_for_tag(press, {})} == {"Press kit", "Analyst briefing"}
        gid = task_gid(emulator, "Newsletter January")
        tags_api.add_tag_for_task({"data": {"tag": press}}, gid)
        assert gid in {t["gid"] for t in tags_api.get_tasks_for_tag(press, {})}
        body = raw(emulator, "GET", f"/tags/{press}/tasks").json()
        assert_conforms("asana", "GET", "/tags/{tag_gid}/tasks", 200, body)
