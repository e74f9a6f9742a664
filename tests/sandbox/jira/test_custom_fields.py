"""Jira custom fields and priority through python-jira and plain HTTP: /field, contexts, values, edits, errors."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from jira import JIRA, JIRAError

from sandbox.jira import JiraEmulator
from tests.conformance import assert_conforms
from tests.sandbox.jira.support import auth, client, error_json, server_seed, shut, started

SEGMENT = "customfield_10003"


def field_ids(jira: JIRA) -> dict[str, str]:
    """What a connector does at start: resolve custom field names to ids through GET /field."""
    return {f["name"]: f["id"] for f in jira.fields() if f["custom"]}


def get(emulator: JiraEmulator, path: str, **params: str) -> requests.Response:
    return requests.get(f"{emulator.url}{path}", params=params, auth=auth(), timeout=10)


class TestDefinitions:
    def test_field_list_has_custom_fields_with_their_schema(self, emulator: JiraEmulator, jira: JIRA) -> None:
        """GET /field lists priority and every custom field with Jira's type keys and customId; it conforms."""
        listed = {f["id"]: f for f in jira.fields()}
        assert listed["priority"]["schema"] == {"type": "priority", "system": "priority"}
        assert listed[SEGMENT]["name"] == "Segment"
        assert listed[SEGMENT]["schema"] == {
            "type": "option",
            "custom": "com.atlassian.jira.plugin.system.customfieldtypes:select",
            "customId": 10003,
        }
        kinds = {
            f["name"]: (f["schema"]["type"], f["schema"]["custom"].rsplit(":", 1)[1])
            for f in listed.values()
            if f["custom"]
        }
        assert kinds == {
            "Customer": ("string", "textfield"), "Deal size": ("number", "float"), "Segment": ("option", "select"),
            "Regions": ("array", "multiselect"), "Launch date": ("date", "datepicker"),
            "Account manager": ("user", "userpicker"), "Themes": ("array", "labels"),
        }  # fmt: skip
        assert listed["customfield_10004"]["schema"]["items"] == "option"
        assert_conforms("jira", "get", "/rest/api/3/field", 200, get(emulator, "/rest/api/3/field").json())

    def test_contexts_and_options(self, emulator: JiraEmulator) -> None:
        """A select field's one global context and its options (id, value, disabled), both pages conforming."""
        contexts = get(emulator, f"/rest/api/3/field/{SEGMENT}/context").json()
        assert_conforms("jira", "get", "/rest/api/3/field/{fieldId}/context", 200, contexts)
        (context,) = contexts["values"]
        assert context["isGlobalContext"] is True
        options = get(emulator, f"/rest/api/3/field/{SEGMENT}/context/{context['id']}/option").json()
        assert_conforms("jira", "get", "/rest/api/3/field/{fieldId}/context/{contextId}/option", 200, options)
        assert [(o["value"], o["disabled"]) for o in options["values"]] == [
            ("Enterprise", False), ("Mid-market", False), ("SMB", False),
        ]  # fmt: skip
        assert get(emulator, f"/rest/api/3/field/customfield_10001/context/{context['id']}/option").status_code == 404
        text_context = get(emulator, "/rest/api/3/field/customfield_10001/context").json()["values"][0]["id"]
        assert get(emulator, f"/rest/api/3/field/customfield_10001/context/{text_context}/option").status_code == 400
        assert get(emulator, "/rest/api/3/field/customfield_99999/context").status_code == 404

    def test_editmeta_gives_allowed_values_and_priorities(self, emulator: JiraEmulator, jira: JIRA) -> None:
        """GET issue/{key}/editmeta: select options and the five priorities as allowedValues; it conforms."""
        meta = jira.editmeta("ENG-1")["fields"]
        assert [p["name"] for p in meta["priority"]["allowedValues"]] == ["Highest", "High", "Medium", "Low", "Lowest"]
        assert [o["value"] for o in meta[SEGMENT]["allowedValues"]] == ["Enterprise", "Mid-market", "SMB"]
        assert meta["customfield_10007"]["operations"] == ["add", "set", "remove"]
        body = get(emulator, "/rest/api/3/issue/ENG-1/editmeta").json()
        assert_conforms("jira", "get", "/rest/api/3/issue/{issueIdOrKey}/editmeta", 200, body)

    def test_priorities(self, jira: JIRA) -> None:
        """GET /priority: Jira's five, with ids; an issue carries {id, name}."""
        assert [(p.id, p.name) for p in jira.priorities()] == [
            ("1", "Highest"), ("2", "High"), ("3", "Medium"), ("4", "Low"), ("5", "Lowest"),
        ]  # fmt: skip
        priority = jira.issue("ENG-2").fields.priority
        assert (priority.id, priority.name) == ("1", "Highest")


