"""Custom external data is OAuth-only and per app: personal access tokens neither set, see nor look it up."""

from __future__ import annotations

from typing import Any

import asana
import pytest
import requests
from asana.rest import ApiException

from sandbox.asana import AsanaEmulator
from tests.conformance import assert_conforms
from tests.sandbox.asana.support import oauth_client, project_gid, section_gid, task_gid


def raw(emulator: AsanaEmulator, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token or emulator.credentials()['token']}"}
    return requests.request(method, emulator.api_url + path, headers=headers, timeout=10, **kwargs)


def new_task(tasks: Any, emulator: AsanaEmulator, **fields: Any) -> dict[str, Any]:
    created: dict[str, Any] = tasks.create_task({"data": {"projects": [project_gid(emulator)], **fields}}, {})
    return created


class TestOAuthApps:
    def test_oauth_token_authenticates_as_the_person(self, emulator: AsanaEmulator) -> None:
        """An OAuth token acts as the person who granted it, is stable per (person, app), differs per app."""
        token = emulator.oauth_token("ana@corp.example")
        assert token == emulator.oauth_token("ana@corp.example", "syncd-test-app")
        assert token != emulator.oauth_token("ana@corp.example", "other-app")
        me = raw(emulator, "GET", "/users/me", token).json()["data"]
        assert me["email"] == "ana@corp.example"

    def test_app_sets_reads_updates_clears_and_looks_up(self, emulator: AsanaEmulator) -> None:
        """With OAuth, external is stored, rendered, usable as ``external:<gid>`` anywhere a task gid is, cleared."""
        tasks = asana.TasksApi(oauth_client(emulator))
        created = new_task(tasks, emulator, name="Linked", external={"gid": "ENG-1", "data": "{}"})
        assert created["external"] == {"gid": "ENG-1", "data": "{}"}
        assert tasks.get_task("external:ENG-1", {"opt_fields": "name"}) == {"gid": created["gid"], "name": "Linked"}
        updated = tasks.update_task({"data": {"external": {"gid": "ENG-2"}}}, "external:ENG-1", {})
        assert updated["external"] == {"gid": "ENG-2"}
        stories = asana.StoriesApi(oauth_client(emulator))
        stories.create_story_for_task({"data": {"text": "via external"}}, "external:ENG-2", {})
        backlog = asana.SectionsApi(oauth_client(emulator))
        backlog.add_task_for_section(section_gid(emulator, "Shipped"), {"body": {"data": {"task": "external:ENG-2"}}})
        assert emulator.state.tasks[created["gid"]].memberships[0].section.name == "Shipped"
        cleared = tasks.update_task({"data": {"external": None}}, created["gid"], {})
        assert "external" not in cleared
        assert tasks.get_task(created["gid"], {"opt_fields": "external"}) == {"gid": created["gid"], "external": None}

    def test_external_data_is_invisible_to_other_apps(self, emulator: AsanaEmulator) -> None:
        """Data one app set is not another app's: not rendered, not resolvable; each app keeps its own."""
        first = asana.TasksApi(oauth_client(emulator, "app-one"))
        second = asana.TasksApi(oauth_client(emulator, "app-two"))
        created = new_task(first, emulator, name="Shared", external={"gid": "X-1", "data": "one"})
        assert "external" not in second.get_task(created["gid"], {})
        assert second.get_task(created["gid"], {"opt_fields": "external"})["external"] is None
        with pytest.raises(ApiException) as unknown:
            second.get_task("external:X-1", {})
        assert unknown.value.status == 404
        second.update_task({"data": {"external": {"gid": "X-1", "data": "two"}}}, created["gid"], {})
        assert first.get_task("external:X-1", {"opt_fields": "external"})["external"] == {"gid": "X-1", "data": "one"}
        assert second.get_task("external:X-1", {"opt_fields": "external"})["external"] == {"gid": "X-1", "data": "two"}

    def test_caps_of_the_docs_are_enforced(self, emulator: AsanaEmulator) -> None:
        """A gid over 1,024 or data over 32,768 characters is a 400, and nothing of the request is applied."""
        token = emulator.oauth_token("ana@corp.example")
        gid = task_gid(emulator, "Press kit")
        too_long = {"name": "renamed", "external": {"gid": "g" * 1025}}
        response = raw(emulator, "PUT", f"/tasks/{gid}", token, json={"data": too_long})
        assert response.status_code == 400
        assert response.json()["errors"][0]["message"] == "external.gid: Must be at most 1024 characters"
        assert emulator.state.tasks[gid].name == "Press kit"
        body = {"data": {"name": "x", "projects": [project_gid(emulator)], "external": {"data": "d" * 32769}}}
        assert raw(emulator, "POST", "/tasks", token, json=body).status_code == 400
        body["data"]["external"] = {"gid": "g" * 1024, "data": "d" * 32768}
        assert raw(emulator, "POST", "/tasks", token, json=body).status_code == 201


