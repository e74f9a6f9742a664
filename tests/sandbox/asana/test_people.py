"""Hidden e-mails: a chosen person's address is left out for everyone but that person, and names nobody."""

from __future__ import annotations

import json
from typing import Any

import asana
import pytest
from asana.rest import ApiException

from sandbox.asana import AsanaEmulator
from tests.sandbox.asana.support import client_for, task_gid


@pytest.fixture
def gus(emulator: AsanaEmulator) -> str:
    """Gus hides his e-mail; his gid."""
    emulator.hidden_emails.add("gus@corp.example")
    return emulator.state.users_by_email["gus@corp.example"].gid


class TestHiddenEmails:
    def test_left_out_of_task_assignees_stories_and_users(self, emulator: AsanaEmulator, client: Any, gus: str) -> None:
        """Others read Gus by gid and name only: as an assignee, a story's author, in /users/{gid} and in lists."""
        task = task_gid(emulator, "Launch blog post")
        emulator.act_as("gus@corp.example").comment(task, "Draft is up")
        got = asana.TasksApi(client).get_task(task, {"opt_fields": "assignee.email,assignee.name"})
        assert got["assignee"] == {"gid": gus, "name": "Gus Petersen"}
        stories = asana.StoriesApi(client).get_stories_for_task(task, {"opt_fields": "created_by.email"})
        assert [s["created_by"] for s in stories] == [{"gid": gus}]
        assert "email" not in asana.UsersApi(client).get_user(gus, {"opt_fields": "email,name"})
        assert "email" not in asana.UsersApi(client).get_user(gus, {})
        listed = asana.UsersApi(client).get_users_for_workspace(emulator.state.workspace.gid, {"opt_fields": "email"})
        emails = {user["gid"]: user.get("email") for user in listed}
        assert emails[gus] is None
        assert emails[emulator.state.users_by_email["hana@corp.example"].gid] == "hana@corp.example"

    def test_shown_to_that_person(self, emulator: AsanaEmulator, gus: str) -> None:
        """Gus's own requests see his address, as an assignee and in /users."""
        own = client_for(emulator, "gus@corp.example")
        task = task_gid(emulator, "Launch blog post")
        assert asana.TasksApi(own).get_task(task, {"opt_fields": "assignee.email"})["assignee"]["email"] == (
            "gus@corp.example"
        )
        assert asana.UsersApi(own).get_user(gus, {"opt_fields": "email"})["email"] == "gus@corp.example"
        assert asana.UsersApi(own).get_user("me", {})["email"] == "gus@corp.example"

    def test_a_hidden_email_is_no_user_reference(self, emulator: AsanaEmulator, client: Any, gus: str) -> None:
        """Assigning or reading by the hidden address is Asana's 400 (the gid works); Gus himself may use it."""
        task = task_gid(emulator, "Product screenshots")
        with pytest.raises(ApiException) as assign:
            asana.TasksApi(client).update_task({"data": {"assignee": "gus@corp.example"}}, task, {})
        assert assign.value.status == 400
        message = json.loads(assign.value.body)["errors"][0]["message"]
        assert message == "assignee: Not a recognized ID or e-mail: gus@corp.example"
        with pytest.raises(ApiException) as read:
            asana.UsersApi(client).get_user("gus@corp.example", {})
        assert read.value.status == 400
        assert emulator.state.tasks[task].assignee is not emulator.state.users[gus]
        asana.TasksApi(client).update_task({"data": {"assignee": gus}}, task, {})
        assert emulator.state.tasks[task].assignee is emulator.state.users[gus]
        own = client_for(emulator, "gus@corp.example")
        assert asana.UsersApi(own).get_user("gus@corp.example", {})["gid"] == gus
