"""How a client finds a card whose create answer was lost: urlSource markers, createCard actions, /1/batch reads.

Everything goes through py-trello's ``TrelloClient.fetch_json`` over the connector's transport, as syncd does.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

import pytest
from trello import TrelloClient
from trello.exceptions import ResourceUnavailable

from sandbox.core import FaultRule
from sandbox.trello import TrelloEmulator
from tests.sandbox.trello.support import client_for

MARKER = "https://syncd.invalid/sync/s-42"


def board_id(client: TrelloClient) -> str:
    return str(client.list_boards()[0].id)


def create_marked(client: TrelloClient, name: str = "Marked card", url: str = MARKER) -> dict[str, Any]:
    """POST /1/cards with the marker attached in the same request, as the connector creates."""
    first_list = client.list_boards()[0].open_lists()[0]
    body = {"idList": first_list.id, "name": name, "urlSource": url}
    card: dict[str, Any] = client.fetch_json("/cards", http_method="POST", post_args=body)
    return card


def iso_now(emulator: TrelloEmulator) -> str:
    return emulator.clock.now().astimezone(UTC).isoformat().replace("+00:00", "Z")


class TestUrlSource:
    def test_marker_is_listed_on_card_reads_and_board_listings(self, client: TrelloClient) -> None:
        """The urlSource link is the card's attachment; ``attachment_fields=url`` keeps only id and url."""
        card = create_marked(client)
        assert card["badges"]["attachments"] == 1
        assert "attachments" not in client.fetch_json(f"/cards/{card['id']}")
        params = {"attachments": "true", "attachment_fields": "url"}
        read = client.fetch_json(f"/cards/{card['id']}", query_params=params)
        assert [set(a) for a in read["attachments"]] == [{"id", "url"}]
        assert read["attachments"][0]["url"] == MARKER
        listed = client.fetch_json(f"/boards/{board_id(client)}/cards/all", query_params={**params, "fields": "name"})
        mine = next(c for c in listed if c["id"] == card["id"])
        assert mine["attachments"] == read["attachments"]
        assert all(set(c) == {"id", "name", "attachments"} for c in listed)
        full = client.fetch_json(f"/cards/{card['id']}", query_params={"attachments": "true"})
        assert full["attachments"][0]["name"] == MARKER

    def test_bad_url_source_is_400_and_creates_nothing(self, emulator: TrelloEmulator, client: TrelloClient) -> None:
        """A urlSource that is not http(s) is refused before the card is created."""
        before = len(emulator.state.cards)
        with pytest.raises(ResourceUnavailable, match="invalid value for urlSource"):
            create_marked(client, url="ftp://syncd.invalid/x")
        assert len(emulator.state.cards) == before

    def test_attachments_cover_and_unknown_values(self, client: TrelloClient) -> None:
        """``attachments=cover`` lists only the cover (none here); a value outside true/false/cover is a 400."""
        card = create_marked(client)
        assert client.fetch_json(f"/cards/{card['id']}", query_params={"attachments": "cover"})["attachments"] == []
        assert "attachments" not in client.fetch_json(f"/cards/{card['id']}", query_params={"attachments": "false"})
        with pytest.raises(ResourceUnavailable, match="invalid value for attachments"):
            client.fetch_json(f"/cards/{card['id']}", query_params={"attachments": "yes"})


class TestCreateCardActions:
    def test_create_card_actions_since_a_date_name_the_card_and_its_creator(
        self, emulator: TrelloEmulator, client: TrelloClient
    ) -> None:
        """``filter=createCard&since=<ISO date>``: the cards created since then, with data.card.id and creator."""
        since = iso_now(emulator)
        card = create_marked(client)
        me = client.fetch_json("/members/me")["id"]
        params = {"filter": "createCard", "since": since, "memberCreator": "false"}
        actions = client.fetch_json(f"/boards/{board_id(client)}/actions", query_params=params)
        assert [(a["type"], a["data"]["card"]["id"], a["idMemberCreator"]) for a in actions] == [
            ("createCard", card["id"], me)
        ]
        assert actions[0]["data"]["card"]["name"] == "Marked card"
        assert "memberCreator" not in actions[0]
        later = {**params, "since": iso_now(emulator)}
        assert client.fetch_json(f"/boards/{board_id(client)}/actions", query_params=later) == []


