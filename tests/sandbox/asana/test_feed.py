"""Asana quirks a sync engine must survive: 412 sync tokens, section moves, webhooks and the rate limit."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import asana
import pytest
import requests
from asana.rest import ApiException
from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

from sandbox.asana import AsanaEmulator
from sandbox.seed import load_seed
from tests.conformance import assert_conforms
from tests.sandbox.asana.support import client_for, project_gid, section_gid, task_gid


def sync_token(client: Any, resource: str) -> str:
    """What the connector does: call get_events without a token and read the token from the 412."""
    with pytest.raises(ApiException) as first:
        asana.EventsApi(client).get_events(resource, {}, full_payload=True)
    assert first.value.status == 412
    token: str = json.loads(first.value.body)["sync"]
    return token


def events_since(client: Any, resource: str, token: str) -> dict[str, Any]:
    body: dict[str, Any] = asana.EventsApi(client).get_events(resource, {"sync": token}, full_payload=True)
    return body


class Receiver(BaseHTTPRequestHandler):
    """A webhook target; ``echo`` decides whether it completes the X-Hook-Secret handshake."""

    echo: ClassVar[bool] = True
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received.append((dict(self.headers.items()), body))
        self.send_response(200)
        secret = self.headers.get("X-Hook-Secret")
        if secret and type(self).echo:
            self.send_header("X-Hook-Secret", secret)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[Receiver]]]:
    handler = type("TestReceiver", (Receiver,), {"echo": True, "received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", handler
    server.shutdown()
    server.server_close()


class TestEvents:
    def test_first_call_is_412_with_a_token_and_body_conforms(self, emulator: AsanaEmulator, client: Any) -> None:
        """No sync token: 412 with the spec's body and a fresh token that then answers 200."""
        gid = project_gid(emulator)
        response = requests.get(
            emulator.api_url + "/events",
            params={"resource": gid},
            headers={"Authorization": f"Bearer {emulator.credentials()['token']}"},
            timeout=5,
        )
        assert response.status_code == 412
        assert_conforms("asana", "GET", "/events", 412, response.json())
        assert response.json()["errors"][0]["message"].startswith("Sync token invalid or too old.")
        body = events_since(client, gid, response.json()["sync"])
        assert body["data"] == []
        assert body["has_more"] is False
        assert body["sync"] != response.json()["sync"]

    def test_expired_token_is_412_again(self, emulator: AsanaEmulator, client: Any) -> None:
        """A token older than 24 h (emulated clock) answers 412 with a new token."""
        gid = project_gid(emulator)
        token = sync_token(client, gid)
        emulator.clock.advance(25 * 3600)
        with pytest.raises(ApiException) as expired:
            events_since(client, gid, token)
        assert expired.value.status == 412
        assert json.loads(expired.value.body)["sync"] != token

    def test_section_move_shows_in_memberships_events_and_stories(self, emulator: AsanaEmulator, client: Any) -> None:
        """addTask moves the task: memberships change, events say removed/added, a section_changed story is written."""
        gid = project_gid(emulator)
        task = task_gid(emulator, "Launch blog post")
        token = sync_token(client, gid)
        shipped = section_gid(emulator, "Shipped")
        asana.SectionsApi(client).add_task_for_section(shipped, {"body": {"data": {"task": task}}})
        got = asana.TasksApi(client).get_task(task, {"opt_fields": "memberships.section.name"})
        assert got["memberships"] == [{"section": {"gid": shipped, "name": "Shipped"}}]
        assert [t["gid"] for t in asana.TasksApi(client).get_tasks_for_section(shipped, {})][-1] == task
        body = events_since(client, gid, token)
        moves = [(e["action"], e["parent"]["name"]) for e in body["data"] if e["resource"]["resource_type"] == "task"]
        assert moves == [("removed", "Backlog"), ("added", "Shipped")]
        story = next(e for e in body["data"] if e["resource"]["resource_type"] == "story")
        assert story["resource"]["resource_subtype"] == "section_changed"
        assert_conforms("asana", "GET", "/events", 200, body)
        stories = list(
            asana.StoriesApi(client).get_stories_for_task(task, {"opt_fields": "resource_subtype,new_section.name"})
        )
        assert stories[-1]["new_section"]["name"] == "Shipped"

    def test_a_section_move_leaves_modified_at_and_modified_since_alone(
        self, emulator: AsanaEmulator, client: Any
    ) -> None:
        """Moving to a new container does not change modified_at (spec): the listing misses it, the events do not."""
        gid = project_gid(emulator)
        task = task_gid(emulator, "Launch blog post")
        tasks = asana.TasksApi(client)
        before = tasks.get_task(task, {"opt_fields": "modified_at"})["modified_at"]
        emulator.clock.advance(60)
        since = emulator.clock.now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        token = sync_token(client, gid)
        asana.SectionsApi(client).add_task_for_section(
            section_gid(emulator, "Shipped"), {"body": {"data": {"task": task}}}
        )
        emulator.act_as("gus@corp.example").move(task, "In progress")
        assert tasks.get_task(task, {"opt_fields": "modified_at"})["modified_at"] == before
        assert list(tasks.get_tasks_for_project(gid, {"modified_since": since})) == []
        data = events_since(client, gid, token)["data"]
        moves = [(e["action"], e["parent"]["name"]) for e in data if e["resource"]["gid"] == task]
        assert moves == [("removed", "Backlog"), ("added", "Shipped"), ("removed", "Shipped"), ("added", "In progress")]
        stories = asana.StoriesApi(client).get_stories_for_task(task, {"opt_fields": "resource_subtype"})
        assert [s["resource_subtype"] for s in stories][-2:] == ["section_changed", "section_changed"]

    def test_adding_a_task_to_a_project_leaves_modified_at_alone(self, emulator: AsanaEmulator, client: Any) -> None:
        """addProject is a move to a new container too: the story and the events are written, modified_at stays."""
        tasks = asana.TasksApi(client)
        created = tasks.create_task({"data": {"name": "Loose", "workspace": emulator.state.workspace.gid}}, {})
        emulator.clock.advance(60)
        token = sync_token(client, project_gid(emulator))
        tasks.add_project_for_task({"data": {"project": project_gid(emulator)}}, created["gid"])
        assert tasks.get_task(created["gid"], {"opt_fields": "modified_at"})["modified_at"] == created["modified_at"]
        data = events_since(client, project_gid(emulator), token)["data"]
        assert [
            (e["action"], e["parent"]["resource_type"]) for e in data if e["resource"]["gid"] == created["gid"]
        ] == [
            ("added", "project"),
            ("added", "section"),
        ]
        stories = asana.StoriesApi(client).get_stories_for_task(created["gid"], {"opt_fields": "resource_subtype"})
        assert [s["resource_subtype"] for s in stories] == ["added_to_project"]

    def test_task_changes_are_events_by_their_author(self, emulator: AsanaEmulator, client: Any) -> None:
        """Field changes are 'changed' events with change.field, authored by the acting person; deletes too."""
        gid = project_gid(emulator)
        task = task_gid(emulator, "Press kit")
        token = sync_token(client, gid)
        ana = emulator.act_as("ana@corp.example")
        ana.update_task(task, assignee="eli@corp.example", name="Press kit v2")
        ana.delete(task)
        data = events_since(client, gid, token)["data"]
        changes = [
            (e["action"], e.get("change", {}).get("field"), e["user"]["name"])
            for e in data
            if e["resource"]["gid"] == task
        ]
        assert changes == [
            ("changed", "name", "Ana Lima"),
            ("changed", "assignee", "Ana Lima"),
            ("deleted", None, "Ana Lima"),
        ]
        assignee = next(e for e in data if e.get("change", {}).get("field") == "assignee")
        assert assignee["change"]["new_value"]["gid"] == emulator.state.users_by_email["eli@corp.example"].gid

    def test_more_than_100_events_page_with_has_more(self, emulator: AsanaEmulator, client: Any) -> None:
        """At most 100 events per call; has_more tells the client to call again with the new token."""
        gid = project_gid(emulator)
        task = task_gid(emulator, "Analyst briefing")
        token = sync_token(client, gid)
        gus = emulator.act_as("gus@corp.example")
        for n in range(60):
            gus.update_task(task, name=f"Analyst briefing {n}")
        first = events_since(client, gid, token)
        assert len(first["data"]) == 100
        assert first["has_more"] is True
        second = events_since(client, gid, first["sync"])
        assert len(second["data"]) == 20
        assert second["has_more"] is False
        assert first["data"][0]["created_at"] <= second["data"][-1]["created_at"]


