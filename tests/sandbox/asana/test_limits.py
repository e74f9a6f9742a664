"""Asana's documented limits on the values syncd writes, each refused with Asana's 400 naming the field."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from sandbox.asana import AsanaEmulator
from sandbox.asana.edits import MAX_PROJECTS
from sandbox.asana.model import Project
from tests.conformance import assert_conforms
from tests.sandbox.asana.support import project_gid, task_gid


def put_task(emulator: AsanaEmulator, gid: str, data: dict[str, Any]) -> requests.Response:
    headers = {"Authorization": f"Bearer {emulator.credentials()['token']}"}
    return requests.put(f"{emulator.api_url}/tasks/{gid}", json={"data": data}, headers=headers, timeout=10)


def refusal(response: requests.Response, method: str, path: str) -> str:
    """The message of a 400 that has Asana's error shape."""
    assert response.status_code == 400, response.text
    assert_conforms("asana", method, path, 400, response.json())
    message: str = response.json()["errors"][0]["message"]
    return message


class TestTaskValues:
    @pytest.mark.parametrize(
        ("data", "field"),
        [
            ({"due_on": "20270201"}, "due_on"),  # ISO 8601 basic format: not YYYY-MM-DD
            ({"due_on": "2027-W05-1"}, "due_on"),  # an ISO week date
            ({"due_on": "2027-02-30"}, "due_on"),
            ({"due_on": "2027-2-1"}, "due_on"),
            ({"due_on": "2027-02-01T00:00:00Z"}, "due_on"),
            ({"due_on": "2027-02-01", "start_on": "27-01-01"}, "start_on"),
            ({"due_at": "2027-02-01T15:00:00"}, "due_at"),  # no zone: not "in UTC"
            ({"due_at": "2027-02-01T15:00:00+02:00"}, "due_at"),
            ({"due_at": "tomorrow"}, "due_at"),
            ({"html_notes": "<body>an <b>unsupported</b> tag</body>"}, "html_notes"),
            ({"html_notes": "<body>unclosed <em>emphasis</body>"}, "html_notes"),
            ({"html_notes": "no body"}, "html_notes"),
        ],
    )
    def test_a_refused_value_is_a_400_naming_the_field(
        self, emulator: AsanaEmulator, data: dict[str, Any], field: str
    ) -> None:
        """Dates are exactly YYYY-MM-DD, due_at is in UTC, html_notes is Asana's XML; the task stays as it was."""
        gid = task_gid(emulator, "Launch blog post")
        message = refusal(put_task(emulator, gid, data), "PUT", "/tasks/{task_gid}")
        assert message.startswith(f"{field}: ")
        task = emulator.state.tasks[gid]
        assert (str(task.due_on), task.due_at, task.html_notes) == (
            "2027-01-14",
            None,
            "<body>Outline the release story.</body>",
        )

    def test_accepted_forms(self, emulator: AsanaEmulator) -> None:
        """The documented forms pass: YYYY-MM-DD, a UTC instant with Z (or +00:00, the same instant)."""
        gid = task_gid(emulator, "Launch blog post")
        assert put_task(emulator, gid, {"due_on": "2027-02-28"}).status_code == 200
        assert put_task(emulator, gid, {"due_at": "2027-02-01T15:00:00.000Z"}).status_code == 200
        assert put_task(emulator, gid, {"due_at": "2027-02-01T15:00:00+00:00"}).status_code == 200


class TestProjectsAndTags:
    def test_a_task_is_in_at_most_20_projects(self, emulator: AsanaEmulator) -> None:
        """addProject's documented cap: the 21st project is refused, on addProject and on create."""
        state = emulator.state
        extra = []
        for n in range(MAX_PROJECTS):
            project = Project(
                gid=state.new_gid(), name=f"P{n}", workspace=state.workspace, owner=None,
                created_at=state.now(), modified_at=state.now(),
            )  # fmt: skip
            state.projects[project.gid] = project
            state.add_section(project, "Untitled section")
            extra.append(project.gid)
        headers = {"Authorization": f"Bearer {emulator.credentials()['token']}"}
        gid = task_gid(emulator, "Launch blog post")  # already in the seeded project
        for project_ref in extra[:-1]:
            url = f"{emulator.api_url}/tasks/{gid}/addProject"
            assert requests.post(url, json={"data": {"project": project_ref}}, headers=headers, timeout=10).ok
        url = f"{emulator.api_url}/tasks/{gid}/addProject"
        refused = requests.post(url, json={"data": {"project": extra[-1]}}, headers=headers, timeout=10)
        assert refusal(refused, "POST", "/tasks/{task_gid}/addProject").startswith("project: ")
        assert len(emulator.state.tasks[gid].memberships) == MAX_PROJECTS
        body = {"data": {"name": "Everywhere", "projects": [project_gid(emulator), *extra]}}
        created = requests.post(f"{emulator.api_url}/tasks", json=body, headers=headers, timeout=10)
        assert refusal(created, "POST", "/tasks").startswith("projects: ")
        assert "Everywhere" not in {task.name for task in emulator.state.tasks.values()}

    def test_a_tag_color_is_one_of_the_spec(self, emulator: AsanaEmulator) -> None:
        """A tag's color is one of TagBase's enum or null; any other is refused naming ``color``."""
        headers = {"Authorization": f"Bearer {emulator.credentials()['token']}"}
        url = f"{emulator.api_url}/workspaces/{emulator.state.workspace.gid}/tags"
        refused = requests.post(url, json={"data": {"name": "video", "color": "red"}}, headers=headers, timeout=10)
        assert refusal(refused, "POST", "/workspaces/{workspace_gid}/tags").startswith("color: ")
        listed = requests.post(url, json={"data": {"name": "video", "color": ["red"]}}, headers=headers, timeout=10)
        assert refusal(listed, "POST", "/workspaces/{workspace_gid}/tags").startswith("color: ")
        for color in ("light-green", None):
            made = requests.post(url, json={"data": {"name": "video", "color": color}}, headers=headers, timeout=10)
            assert made.status_code == 201
