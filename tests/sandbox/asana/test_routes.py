"""The Asana emulator through the real asana SDK: users, projects, sections, tasks, tags, stories, conformance."""

from __future__ import annotations

from typing import Any

import asana
import pytest
import requests
from asana.rest import ApiException

from sandbox.asana import AsanaEmulator
from sandbox.seed import SERVICE_ACCOUNT
from tests.conformance import assert_conforms
from tests.sandbox.asana.support import oauth_client, project_gid, section_gid, task_gid


def raw(emulator: AsanaEmulator, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {emulator.credentials()['token']}"}
    return requests.request(method, emulator.api_url + path, headers=headers, timeout=10, **kwargs)


class TestUsersAndWorkspaces:
    def test_me_is_the_service_account(self, emulator: AsanaEmulator, client: Any) -> None:
        """GET /users/me answers the token's user with e-mail, photo and workspaces."""
        me = asana.UsersApi(client).get_user("me", {})
        assert me["email"] == SERVICE_ACCOUNT
        assert me["photo"] is None
        assert me["workspaces"] == [
            {"gid": emulator.state.workspace.gid, "resource_type": "workspace", "name": "corp.example"}
        ]

    def test_users_of_workspace_and_by_gid(self, emulator: AsanaEmulator, client: Any) -> None:
        """Every seeded person is a user of the workspace, reachable by gid and by e-mail."""
        workspace = asana.WorkspacesApi(client).get_workspaces({})
        gid = next(iter(workspace))["gid"]
        assert asana.WorkspacesApi(client).get_workspace(gid, {})["name"] == "corp.example"
        users = list(asana.UsersApi(client).get_users_for_workspace(gid, {"opt_fields": "email"}))
        assert len(users) == 9
        listed = list(asana.UsersApi(client).get_users({"workspace": gid}))
        assert {u["gid"] for u in listed} == {u["gid"] for u in users}
        ana = next(u for u in users if u["email"] == "ana@corp.example")
        assert asana.UsersApi(client).get_user(ana["gid"], {})["name"] == "Ana Lima"
        assert asana.UsersApi(client).get_user("ana@corp.example", {})["gid"] == ana["gid"]

    def test_bad_token_is_401_with_asana_error_body(self, emulator: AsanaEmulator) -> None:
        """Unknown bearer tokens get 401 and the errors/help body."""
        response = requests.get(emulator.api_url + "/users/me", headers={"Authorization": "Bearer nope"}, timeout=5)
        assert response.status_code == 401
        assert response.json()["errors"][0]["message"] == "Not Authorized"
        assert "developers.asana.com/docs/errors" in response.json()["errors"][0]["help"]


class TestProjectsAndSections:
    def test_projects_of_workspace(self, emulator: AsanaEmulator, client: Any) -> None:
        """Projects list compact records; the single GET has members and custom_field_settings."""
        ws = emulator.state.workspace.gid
        listed = list(asana.ProjectsApi(client).get_projects({"workspace": ws}))
        assert listed == [{"gid": project_gid(emulator), "resource_type": "project", "name": "Marketing Launches"}]
        assert list(asana.ProjectsApi(client).get_projects_for_workspace(ws, {})) == listed
        project = asana.ProjectsApi(client).get_project(project_gid(emulator), {})
        assert {m["name"] for m in project["members"]} == {"Gus Petersen", "Hana Sato", "Ana Lima", "Eli Navarro"}
        settings = asana.CustomFieldSettingsApi(client).get_custom_field_settings_for_project(project_gid(emulator), {})
        assert [s["gid"] for s in project["custom_field_settings"]] == [s["gid"] for s in settings]

    def test_sections_list_create_and_get(self, emulator: AsanaEmulator, client: Any) -> None:
        """Sections come in board order; a new one can be inserted before another."""
        sections_api = asana.SectionsApi(client)
        gid = project_gid(emulator)
        names = [s["name"] for s in sections_api.get_sections_for_project(gid, {})]
        assert names == ["Backlog", "In progress", "Shipped"]
        body = {"data": {"name": "Review", "insert_before": section_gid(emulator, "Shipped")}}
        created = sections_api.create_section_for_project(gid, {"body": body})
        assert created["name"] == "Review"
        names = [s["name"] for s in sections_api.get_sections_for_project(gid, {})]
        assert names == ["Backlog", "In progress", "Review", "Shipped"]
        section = sections_api.get_section(created["gid"], {})
        assert section["project"]["gid"] == gid
        assert_conforms("asana", "GET", "/sections/{section_gid}", 200, {"data": section})


class TestTasks:
    def test_create_get_update_delete(self, emulator: AsanaEmulator) -> None:
        """A task round-trips through POST, GET, PUT and DELETE: assignee by e-mail, a section, external (OAuth)."""
        tasks = asana.TasksApi(oauth_client(emulator))
        body = {
            "data": {
                "name": "Podcast launch episode",
                "notes": "Book <the> studio & guests",
                "assignee": "hana@corp.example",
                "due_on": "2027-02-01",
                "memberships": [{"project": project_gid(emulator), "section": section_gid(emulator, "In progress")}],
                "external": {"gid": "ENG-42", "data": '{"sync": 1}'},
            }
        }
        created = tasks.create_task(body, {})
        assert created["assignee"]["name"] == "Hana Sato"
        assert created["memberships"][0]["section"]["name"] == "In progress"
        assert created["external"] == {"gid": "ENG-42", "data": '{"sync": 1}'}
        got = tasks.get_task(created["gid"], {"opt_fields": "html_notes,notes,due_on,due_at"})
        assert got["html_notes"] == "<body>Book &lt;the&gt; studio &amp; guests</body>"
        assert got["notes"] == "Book <the> studio & guests"
        assert tasks.get_task("external:ENG-42", {})["gid"] == created["gid"]
        updated = tasks.update_task(
            {"data": {"due_at": "2027-02-01T15:00:00.000Z", "completed": True}}, created["gid"], {}
        )
        assert updated["due_on"] is None
        assert updated["due_at"] == "2027-02-01T15:00:00.000Z"
        assert updated["completed"] is True
        assert updated["completed_at"] is not None
        assert tasks.delete_task(created["gid"]) == {}
        with pytest.raises(ApiException) as missing:
            tasks.get_task(created["gid"], {})
        assert missing.value.status == 404

    def test_html_notes_are_read_as_plain_notes(self, emulator: AsanaEmulator, client: Any) -> None:
        """Writing restricted HTML stores it and derives notes; invalid HTML is a 400."""
        tasks = asana.TasksApi(client)
        rich = "<body><strong>Bold</strong> plan<ul><li>one</li><li>two</li></ul></body>"
        created = tasks.create_task(
            {"data": {"name": "Rich", "html_notes": rich, "projects": [project_gid(emulator)]}}, {}
        )
        got = tasks.get_task(created["gid"], {"opt_fields": "notes,html_notes"})
        assert got["html_notes"] == rich
        assert got["notes"] == "Bold plan• one\n• two"
        with pytest.raises(ApiException) as bad:
            tasks.update_task({"data": {"html_notes": "<body><script>x</script></body>"}}, created["gid"], {})
        assert bad.value.status == 400

    def test_full_record_conforms_and_list_is_compact(self, emulator: AsanaEmulator, client: Any) -> None:
        """GET /tasks/{gid} matches the spec; lists answer {gid, resource_type, name, resource_subtype}."""
        gid = task_gid(emulator, "Press kit")
        body = raw(emulator, "GET", f"/tasks/{gid}").json()
        assert body["data"]["parent"] is None
        assert_conforms("asana", "GET", "/tasks/{task_gid}", 200, body)
        assert body["data"]["due_at"] == "2027-01-10T09:00:00.000Z"
        assert "html_notes" not in body["data"]
        listed = list(asana.TasksApi(client).get_tasks({"project": project_gid(emulator)}))
        assert listed[2] == {
            "gid": gid,
            "resource_type": "task",
            "name": "Press kit",
            "resource_subtype": "default_task",
        }

    def test_task_listings_by_container_and_filters(self, emulator: AsanaEmulator, client: Any) -> None:
        """GET /tasks by section, assignee+workspace, completed_since=now; section and project listings agree."""
        tasks = asana.TasksApi(client)
        backlog = section_gid(emulator, "Backlog")
        in_section = [t["name"] for t in tasks.get_tasks_for_section(backlog, {})]
        assert in_section == [t["name"] for t in tasks.get_tasks({"section": backlog})]
        assert "Launch blog post" in in_section
        assert "Press kit" not in in_section
        gus = emulator.state.users_by_email["gus@corp.example"].gid
        mine = {t["name"] for t in tasks.get_tasks({"assignee": gus, "workspace": emulator.state.workspace.gid})}
        assert mine == {"Launch blog post", "Press kit", "Customer quotes for the launch page", "Analyst briefing"}
        open_tasks = [t["name"] for t in tasks.get_tasks_for_project(project_gid(emulator), {"completed_since": "now"})]
        assert "Launch naming decision" not in open_tasks
        assert len(open_tasks) == 8
        with pytest.raises(ApiException) as unscoped:
            list(tasks.get_tasks({}))
        assert unscoped.value.status == 400

    def test_modified_since_returns_only_changed_tasks(self, emulator: AsanaEmulator, client: Any) -> None:
        """modified_since filters on modified_at, which a comment (its story) moves."""
        emulator.clock.advance(60)
        since = emulator.clock.now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        emulator.act_as("ana@corp.example").comment(task_gid(emulator, "Press kit"), "Looks good")
        changed = asana.TasksApi(client).get_tasks_for_project(project_gid(emulator), {"modified_since": since})
        assert [t["name"] for t in changed] == ["Press kit"]

    def test_projects_and_tags_of_a_task(self, emulator: AsanaEmulator, client: Any) -> None:
        """addProject/removeProject and addTag/removeTag change memberships and tags, with stories."""
        tasks = asana.TasksApi(client)
        tags = asana.TagsApi(client)
        ws = emulator.state.workspace.gid
        tag = tags.create_tag({"data": {"name": "video", "workspace": ws}}, {})
        assert tags.get_tag(tag["gid"], {})["name"] == "video"
        assert "video" in [t["name"] for t in tags.get_tags({"workspace": ws})]
        assert "launch" in [t["name"] for t in tags.get_tags_for_workspace(ws, {})]
        other = tags.create_tag_for_workspace({"data": {"name": "audio"}}, ws, {})
        assert other["name"] == "audio"
        created = tasks.create_task({"data": {"name": "Loose", "workspace": ws}}, {})
        assert created["memberships"] == []
        tasks.add_project_for_task(
            {"data": {"project": project_gid(emulator), "section": section_gid(emulator, "Shipped")}}, created["gid"]
        )
        tasks.add_tag_for_task({"data": {"tag": tag["gid"]}}, created["gid"])
        got = tasks.get_task(created["gid"], {"opt_fields": "memberships.section.name,tags.name"})
        assert got["memberships"] == [{"section": {"gid": section_gid(emulator, "Shipped"), "name": "Shipped"}}]
        assert [t["name"] for t in asana.TagsApi(client).get_tags_for_task(created["gid"], {})] == ["video"]
        tasks.remove_tag_for_task({"data": {"tag": tag["gid"]}}, created["gid"])
        tasks.remove_project_for_task({"data": {"project": project_gid(emulator)}}, created["gid"])
        got = tasks.get_task(created["gid"], {"opt_fields": "projects,tags"})
        assert got["projects"] == []
        assert got["tags"] == []
        subtypes = [s["resource_subtype"] for s in asana.StoriesApi(client).get_stories_for_task(created["gid"], {})]
        assert subtypes == ["added_to_project", "added_to_tag", "removed_from_tag", "removed_from_project"]


class TestStories:
    def test_comments_and_system_stories(self, emulator: AsanaEmulator, client: Any) -> None:
        """Changes write system stories; comments are created, read, edited and deleted through /stories."""
        tasks = asana.TasksApi(client)
        stories = asana.StoriesApi(client)
        gid = task_gid(emulator, "Webinar with partners")
        tasks.update_task(
            {"data": {"name": "Partner webinar", "assignee": "eli@corp.example", "notes": "Zoom"}}, gid, {}
        )
        tasks.update_task({"data": {"assignee": None, "due_on": "2027-03-01", "completed": True}}, gid, {})
        comment = stories.create_story_for_task({"data": {"html_text": "<body>Ship <em>it</em></body>"}}, gid, {})
        assert comment["text"] == "Ship it"
        assert comment["type"] == "comment"
        listed = list(stories.get_stories_for_task(gid, {"opt_fields": "resource_subtype,type,created_by.email"}))
        assert [s["resource_subtype"] for s in listed] == [
            "name_changed", "notes_changed", "assigned", "unassigned", "due_date_changed", "marked_complete",
            "comment_added",
        ]  # fmt: skip
        assert {s["created_by"]["email"] for s in listed} == {SERVICE_ACCOUNT}
        got = raw(emulator, "GET", f"/stories/{comment['gid']}").json()
        assert_conforms("asana", "GET", "/stories/{story_gid}", 200, got)
        edited = stories.update_story({"data": {"text": "Ship it now"}}, comment["gid"], {})
        assert edited["is_edited"] is True
        assert edited["text"] == "Ship it now"
        with pytest.raises(ApiException) as system:
            stories.update_story({"data": {"text": "rewrite history"}}, listed[0]["gid"], {})
        assert system.value.status == 403
        assert stories.delete_story(comment["gid"]) == {}
        with pytest.raises(ApiException) as gone:
            stories.get_story(comment["gid"], {})
        assert gone.value.status == 404

    def test_actor_edits_are_authored_by_that_person(self, emulator: AsanaEmulator, client: Any) -> None:
        """act_as() edits show the named person as the author of the stories."""
        hana = emulator.act_as("hana@corp.example")
        gid = hana.create_task("Launch video", section="In progress", notes="Storyboard")
        hana.update_task(gid, name="Launch video v2")
        hana.move(gid, "Shipped")
        hana.complete(gid, True)
        story = hana.comment(gid, "Done!")
        got = asana.StoriesApi(client).get_story(story, {"opt_fields": "created_by.email,text"})
        assert got == {
            "gid": story,
            "created_by": {"gid": got["created_by"]["gid"], "email": "hana@corp.example"},
            "text": "Done!",
        }
        listed = list(
            asana.StoriesApi(client).get_stories_for_task(gid, {"opt_fields": "created_by.name,resource_subtype"})
        )
        assert {s["created_by"]["name"] for s in listed} == {"Hana Sato"}
        assert [s["resource_subtype"] for s in listed] == [
            "name_changed",
            "section_changed",
            "marked_complete",
            "comment_added",
        ]
        hana.delete(gid)
        assert gid not in emulator.state.tasks


class TestErrorsAndOptions:
    def test_404_body_conforms(self, emulator: AsanaEmulator) -> None:
        """An unknown gid is a 404 with the errors body of the spec; a non-numeric gid is a 400."""
        response = raw(emulator, "GET", "/tasks/1208999999999999")
        assert response.status_code == 404
        assert_conforms("asana", "GET", "/tasks/{task_gid}", 404, response.json())
        assert raw(emulator, "GET", "/tasks/abc").status_code == 400

    def test_due_on_and_due_at_together_are_rejected(self, emulator: AsanaEmulator, client: Any) -> None:
        """due_on xor due_at: both in one request is a 400, on create and on update."""
        body = {
            "data": {
                "name": "x",
                "projects": [project_gid(emulator)],
                "due_on": "2027-01-01",
                "due_at": "2027-01-01T10:00:00Z",
            }
        }
        with pytest.raises(ApiException) as create:
            asana.TasksApi(client).create_task(body, {})
        assert create.value.status == 400
        assert "You may only provide one of due_on or due_at." in create.value.body.decode()
        gid = task_gid(emulator, "Launch blog post")
        with pytest.raises(ApiException) as update:
            asana.TasksApi(client).update_task(
                {"data": {"due_on": "2027-01-01", "due_at": "2027-01-01T10:00:00Z"}}, gid, {}
            )
        assert update.value.status == 400
        assert asana.TasksApi(client).get_task(gid, {"opt_fields": "due_on"})["due_on"] == "2027-01-14"

    def test_opt_fields_select_nested_paths_and_opt_pretty_indents(self, emulator: AsanaEmulator, client: Any) -> None:
        """opt_fields returns gid plus exactly the named (dotted) fields; opt_pretty pretty-prints."""
        gid = task_gid(emulator, "Launch blog post")
        got = asana.TasksApi(client).get_task(gid, {"opt_fields": "name,assignee,assignee.email,tags.name,workspace"})
        assert got == {
            "gid": gid,
            "name": "Launch blog post",
            "assignee": {"gid": got["assignee"]["gid"], "email": "gus@corp.example"},
            "tags": [{"gid": got["tags"][0]["gid"], "name": "launch"}, {"gid": got["tags"][1]["gid"], "name": "web"}],
            "workspace": {"gid": emulator.state.workspace.gid, "resource_type": "workspace"},
        }
        pretty = raw(emulator, "GET", f"/tasks/{gid}", params={"opt_pretty": "true", "opt_fields": "name"})
        assert pretty.text.startswith('{\n  "data": {\n')

    def test_limit_and_offset_paging(self, emulator: AsanaEmulator, client: Any) -> None:
        """limit pages with next_page {offset, path, uri}; the SDK follows it; bad limit or offset is a 400."""
        gid = project_gid(emulator)
        first = raw(emulator, "GET", f"/projects/{gid}/tasks", params={"limit": 4}).json()
        assert len(first["data"]) == 4
        assert first["next_page"]["path"].startswith(f"/projects/{gid}/tasks?limit=4&offset=")
        assert first["next_page"]["uri"] == emulator.api_url + first["next_page"]["path"]
        second = requests.get(
            first["next_page"]["uri"], headers={"Authorization": f"Bearer {emulator.credentials()['token']}"}, timeout=5
        ).json()
        assert [t["gid"] for t in second["data"]] == [t.gid for t in emulator.state.projects[gid].task_order[4:8]]
        everything = list(asana.TasksApi(client).get_tasks_for_project(gid, {"limit": 3}))
        assert len(everything) == 10
        assert raw(emulator, "GET", f"/projects/{gid}/tasks", params={"limit": 101}).status_code == 400
        assert raw(emulator, "GET", f"/projects/{gid}/tasks", params={"limit": 0}).status_code == 400
        assert raw(emulator, "GET", f"/projects/{gid}/tasks", params={"limit": 2, "offset": "bogus"}).status_code == 400
        last = raw(emulator, "GET", f"/projects/{gid}/tasks", params={"limit": 10}).json()
        assert last["next_page"] is None