class TestWebhooks:
    def test_handshake_and_signed_deliveries(
        self, emulator: AsanaEmulator, client: Any, receiver: tuple[str, type[Receiver]]
    ) -> None:
        """The X-Hook-Secret handshake establishes the hook; deliveries carry a valid X-Hook-Signature."""
        target, handler = receiver
        webhooks = asana.WebhooksApi(client)
        created = webhooks.create_webhook({"data": {"resource": project_gid(emulator), "target": target}}, {})
        assert created["active"] is True
        assert created["target"] == target
        secret = handler.received[0][0]["X-Hook-Secret"]
        emulator.act_as("gus@corp.example").comment(task_gid(emulator, "Press kit"), "New draft attached")
        assert emulator.webhooks.wait_idle()
        headers, body = handler.received[-1]
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Hook-Signature"], expected)
        events = json.loads(body)["events"]
        assert events[0]["resource"]["resource_subtype"] == "comment_added"
        assert events[0]["user"]["gid"] == emulator.state.users_by_email["gus@corp.example"].gid
        ws = emulator.state.workspace.gid
        assert [w["gid"] for w in webhooks.get_webhooks(ws, {})] == [created["gid"]]
        assert webhooks.get_webhook(created["gid"], {})["last_success_at"] is not None
        filters = [{"resource_type": "task", "action": "changed", "fields": ["completed"]}]
        assert webhooks.update_webhook({"data": {"filters": filters}}, created["gid"], {})["filters"] == filters
        webhooks.delete_webhook(created["gid"])
        with pytest.raises(ApiException) as gone:
            webhooks.get_webhook(created["gid"], {})
        assert gone.value.status == 404

    def test_the_create_answers_the_handshake_secret_beside_data(
        self, emulator: AsanaEmulator, client: Any, receiver: tuple[str, type[Receiver]]
    ) -> None:
        """As the OpenAPI description's 201 shows: ``X-Hook-Secret`` beside ``data``, the handshake's secret."""
        target, handler = receiver
        body = {"data": {"resource": project_gid(emulator), "target": target}}
        created = asana.WebhooksApi(client).create_webhook(body, {}, full_payload=True)
        assert created["X-Hook-Secret"] == handler.received[0][0]["X-Hook-Secret"]
        assert created["data"]["target"] == target

    def test_receiver_that_does_not_echo_the_secret_fails_creation(
        self, emulator: AsanaEmulator, client: Any, receiver: tuple[str, type[Receiver]]
    ) -> None:
        """Without the echoed X-Hook-Secret the create answers 400 and no webhook exists."""
        target, handler = receiver
        handler.echo = False
        with pytest.raises(ApiException) as refused:
            asana.WebhooksApi(client).create_webhook(
                {"data": {"resource": project_gid(emulator), "target": target}}, {}
            )
        assert refused.value.status == 400
        assert emulator.state.webhooks == {}


class TestRateLimit:
    def test_burst_gets_429_with_retry_after_then_sdk_raises_max_retry(self) -> None:
        """Over the per-minute budget: 429 + Retry-After + Asana's body; the SDK retries, then raises MaxRetryError."""
        service = AsanaEmulator(load_seed(), requests_per_minute=5)
        service.start()
        try:
            headers = {"Authorization": f"Bearer {service.credentials()['token']}"}
            statuses = [requests.get(service.api_url + "/users/me", headers=headers, timeout=5) for _ in range(6)]
            assert [r.status_code for r in statuses] == [200] * 5 + [429]
            limited = statuses[-1]
            assert 1 <= int(limited.headers["Retry-After"]) <= 60
            assert (
                limited.json()["errors"][0]["message"] == "You have made too many requests recently. Please, be chill."
            )
            # Same policy as the SDK's default (retry 429) without sleeping Retry-After seconds in a test.
            retry = Retry(total=2, backoff_factor=0, status_forcelist=[429], respect_retry_after_header=False)
            client = client_for(service, retry_strategy=retry)
            with pytest.raises(MaxRetryError):
                asana.UsersApi(client).get_user("me", {})
        finally:
            service.stop()
