"""The Jira emulator refuses what Jira refuses in the fields syncd writes: summary, labels, due date."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from sandbox.jira import JiraEmulator
from tests.conformance import assert_conforms
from tests.sandbox.jira.support import auth


def _create(emulator: JiraEmulator, **fields: Any) -> requests.Response:
    body = {"fields": {"project": {"key": "ENG"}, "issuetype": {"name": "Task"}, "summary": "Limits", **fields}}
    return requests.post(f"{emulator.url}/rest/api/2/issue", json=body, auth=auth(), timeout=5)


def _edit(emulator: JiraEmulator, key: str, **fields: Any) -> requests.Response:
    return requests.put(f"{emulator.url}/rest/api/2/issue/{key}", json={"fields": fields}, auth=auth(), timeout=5)


def _refused(response: requests.Response, field: str) -> str:
    """Jira's message for the one refused field of a 400 (and the body conforms to the spec's error shape)."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert_conforms("jira", "post", "/rest/api/3/issue", 400, body)
    assert list(body["errors"]) == [field]
    return str(body["errors"][field])


class TestSummary:
    def test_255_characters_are_taken_and_256_refused(self, emulator: JiraEmulator) -> None:
        """Jira answers 256 characters with "Summary must be less than 255 characters."; 255 is a summary."""
        assert _create(emulator, summary="s" * 255).status_code == 201
        refused = _create(emulator, summary="s" * 256)
        assert _refused(refused, "summary") == "Summary must be less than 255 characters."

    def test_characters_beyond_the_basic_plane_count_two(self, emulator: JiraEmulator) -> None:
        """Java counts UTF-16 code units: 128 emoji are 256 of them, one too many; 127 fit."""
        assert _create(emulator, summary="\U0001f680" * 127).status_code == 201
        assert _refused(_create(emulator, summary="\U0001f680" * 128), "summary").startswith("Summary must be less")

    def test_a_blank_summary_is_refused_on_create_and_edit(self, emulator: JiraEmulator) -> None:
        """Only spaces is no summary: "You must specify a summary of the issue." (an edit cannot blank it either)."""
        assert _refused(_create(emulator, summary="   "), "summary") == "You must specify a summary of the issue."
        key = _create(emulator).json()["key"]
        assert _refused(_edit(emulator, key, summary=" "), "summary") == "You must specify a summary of the issue."

    @pytest.mark.parametrize("summary", ["two\nlines", "two\rlines", "two\r\nlines"])
    def test_a_line_break_is_refused(self, emulator: JiraEmulator, summary: str) -> None:
        """A summary is one line."""
        assert "newline" in _refused(_create(emulator, summary=summary), "summary")


class TestLabels:
    @pytest.mark.parametrize("label", ["needs review", "tab\there", "nbsp\u00a0here"])
    def test_a_label_with_whitespace_is_refused(self, emulator: JiraEmulator, label: str) -> None:
        """Jira's answer quotes the label; any whitespace counts (the unfavourable reading of "spaces")."""
        message = _refused(_create(emulator, labels=["launch", label]), "labels")
        assert message == f"The label '{label}' contains spaces which is invalid."

    def test_255_characters_are_taken_and_256_refused(self, emulator: JiraEmulator) -> None:
        """Jira's own message for a label one character too long."""
        assert _create(emulator, labels=["l" * 255]).status_code == 201
        message = _refused(_create(emulator, labels=["l" * 256]), "labels")
        assert message == f"The label '{'l' * 256}' exceeds the maximum length for a single label of 255 characters."

    def test_an_edit_is_checked_like_a_create(self, emulator: JiraEmulator) -> None:
        """PUT refuses the same label, and the issue keeps its labels."""
        key = _create(emulator, labels=["launch"]).json()["key"]
        assert "contains spaces" in _refused(_edit(emulator, key, labels=["launch", "x y"]), "labels")
        assert emulator.state.issues[key].labels == ["launch"]


class TestDueDate:
    @pytest.mark.parametrize("due", ["1583-01-01", "2027-02-28", "9999-12-31"])
    def test_a_yyyy_mm_dd_day_is_taken(self, emulator: JiraEmulator, due: str) -> None:
        """The documented format, from the first day the sandbox trusts Jira with to the last four-digit one."""
        key = _create(emulator, duedate=due).json()["key"]
        issue = requests.get(f"{emulator.url}/rest/api/2/issue/{key}", auth=auth(), timeout=5).json()
        assert issue["fields"]["duedate"] == due

    @pytest.mark.parametrize("due", ["2027-3-1", "20270301", "2027-W09-1", "2027-02-30", "2027-03-01T10:00", "1"])
    def test_anything_but_yyyy_mm_dd_is_refused(self, emulator: JiraEmulator, due: str) -> None:
        """Only yyyy-MM-dd (what the spec documents), never the other forms Python's parser would also read."""
        assert _refused(_create(emulator, duedate=due), "duedate") == f"Error parsing date string: {due}"

    @pytest.mark.parametrize("due", ["0001-01-01", "1582-10-15", "1582-12-31"])
    def test_a_day_before_1583_is_refused(self, emulator: JiraEmulator, due: str) -> None:
        """No range is documented; before 1583 a day is Julian to Java (the unfavourable reading: refused)."""
        assert _refused(_create(emulator, duedate=due), "duedate") == f"Error parsing date string: {due}"

    def test_a_person_may_still_hold_year_1(self, emulator: JiraEmulator) -> None:
        """Old data or an import can hold it: a person (not the REST API) sets it, and the API reads it as is."""
        key = _create(emulator).json()["key"]
        emulator.act_as("ana@corp.example").update(key, duedate="0001-01-01")
        issue = requests.get(f"{emulator.url}/rest/api/2/issue/{key}", auth=auth(), timeout=5).json()
        assert issue["fields"]["duedate"] == "0001-01-01"
