"""The Custom Fields power-up through py-trello and plain HTTP: definitions, card items, writes, actions, errors."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from trello import Card, TrelloClient
from trello.exceptions import ResourceUnavailable

from sandbox.trello import TrelloEmulator
from tests.conformance import assert_conforms
from tests.sandbox.trello.support import auth_params


def sales_card(client: TrelloClient, name: str) -> Card:
    board = client.list_boards()[0]
    return next(card for card in board.all_cards() if card.name == name)


def definitions(client: TrelloClient) -> dict[str, Any]:
    board = client.list_boards()[0]
    return {d["name"]: d for d in client.fetch_json(f"/boards/{board.id}/customFields")}


def put_item(emulator: TrelloEmulator, card_id: str, field_id: str, body: object) -> requests.Response:
    url = f"{emulator.url}/1/cards/{card_id}/customField/{field_id}/item"
    return requests.put(url, params=auth_params(emulator), json=body, timeout=10)


class TestDefinitions:
    def test_board_fields_conform_and_py_trello_reads_them(self, client: TrelloClient) -> None:
        """GET /boards/{id}/customFields: id, name, type, list options with value.text and colour, in pos order."""
        board = client.list_boards()[0]
        body = client.fetch_json(f"/boards/{board.id}/customFields")
        assert_conforms("trello", "get", "/boards/{id}/customFields", 200, body)
        assert [(d["name"], d["type"]) for d in body] == [
            ("Priority", "list"), ("Deal size", "number"), ("Customer", "text"), ("Close date", "date"),
            ("Signed", "checkbox"),
        ]  # fmt: skip
        priority = body[0]
        assert priority["idModel"] == board.id
        assert priority["modelType"] == "board"
        assert [(o["value"]["text"], o["color"]) for o in priority["options"]] == [
            ("Highest", "red"), ("High", "orange"), ("Medium", "yellow"), ("Low", "green"),
        ]  # fmt: skip
        assert "options" not in body[1]
        parsed = board.get_custom_field_definitions()
        assert {d.name: d.field_type for d in parsed}["Priority"] == "list"
        assert client.fetch_json(f"/customFields/{priority['id']}") == priority


class TestItems:
    def test_seeded_items_on_card_reads_listings_and_batch(
        self, emulator: TrelloEmulator, client: TrelloClient
    ) -> None:
        """customFieldItems=true on a card, a board's cards and /batch; GET /cards/{id}/customFieldItems conforms."""
        card = sales_card(client, "Acme Foods asks for SSO")
        fields = definitions(client)
        items = client.fetch_json(f"/cards/{card.id}/customFieldItems")
        assert_conforms("trello", "get", "/cards/{id}/customFieldItems", 200, items)
        by_field = {item["idCustomField"]: item for item in items}
        high = next(o["id"] for o in fields["Priority"]["options"] if o["value"]["text"] == "High")
        assert by_field[fields["Priority"]["id"]]["idValue"] == high
        assert "value" not in by_field[fields["Priority"]["id"]]
        assert by_field[fields["Deal size"]["id"]]["value"] == {"number": "48000"}
        assert by_field[fields["Customer"]["id"]]["value"] == {"text": "Acme Foods"}
        assert all(item["idModel"] == card.id and item["modelType"] == "card" for item in items)
        read = client.fetch_json(f"/cards/{card.id}", query_params={"customFieldItems": "true"})
        assert read["customFieldItems"] == items
        listed = client.fetch_json(f"/boards/{card.board_id}/cards", query_params={"customFieldItems": "true"})
        assert next(c for c in listed if c["id"] == card.id)["customFieldItems"] == items
        batch = client.fetch_json("/batch", query_params={"urls": f"/cards/{card.id}?customFieldItems=true"})
        assert batch[0]["200"]["customFieldItems"] == items
        assert "customFieldItems" not in client.fetch_json(f"/cards/{card.id}")

    def test_py_trello_reads_and_sets_every_type(self, client: TrelloClient) -> None:
        """py-trello's Card.set_custom_field (PUT /1/card/.../item) and its typed readers round-trip each type."""
        card = sales_card(client, "Partner portal demo account")
        defs = {d.name: d for d in card.board.get_custom_field_definitions()}
        card.set_custom_field("Medium", defs["Priority"])
        card.set_custom_field("1250.5", defs["Deal size"])
        card.set_custom_field("Initech", defs["Customer"])
        card.set_custom_field("2027-03-01T10:00:00.000Z", defs["Close date"])
        card.get_custom_field_by_name("Signed")  # the definition exists before it has a value
        client.fetch_json(
            f"/card/{card.id}/customField/{defs['Signed'].id}/item",
            http_method="PUT",
            post_args={"value": {"checked": "true"}},
        )
        fresh = client.get_card(card.id)
        values = {field.name: field.value for field in fresh.custom_fields}
        assert values == {
            "Priority": "Medium", "Deal size": 1250.5, "Customer": "Initech",
            "Close date": "2027-03-01T10:00:00.000Z", "Signed": True,
        }  # fmt: skip
        for name in ("Priority", "Deal size", "Customer", "Close date"):
            card.set_custom_field("", defs[name])
        with pytest.raises(ResourceUnavailable):  # py-trello sends a checkbox {"idValue": ...}: only lists take it
            card.set_custom_field("", defs["Signed"])
        client.fetch_json(
            f"/cards/{card.id}/customField/{defs['Signed'].id}/item", http_method="PUT", post_args={"value": ""}
        )
        assert client.get_card(card.id).custom_fields == []

    def test_json_numbers_and_booleans_are_stored_as_trello_shows_them(
        self, emulator: TrelloEmulator, client: TrelloClient
    ) -> None:
        """A JSON number or boolean is answered as Trello's string form; checked false clears the checkbox."""
        card = sales_card(client, "Case study with Umbrella")
        fields = definitions(client)
        answer = put_item(emulator, card.id, fields["Deal size"]["id"], {"value": {"number": 7}})
        assert answer.status_code == 200
        assert answer.json()["value"] == {"number": "7"}
        assert put_item(emulator, card.id, fields["Signed"]["id"], {"value": {"checked": True}}).json()["value"] == {
            "checked": "true"
        }
        cleared = put_item(emulator, card.id, fields["Signed"]["id"], {"value": {"checked": False}})
        assert cleared.json()["value"] is None
        items = client.fetch_json(f"/cards/{card.id}/customFieldItems")
        assert [item["idCustomField"] for item in items] == [fields["Deal size"]["id"]]