class TestValues:
    def test_seeded_values_in_every_shape(self, emulator: JiraEmulator, jira: JIRA) -> None:
        """Issue fields carry each type's shape; an empty field is null; the issue conforms to the spec."""
        ids = field_ids(jira)
        raw = jira.issue("ENG-3").raw["fields"]
        assert raw[ids["Customer"]] == "Acme Foods"
        assert raw[ids["Deal size"]] == 48000.0
        assert {k: raw[ids["Segment"]][k] for k in ("id", "value")} == {"id": "10100", "value": "Enterprise"}
        assert raw[ids["Segment"]]["self"].endswith("/rest/api/2/customFieldOption/10100")
        assert [o["value"] for o in raw[ids["Regions"]]] == ["EMEA", "Americas"]
        assert raw[ids["Account manager"]]["displayName"] == "Eli Navarro"
        assert raw[ids["Launch date"]] is None
        assert raw[ids["Themes"]] is None
        body = get(emulator, "/rest/api/3/issue/ENG-3", expand="names,schema").json()
        assert body["names"][SEGMENT] == "Segment"
        assert body["schema"][SEGMENT]["customId"] == 10003
        assert_conforms("jira", "get", "/rest/api/3/issue/{issueIdOrKey}", 200, body)
        only = get(emulator, "/rest/api/2/issue/ENG-3", fields=f"summary,{SEGMENT}").json()["fields"]
        assert set(only) == {"summary", SEGMENT}

    def test_every_type_is_set_and_cleared_with_a_changelog(self, emulator: JiraEmulator, jira: JIRA) -> None:
        """PUT issue fields set each type and move ``updated``; each change is a custom changelog item."""
        ids = field_ids(jira)
        issue = jira.issue("ENG-6")
        before = issue.fields.updated
        emulator.clock.advance(60)
        gus = emulator.state.users["gus@corp.example"].account_id
        values: dict[str, Any] = {
            ids["Customer"]: "Globex", ids["Deal size"]: 1250.5, ids["Segment"]: {"value": "SMB"},
            ids["Regions"]: [{"id": "10105"}], ids["Launch date"]: "2027-03-01",
            ids["Account manager"]: {"accountId": gus}, ids["Themes"]: ["pricing", "q1"],
            "priority": {"name": "Highest"},
        }  # fmt: skip
        issue.update(fields=values)
        raw = jira.issue("ENG-6").raw["fields"]
        assert raw["updated"] != before
        assert raw["priority"]["name"] == "Highest"
        assert raw[ids["Segment"]]["value"] == "SMB"
        assert [o["value"] for o in raw[ids["Regions"]]] == ["APAC"]
        assert raw[ids["Launch date"]] == "2027-03-01"
        assert raw[ids["Themes"]] == ["pricing", "q1"]
        assert raw[ids["Deal size"]] == 1250.5
        jira.issue("ENG-6").update(update={ids["Themes"]: [{"add": "web"}, {"remove": "q1"}]})
        assert jira.issue("ENG-6").raw["fields"][ids["Themes"]] == ["pricing", "web"]
        jira.issue("ENG-6").update(fields={ids["Segment"]: None, ids["Regions"]: [], ids["Customer"]: None})
        history = jira.issue("ENG-6", expand="changelog").raw["changelog"]["histories"]
        items = [item for h in history for item in h["items"]]
        segment = [i for i in items if i["fieldId"] == ids["Segment"]]
        assert segment[0] == {
            "field": "Segment", "fieldtype": "custom", "fieldId": ids["Segment"], "from": None, "fromString": None,
            "to": "10102", "toString": "SMB",
        }  # fmt: skip
        assert segment[1]["fromString"] == "SMB"
        assert segment[1]["to"] is None
        assert any(i["field"] == "priority" and i["toString"] == "Highest" for i in items)
        assert jira.issue("ENG-6").raw["fields"][ids["Segment"]] is None

    def test_a_search_returns_custom_fields_and_the_updated_feed_sees_edits(
        self, emulator: JiraEmulator, jira: JIRA
    ) -> None:
        """A JQL ``updated`` window finds an issue whose only change was a custom field."""
        emulator.clock.advance(120)
        since = int(emulator.clock.now().timestamp() * 1000)
        emulator.clock.advance(60)
        jira.issue("ENG-10").update(fields={SEGMENT: {"id": "10101"}})
        found = jira.enhanced_search_issues(f"updated >= {since}", fields=f"summary,{SEGMENT}")
        assert [(i.key, i.raw["fields"][SEGMENT]["value"]) for i in found] == [("ENG-10", "Mid-market")]