class TestBatch:
    def test_each_url_answers_in_order_as_200_or_its_error(self, client: TrelloClient) -> None:
        """``{"200": body}`` for a found card, an error object (no status key) for a missing or malformed id."""
        card = create_marked(client)
        gone = create_marked(client, name="Deleted")
        client.fetch_json(f"/cards/{gone['id']}", http_method="DELETE")
        urls = [f"/cards/{card['id']}?attachments=true&attachment_fields=url", f"/cards/{gone['id']}", "/cards/nope"]
        answer = client.fetch_json("/batch", query_params={"urls": ",".join(urls)})
        assert answer[0]["200"]["id"] == card["id"]
        assert answer[0]["200"]["attachments"][0]["url"] == MARKER
        assert answer[1] == {
            "statusCode": 404,
            "name": "Error",
            "message": "The requested resource was not found.",
        }
        assert (answer[2]["statusCode"], answer[2]["message"]) == (400, "invalid id")

    def test_more_than_ten_urls_and_nested_batches_are_refused(self, client: TrelloClient) -> None:
        """At most 10 urls (400 otherwise); a url must start with "/" and cannot be the batch route itself."""
        card = create_marked(client)
        with pytest.raises(ResourceUnavailable, match="invalid value for urls"):
            client.fetch_json("/batch", query_params={"urls": ",".join([f"/cards/{card['id']}"] * 11)})
        answer = client.fetch_json("/batch", query_params={"urls": f"/batch?urls=/cards/{card['id']},cards/x"})
        assert [item["statusCode"] for item in answer] == [400, 400]

    def test_each_url_spends_the_rate_limit(self, emulator: TrelloEmulator, client: TrelloClient) -> None:
        """The batch call and each of its urls spend the token's budget; a url past the budget is a 429 item."""
        card = create_marked(client)
        emulator.reset_counters()
        token = emulator.credentials()["token"]
        for _ in range(97):
            emulator.token_window.hit(token)
        urls = ",".join([f"/cards/{card['id']}"] * 3)
        answer = client.fetch_json("/batch", query_params={"urls": urls})
        assert [next(iter(item)) if "200" in item else item["statusCode"] for item in answer] == ["200", "200", 429]
        assert emulator.request_count("GET /1/cards/<card>") == 3
        assert emulator.request_count("GET /1/batch") == 1


class TestLostCreate:
    def test_lost_answer_is_found_again_by_actions_and_batch(
        self, emulator: TrelloEmulator, client: TrelloClient
    ) -> None:
        """A 502 after the create applied: py-trello sees the status; createCard actions and a batch find the card."""
        since = iso_now(emulator)
        emulator.faults.add(FaultRule(kind="status_after", status=502, writes=True, path="^/1/cards$", times=1))
        with pytest.raises(ResourceUnavailable) as lost:
            create_marked(client, name="Lost answer")
        assert lost.value._status == 502
        params = {"filter": "createCard", "since": since, "memberCreator": "false"}
        actions = client.fetch_json(f"/boards/{board_id(client)}/actions", query_params=params)
        made = [action["data"]["card"]["id"] for action in actions]
        query = "?attachments=true&attachment_fields=url&fields=name"
        answer = client.fetch_json("/batch", query_params={"urls": ",".join(f"/cards/{i}{query}" for i in made)})
        found = [item["200"] for item in answer if item["200"]["attachments"][0]["url"] == MARKER]
        assert [card["name"] for card in found] == ["Lost answer"]

    def test_oauth_header_credentials_carry_into_the_batch(self, emulator: TrelloEmulator) -> None:
        """A client authenticating with the OAuth header (no key/token params) batches with the same identity."""
        oauth = client_for(emulator, oauth=True)
        card = create_marked(oauth)
        answer = oauth.fetch_json("/batch", query_params={"urls": f"/cards/{card['id']},/members/me"})
        assert answer[0]["200"]["id"] == card["id"]
        assert answer[1]["200"]["id"] == oauth.fetch_json("/members/me")["id"]
