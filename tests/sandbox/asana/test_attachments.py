"""Attachments through the real asana SDK: external links on tasks, listed, read, deleted; the errors raw."""

from __future__ import annotations

from typing import Any

import asana
import pytest
import requests
from asana.rest import ApiException

from sandbox.asana import AsanaEmulator
from sandbox.seed import SERVICE_ACCOUNT
from tests.conformance import assert_conforms
from tests.sandbox.asana.support import oauth_client, project_gid, task_gid

URL = "https://syncd.invalid/sync/item-1"


def raw(emulator: AsanaEmulator, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {emulator.credentials()['token']}"}
    return requests.request(method, emulator.api_url + path, headers=headers, timeout=10, **kwargs)


def post_form(emulator: AsanaEmulator, form: dict[str, str], **kwargs: Any) -> requests.Response:
    """POST /attachments as multipart/form-data (``files`` makes requests encode it so)."""
    files = kwargs.pop("files", None) or {key: (None, value) for key, value in form.items()}
    return raw(emulator, "POST", "/attachments", files=files, **kwargs)


def attach(client: Any, parent: str, url: str = URL, name: str = "marker") -> dict[str, Any]:
    form = {"resource_subtype": "external", "url": url, "name": name, "parent": parent}
    created: dict[str, Any] = asana.AttachmentsApi(client).create_attachment_for_object(form)
    return created


class TestAttachments:
    def test_create_get_list_delete_through_the_sdk(self, emulator: AsanaEmulator, client: Any) -> None:
        """An external link round-trips through the SDK's four calls; the records match the spec."""
        gid = task_gid(emulator, "Press kit")
        created = attach(client, gid)
        assert created == {
            "gid": created["gid"],
            "resource_type": "attachment",
            "name": "marker",
            "resource_subtype": "external",
            "created_at": created["created_at"],
            "host": "external",
            "view_url": URL,
            "download_url": None,
            "permanent_url": f"https://app.asana.com/app/asana/-/get_asset?asset_id={created['gid']}",
            "parent": {"gid": gid, "resource_type": "task", "name": "Press kit", "resource_subtype": "default_task"},
            "connected_to_app": False,
        }
        assert_conforms("asana", "POST", "/attachments", 200, {"data": created})
        api = asana.AttachmentsApi(client)
        assert api.get_attachment(created["gid"], {}) == created
        assert_conforms("asana", "GET", "/attachments/{attachment_gid}", 200, {"data": created})
        listed = api.get_attachments_for_object(gid, {})
        assert list(listed) == [
            {"gid": created["gid"], "resource_type": "attachment", "name": "marker", "resource_subtype": "external"}
        ]
        chosen = list(api.get_attachments_for_object(gid, {"opt_fields": "view_url,parent.name"}))
        assert chosen == [{"gid": created["gid"], "view_url": URL, "parent": {"gid": gid, "name": "Press kit"}}]
        assert api.delete_attachment(created["gid"]) == {}
        with pytest.raises(ApiException) as gone:
            api.get_attachment(created["gid"], {})
        assert gone.value.status == 404
        assert list(api.get_attachments_for_object(gid, {})) == []

    def test_list_pages_with_limit_and_offset(self, emulator: AsanaEmulator, client: Any) -> None:
        """GET /attachments pages like the other lists; the SDK follows next_page."""
        gid = task_gid(emulator, "Press kit")
        made = [attach(client, gid, f"{URL}/{n}", f"link {n}")["gid"] for n in range(3)]
        first = raw(emulator, "GET", "/attachments", params={"parent": gid, "limit": 2}).json()
        assert_conforms("asana", "GET", "/attachments", 200, first)
        assert [a["gid"] for a in first["data"]] == made[:2]
        assert first["next_page"]["path"].startswith(f"/attachments?parent={gid}&limit=2&offset=")
        rest = raw(
            emulator, "GET", "/attachments", params={"parent": gid, "limit": 2, "offset": first["next_page"]["offset"]}
        )
        assert [a["gid"] for a in rest.json()["data"]] == made[2:]
        assert rest.json()["next_page"] is None
        everything = asana.AttachmentsApi(client).get_attachments_for_object(gid, {"limit": 1})
        assert [a["gid"] for a in everything] == made
        assert raw(emulator, "GET", "/attachments", params={"parent": project_gid(emulator)}).json()["data"] == []

    def test_attaching_writes_a_story_and_moves_modified_at(self, emulator: AsanaEmulator, client: Any) -> None:
        """Attaching writes an attachment_added story by the author (so modified_at moves); deleting moves it too."""
        gid = task_gid(emulator, "Press kit")
        task = emulator.state.tasks[gid]
        before = task.modified_at
        created = attach(client, gid)
        assert task.modified_at > before
        stories = list(
            asana.StoriesApi(client).get_stories_for_task(gid, {"opt_fields": "resource_subtype,text,created_by.email"})
        )
        assert [(s["resource_subtype"], s["text"], s["created_by"]["email"]) for s in stories] == [
            ("attachment_added", "attached marker", SERVICE_ACCOUNT)
        ]
        attached_at = task.modified_at
        asana.AttachmentsApi(client).delete_attachment(created["gid"])
        assert task.modified_at > attached_at

    def test_oauth_app_attaches_through_its_external_gid(self, emulator: AsanaEmulator) -> None:
        """``parent`` takes ``external:<gid>`` for the OAuth app that set it (and a PAT reading works as usual)."""
        app = oauth_client(emulator)
        created = asana.TasksApi(app).create_task(
            {"data": {"name": "Ext", "projects": [project_gid(emulator)], "external": {"gid": "A-1"}}}, {}
        )
        attachment = attach(app, "external:A-1")
        assert attachment["parent"]["gid"] == created["gid"]

    def test_deleting_the_task_deletes_its_attachments(self, emulator: AsanaEmulator, client: Any) -> None:
        """A trashed task's attachments are gone from the API with it."""
        gid = task_gid(emulator, "Press kit")
        created = attach(client, gid)
        asana.TasksApi(client).delete_task(gid)
        assert raw(emulator, "GET", f"/attachments/{created['gid']}").status_code == 404


class TestAttachmentErrors:
    def test_unknown_parent_is_404(self, emulator: AsanaEmulator) -> None:
        """An unknown parent task is a 404 in Asana's error shape."""
        response = post_form(
            emulator, {"parent": "1208999999999999", "resource_subtype": "external", "url": URL, "name": "m"}
        )
        assert response.status_code == 404
        assert response.json()["errors"][0]["message"] == "parent: Unknown object: 1208999999999999"
        assert_conforms("asana", "POST", "/attachments", 404, response.json())
        assert raw(emulator, "GET", "/attachments", params={"parent": "1208999999999999"}).status_code == 404

    @pytest.mark.parametrize(
        ("form", "message"),
        [
            ({"resource_subtype": "external", "name": "m"}, "url: Missing input"),
            ({"resource_subtype": "external", "url": URL}, "name: Missing input"),
            ({"resource_subtype": "external", "url": URL, "name": "  "}, "name: Missing input"),
            ({"resource_subtype": "external", "url": "not a url", "name": "m"}, "url: Not a valid URL: not a url"),
            ({"resource_subtype": "dropbox", "url": URL, "name": "m"}, "resource_subtype: Invalid value: dropbox"),
            ({"url": URL, "name": "m"}, "file: Missing input"),
            (
                {"resource_subtype": "external", "url": URL, "name": "m", "connect_to_app": "true"},
                "connect_to_app: The app is not installed on a project of this task",
            ),
        ],
    )
    def test_bad_form_is_400(self, emulator: AsanaEmulator, form: dict[str, str], message: str) -> None:
        """Missing or invalid fields are 400s with Asana's error body; nothing is attached."""
        response = post_form(emulator, {"parent": task_gid(emulator, "Press kit"), **form})
        assert response.status_code == 400
        assert response.json()["errors"][0]["message"] == message
        assert_conforms("asana", "POST", "/attachments", 400, response.json())
        assert emulator.state.attachments == {}

    def test_missing_parent_file_upload_and_json_body_are_400(self, emulator: AsanaEmulator) -> None:
        """No parent, a file upload (not emulated) and a non-multipart body are 400s."""
        orphan = post_form(emulator, {"resource_subtype": "external", "url": URL, "name": "m"})
        assert orphan.json()["errors"][0]["message"] == "parent: Missing input"
        upload = post_form(
            emulator, {}, files={"parent": (None, task_gid(emulator, "Press kit")), "file": ("a.txt", b"hello")}
        )
        assert upload.status_code == 400
        assert "not emulated" in upload.json()["errors"][0]["message"]
        body = {"data": {"parent": task_gid(emulator, "Press kit"), "resource_subtype": "external", "url": URL}}
        assert raw(emulator, "POST", "/attachments", json=body).status_code == 400
        assert raw(emulator, "GET", "/attachments").status_code == 400

    def test_unknown_attachment_is_404(self, emulator: AsanaEmulator) -> None:
        """GET and DELETE of an unknown attachment are 404s; a non-numeric gid is a 400."""
        response = raw(emulator, "GET", "/attachments/1208999999999999")
        assert response.status_code == 404
        assert_conforms("asana", "GET", "/attachments/{attachment_gid}", 404, response.json())
        assert raw(emulator, "DELETE", "/attachments/1208999999999999").status_code == 404
        assert raw(emulator, "GET", "/attachments/abc").status_code == 400
