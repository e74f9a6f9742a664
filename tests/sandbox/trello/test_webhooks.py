"""Trello webhooks: the HEAD check at creation, signed deliveries, and management through py-trello."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator

import pytest
import requests
from trello import TrelloClient
from trello.exceptions import ResourceUnavailable

from sandbox.trello import TrelloEmulator
from tests.conformance import assert_conforms
from tests.sandbox.trello.support import Receiver, auth_params, client_for


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


def board_id(emulator: TrelloEmulator) -> str:
    return next(iter(emulator.state.boards))


def expected_signature(secret: str, body: bytes, url: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body + url.encode(), hashlib.sha1).digest()).decode()


class TestCreation:
    def test_py_trello_creates_lists_and_deletes_a_hook(
        self, emulator: TrelloEmulator, client: TrelloClient, receiver: Receiver
    ) -> None:
        """create_hook (POST /tokens/{token}/webhooks) HEAD-checks the callback; list_hooks and delete work."""
        hook = client.create_hook(receiver.url, board_id(emulator), desc="sales board")
        assert receiver.heads == 1
        listed = client.list_hooks()
        assert [(h.id, h.callback_url, h.id_model, h.desc, h.active) for h in listed] == [
            (hook.id, receiver.url, board_id(emulator), "sales board", True)
        ]
        body = client.fetch_json(f"/webhooks/{hook.id}")
        assert_conforms("trello", "get", "/webhooks/{id}", 200, body)
        hook.delete()
        assert client.list_hooks() == []
        with pytest.raises(ResourceUnavailable, match="404"):
            client.fetch_json(f"/webhooks/{hook.id}")

    def test_callback_not_answering_200_refuses_the_webhook(
        self, emulator: TrelloEmulator, client: TrelloClient
    ) -> None:
        """Trello sends HEAD first: a 404 there means 400 'URL (...) did not return 200 status code, got 404'."""
        refusing = Receiver(head_status=404)
        try:
            with pytest.raises(Exception, match=r"did not return 200 status code, got 404"):
                client.create_hook(refusing.url, board_id(emulator))
            assert refusing.heads == 1
            assert client.list_hooks() == []
        finally:
            refusing.close()

    def test_post_webhooks_route_and_its_validation(
        self, emulator: TrelloEmulator, client: TrelloClient, receiver: Receiver
    ) -> None:
        """POST /webhooks answers the spec's Webhook; duplicates and unknown models are 400s."""
        args = {"callbackURL": receiver.url, "idModel": board_id(emulator), "description": "d"}
        created = client.fetch_json("/webhooks", http_method="POST", post_args=args)
        assert_conforms("trello", "post", "/webhooks/", 200, created)
        with pytest.raises(ResourceUnavailable, match="already exists"):
            client.fetch_json("/webhooks", http_method="POST", post_args=args)
        with pytest.raises(ResourceUnavailable, match="invalid value for idModel"):
            client.fetch_json("/webhooks", http_method="POST", post_args={**args, "idModel": "0" * 24})

    def test_put_changes_description_and_active(
        self, emulator: TrelloEmulator, client: TrelloClient, receiver: Receiver
    ) -> None:
        """PUT /webhooks/{id} updates fields; the token route lists only that token's hooks."""
        hook = client.create_hook(receiver.url, board_id(emulator), desc="old")
        body = client.fetch_json(
            f"/webhooks/{hook.id}", http_method="PUT", post_args={"description": "new", "active": False}
        )
        assert (body["description"], body["active"]) == ("new", False)
        token = emulator.credentials()["token"]
        assert [h["id"] for h in client.fetch_json(f"/tokens/{token}/webhooks")] == [hook.id]
        assert client_for(emulator, "ana@corp.example").list_hooks() == []


class TestDelivery:
    def test_board_webhook_gets_signed_actions(
        self, emulator: TrelloEmulator, client: TrelloClient, receiver: Receiver
    ) -> None:
        """Each change on the board is POSTed as {action, model, webhook} with X-Trello-Webhook signed."""
        hook = client.create_hook(receiver.url, board_id(emulator), desc="sales")
        card_id = emulator.act_as("farah@corp.example").create_card("Requests", "Webhook me")
        client.get_card(card_id).set_name("Webhooked")
        assert emulator.webhooks.wait_idle()
        bodies = sorted(receiver.bodies(), key=lambda b: b["action"]["id"])  # deliveries run in parallel
        assert [(b["action"]["type"], b["action"]["memberCreator"]["username"]) for b in bodies] == [
            ("createCard", "farah"),
            ("updateCard", "syncd-bot"),
        ]
        assert bodies[1]["action"]["data"]["old"] == {"name": "Webhook me"}
        assert bodies[0]["model"]["id"] == board_id(emulator)
        assert bodies[0]["webhook"] == {
            "id": hook.id,
            "description": "sales",
            "idModel": board_id(emulator),
            "callbackURL": receiver.url,
            "active": True,
        }
        secret = emulator.credentials()["secret"]
        for raw, headers in receiver.posts:
            assert headers["X-Trello-Webhook"] == expected_signature(secret, raw, receiver.url)
            assert headers["X-Trello-Webhook"] != expected_signature(secret, raw, receiver.url + "&x=1")

    def test_card_webhook_sees_only_its_card(
        self, emulator: TrelloEmulator, client: TrelloClient, receiver: Receiver
    ) -> None:
        """A webhook on a card hears that card's actions (deleteCard included), with the card as model."""
        eli = emulator.act_as("eli@corp.example")
        watched = eli.create_card("Doing", "Watched")
        other = eli.create_card("Doing", "Other")
        client.create_hook(receiver.url, watched)
        eli.comment(other, "not for the hook")
        eli.comment(watched, "for the hook")
        eli.delete(watched)
        assert emulator.webhooks.wait_idle()
        bodies = sorted(receiver.bodies(), key=lambda b: b["action"]["id"])
        assert [b["action"]["type"] for b in bodies] == ["commentCard", "deleteCard"]
        assert {b["model"]["id"] for b in bodies} == {watched}

    def test_inactive_webhook_is_silent(
        self, emulator: TrelloEmulator, client: TrelloClient, receiver: Receiver
    ) -> None:
        """active=false stops deliveries."""
        response = requests.post(
            f"{emulator.url}/1/webhooks",
            params={
                **auth_params(emulator),
                "callbackURL": receiver.url,
                "idModel": board_id(emulator),
                "active": "false",
            },
            timeout=5,
        )
        assert response.json()["active"] is False
        emulator.act_as("ana@corp.example").create_card("Requests", "Quiet")
        assert emulator.webhooks.wait_idle()
        assert receiver.posts == []