class TestPersonalAccessTokens:
    def test_external_is_dropped_silently(self, emulator: AsanaEmulator, client: Any) -> None:
        """A PAT's external is accepted without error and not stored: no app will ever see it."""
        tasks = asana.TasksApi(client)
        created = new_task(tasks, emulator, name="Plain", external={"gid": "PAT-1", "data": "lost"})
        assert "external" not in created
        assert emulator.state.tasks[created["gid"]].externals == {}
        before = emulator.state.tasks[created["gid"]].modified_at
        updated = tasks.update_task({"data": {"external": {"gid": "PAT-2"}}}, created["gid"], {})
        assert "external" not in updated
        assert emulator.state.tasks[created["gid"]].modified_at == before
        assert raw(emulator, "PUT", f"/tasks/{created['gid']}", json={"data": {"external": "junk"}}).status_code == 200
        with pytest.raises(ApiException) as missing:
            asana.TasksApi(oauth_client(emulator)).get_task("external:PAT-1", {})
        assert missing.value.status == 404

    def test_external_is_never_rendered(self, emulator: AsanaEmulator, client: Any) -> None:
        """Data an app set stays hidden from a PAT, in full records, opt_fields and lists."""
        app = asana.TasksApi(oauth_client(emulator))
        created = new_task(app, emulator, name="Hidden", external={"gid": "H-1", "data": "secret"})
        tasks = asana.TasksApi(client)
        assert "external" not in tasks.get_task(created["gid"], {})
        assert tasks.get_task(created["gid"], {"opt_fields": "name,external"}) == {
            "gid": created["gid"],
            "name": "Hidden",
        }
        listed = tasks.get_tasks_for_project(project_gid(emulator), {"opt_fields": "external"})
        assert all("external" not in task for task in listed)
        asana.StoriesApi(client).create_story_for_task({"data": {"text": "seen"}}, created["gid"], {})
        stories = raw(emulator, "GET", f"/tasks/{created['gid']}/stories", params={"opt_fields": "target.external"})
        assert [s["target"] for s in stories.json()["data"]] == [{"gid": created["gid"]}]

    def test_external_references_are_unknown_tasks(self, emulator: AsanaEmulator) -> None:
        """``external:<gid>`` answers a PAT 404 as an unknown task does, on every route taking a task gid."""
        new_task(asana.TasksApi(oauth_client(emulator)), emulator, name="Ref", external={"gid": "R-1"})
        get = raw(emulator, "GET", "/tasks/external:R-1")
        assert get.status_code == 404
        assert get.json()["errors"][0]["message"] == "task: Unknown object: external:R-1"
        assert_conforms("asana", "GET", "/tasks/{task_gid}", 404, get.json())
        assert raw(emulator, "PUT", "/tasks/external:R-1", json={"data": {"name": "x"}}).status_code == 404
        assert raw(emulator, "DELETE", "/tasks/external:R-1").status_code == 404
        assert raw(emulator, "GET", "/tasks/external:R-1/stories").status_code == 404
        comment = raw(emulator, "POST", "/tasks/external:R-1/stories", json={"data": {"text": "hi"}})
        assert comment.status_code == 404
        move = {"data": {"task": "external:R-1"}}
        assert (
            raw(emulator, "POST", f"/sections/{section_gid(emulator, 'Shipped')}/addTask", json=move).status_code == 404
        )
        assert raw(emulator, "GET", "/attachments", params={"parent": "external:R-1"}).status_code == 404