class TestActions:
    def test_a_change_is_an_update_custom_field_item_action(
        self, emulator: TrelloEmulator, client: TrelloClient
    ) -> None:
        """updateCustomFieldItem carries customField, customFieldItem and old; boards show it, cards on request."""
        card = sales_card(client, "Acme Foods asks for SSO")
        fields = definitions(client)
        low = next(o["id"] for o in fields["Priority"]["options"] if o["value"]["text"] == "Low")
        emulator.act_as("eli@corp.example").set_custom_field(card.id, "Priority", "Low")
        emulator.act_as("eli@corp.example").set_custom_field(card.id, "Priority", "Low")  # unchanged: no action
        board_actions = client.fetch_json(f"/boards/{card.board_id}/actions")
        action = board_actions[0]
        assert action["type"] == "updateCustomFieldItem"
        assert [a["type"] for a in board_actions].count("updateCustomFieldItem") == 1
        assert action["memberCreator"]["username"] == "eli"
        data = action["data"]
        assert data["customField"] == {"id": fields["Priority"]["id"], "name": "Priority", "type": "list"}
        assert data["customFieldItem"]["idValue"] == low
        high = next(o["id"] for o in fields["Priority"]["options"] if o["value"]["text"] == "High")
        assert data["old"] == {"idValue": high}
        assert data["card"]["id"] == card.id
        assert client.fetch_json(f"/cards/{card.id}/actions") == []
        on_card = client.fetch_json(f"/cards/{card.id}/actions", query_params={"filter": "updateCustomFieldItem"})
        assert [a["id"] for a in on_card] == [action["id"]]
        assert_conforms("trello", "get", "/cards/{id}/actions", 200, on_card)
        put_item(emulator, card.id, fields["Deal size"]["id"], {"value": ""})
        cleared = client.fetch_json(f"/boards/{card.board_id}/actions", query_params={"limit": "1"})[0]["data"]
        assert cleared["old"] == {"value": {"number": "48000"}}
        assert cleared["customFieldItem"]["value"] is None


class TestRefusals:
    @pytest.mark.parametrize(
        ("name", "body"),
        [
            ("Priority", {"idValue": "5abbe4b7ddc1b351ef961414"}),  # not an option of the field
            ("Priority", {"value": {"text": "High"}}),  # a list field takes idValue
            ("Deal size", {"value": {"number": "lots"}}),
            ("Deal size", {"value": {"text": "12"}}),  # the key must be the field's type
            ("Deal size", {"idValue": "5abbe4b7ddc1b351ef961414"}),
            ("Customer", {"value": "Acme"}),
            ("Customer", {"value": {"text": 12}}),
            ("Close date", {"value": {"date": "next friday"}}),
            ("Signed", {"value": {"checked": "yes"}}),
            ("Signed", {}),
        ],
    )
    def test_a_wrong_value_is_a_400_and_changes_nothing(
        self, emulator: TrelloEmulator, client: TrelloClient, name: str, body: dict[str, object]
    ) -> None:
        """Trello's plain-text 400 for a value of the wrong type or an unknown option."""
        card = sales_card(client, "Acme Foods asks for SSO")
        before = client.fetch_json(f"/cards/{card.id}/customFieldItems")
        answer = put_item(emulator, card.id, definitions(client)[name]["id"], body)
        assert answer.status_code == 400
        assert answer.text == "Invalid custom field item value."
        assert client.fetch_json(f"/cards/{card.id}/customFieldItems") == before

    def test_unknown_field_and_bad_ids(self, emulator: TrelloEmulator, client: TrelloClient) -> None:
        """An unknown field is a 404, a malformed id a 400; py-trello's list setter refuses an unknown option."""
        card = sales_card(client, "Acme Foods asks for SSO")
        assert put_item(emulator, card.id, "5abbe4b7ddc1b351ef961414", {"value": ""}).status_code == 404
        assert put_item(emulator, card.id, "nope", {"value": ""}).status_code == 400
        with pytest.raises(ResourceUnavailable):
            client.fetch_json("/customFields/5abbe4b7ddc1b351ef961414")