class TestRefusals:
    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            (SEGMENT, {"value": "Huge"}, "Option value 'Huge' is not valid"),
            (SEGMENT, {"id": "10105"}, "Option id '10105' is not valid"),  # another field's option
            (SEGMENT, "Enterprise", "Could not find valid 'id' or 'value' in the Parent Option object."),
            ("customfield_10004", {"value": "EMEA"}, "data was not an array"),
            ("customfield_10002", "48000", "Operation value must be a number"),
            ("customfield_10001", 7, "Operation value must be a string"),
            (
                "customfield_10001",
                "x" * 256,
                "The entered text is too long. It exceeds the allowed limit of 255 characters.",
            ),
            ("customfield_10005", "01/03/2027", "Error parsing date string: 01/03/2027"),
            (
                "customfield_10006",
                {"accountId": "nobody"},
                "Specified user does not exist or you do not have required permissions",
            ),
            ("customfield_10007", ["two words"], "The label 'two words' contains spaces which is invalid."),
            ("priority", {"name": "Urgent"}, "The priority selected is invalid."),
            (
                "customfield_19999",
                "x",
                "Field 'customfield_19999' cannot be set. It is not on the appropriate screen, or unknown.",
            ),
        ],
    )
    def test_a_bad_value_is_a_400_naming_the_field(
        self, emulator: JiraEmulator, jira: JIRA, field: str, value: object, message: str
    ) -> None:
        """Jira's {"errorMessages": [], "errors": {<field>: ...}}, and the whole edit is refused."""
        with pytest.raises(JIRAError) as refused:
            jira.issue("ENG-1").update(fields={"summary": "Renamed", field: value})
        assert refused.value.status_code == 400
        assert error_json(refused.value) == {"errorMessages": [], "errors": {field: message}}
        assert jira.issue("ENG-1").fields.summary == "Launch page for the Q1 release"

    def test_a_disabled_option_cannot_be_chosen(self, emulator: JiraEmulator, jira: JIRA) -> None:
        """Disabled options stay listed (disabled: true) and stop being valid values."""
        definition = emulator.state.custom_fields[SEGMENT]
        definition.options[2] = type(definition.options[2])("10102", "SMB", disabled=True)
        with pytest.raises(JIRAError) as refused:
            jira.issue("ENG-1").update(fields={SEGMENT: {"value": "SMB"}})
        assert error_json(refused.value)["errors"] == {SEGMENT: "Option value 'SMB' is not valid"}
        assert [o["value"] for o in jira.editmeta("ENG-1")["fields"][SEGMENT]["allowedValues"]] == [
            "Enterprise",
            "Mid-market",
        ]


def test_server_has_no_context_api_but_editmeta_and_values() -> None:
    """Jira Server: /field and editmeta carry the custom fields; the Cloud context resource is a 404."""
    for emulator in started(server_seed()):
        sdk = client(emulator)
        try:
            assert SEGMENT in {f["id"] for f in sdk.fields()}
            assert get(emulator, f"/rest/api/2/field/{SEGMENT}/context").status_code == 404
            sdk.issue("ENG-1").update(fields={"customfield_10006": {"name": "gus"}})
            assert sdk.issue("ENG-1").raw["fields"]["customfield_10006"]["name"] == "gus"
        finally:
            shut(sdk)
