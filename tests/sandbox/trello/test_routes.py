"""The Trello emulator's routes, driven through py-trello over the connector's BaseUrlSession."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests
from trello import Card, TrelloClient
from trello.exceptions import ResourceUnavailable, Unauthorized

from connectors.trello.http import BaseUrlSession
from sandbox.seed import SERVICE_ACCOUNT, load_seed, token_for
from sandbox.trello import TrelloEmulator
from tests.conformance import assert_conforms
from tests.sandbox.trello.support import Receiver, auth_params, client_for


def sales_card(client: TrelloClient, name: str) -> Card:
    board = client.list_boards()[0]
    return next(card for card in board.all_cards() if card.name == name)


class TestTransport:
    def test_base_url_session_rewrites_both_trello_roots(self) -> None:
        """py-trello's two hard-coded roots go to <base>/1; other URLs are left alone."""
        session = BaseUrlSession("http://127.0.0.1:9/", timeout_s=3.0)
        assert session.rewrite("https://api.trello.com/1/cards/x") == "http://127.0.0.1:9/1/cards/x"
        assert session.rewrite("https://trello.com/1/tokens/t/webhooks/") == "http://127.0.0.1:9/1/tokens/t/webhooks/"
        assert session.rewrite("https://example.com/1/x") == "https://example.com/1/x"

    def test_base_url_session_applies_its_default_timeout(self, emulator: TrelloEmulator) -> None:
        """py-trello passes no timeout; the session adds one (50 ms against a 300 ms emulator times out)."""
        emulator.latency_ms = 300
        session = BaseUrlSession(emulator.url, timeout_s=0.05)
        with pytest.raises(requests.Timeout):
            session.get("https://api.trello.com/1/members/me", params=auth_params(emulator))
        assert session.get("https://api.trello.com/1/members/me", params=auth_params(emulator), timeout=5).ok


class TestCredentials:
    def test_credentials_are_stable_and_known_before_start(self, emulator: TrelloEmulator) -> None:
        """Key, token and secret derive from the seed: a second, unstarted emulator reports the same ones."""
        again = TrelloEmulator(load_seed())
        assert again.credentials() == {**emulator.credentials(), "url": ""}
        assert emulator.credentials()["url"] == emulator.url
        assert emulator.credentials()["key"] == token_for("trello", SERVICE_ACCOUNT, "key")


class TestAuthentication:
    def test_key_and_token_params_and_the_oauth_header_both_work(self, emulator: TrelloEmulator) -> None:
        """py-trello without token_secret sends key/token params; with it an OAuth1 header: both are accepted."""
        assert [b.name for b in client_for(emulator).list_boards()] == ["Sales Requests"]
        oauth = client_for(emulator, "eli@corp.example", oauth=True)
        assert oauth.get_member("me").username == "eli"

    def test_bad_key_and_bad_token_are_plain_text_401s(self, emulator: TrelloEmulator) -> None:
        """Trello answers 401 with plain text: invalid key, invalid token, unauthorized permission requested."""
        key = emulator.credentials()["key"]
        with pytest.raises(Unauthorized, match="invalid key"):
            TrelloClient("nope", api_secret="x", http_service=BaseUrlSession(emulator.url)).list_boards()
        with pytest.raises(Unauthorized, match="invalid token"):
            TrelloClient(key, api_secret="nope", http_service=BaseUrlSession(emulator.url)).list_boards()
        response = requests.get(f"{emulator.url}/1/members/me", params={"key": key}, timeout=5)
        assert (response.status_code, response.text) == (401, "unauthorized permission requested")
        assert response.headers["Content-Type"].startswith("text/plain")

    def test_key_and_token_may_come_in_a_json_body(self, emulator: TrelloEmulator) -> None:
        """Trello reads key/token from the body of a write as well as from the query."""
        lists = requests.get(
            f"{emulator.url}/1/boards/{self._board_id(emulator)}/lists", params=auth_params(emulator), timeout=5
        ).json()
        response = requests.post(
            f"{emulator.url}/1/cards", json={**auth_params(emulator), "idList": lists[0]["id"], "name": "x"}, timeout=5
        )
        assert response.status_code == 200
        assert response.json()["name"] == "x"

    @staticmethod
    def _board_id(emulator: TrelloEmulator) -> str:
        return next(iter(emulator.state.boards))


class TestMembersAndBoards:
    def test_me_shows_my_own_email(self, client: TrelloClient) -> None:
        """GET /members/me answers every key Member.fetch reads, e-mail included for oneself."""
        me = client.get_member("me")
        assert (me.username, me.full_name, me.email, me.initials) == (
            "syncd-bot",
            "syncd bot",
            "syncd-bot@corp.example",
            "SB",
        )
        assert me.avatar_url.startswith("https://")

    def test_member_boards_resolve_the_workspace(self, client: TrelloClient) -> None:
        """Member.get_boards reads idOrganization and fetches the workspace it names."""
        boards = client.get_member("me").get_boards("all")
        assert [board.name for board in boards] == ["Sales Requests"]
        assert boards[0].organization.name == "acmecorp"
        assert client.get_member("ana").get_boards("open")[0].name == "Sales Requests"

    def test_board_lists_labels_and_members(self, client: TrelloClient) -> None:
        """A board answers its lists (by filter), labels and members."""
        board = client.list_boards()[0]
        board.fetch()
        assert board.url.startswith("https://trello.com/b/")
        assert [lst.name for lst in board.open_lists()] == ["Requests", "Doing", "Done"]
        assert board.closed_lists() == []
        assert {(label.name, label.color) for label in board.get_labels()} == {
            ("launch", "green"),
            ("enterprise", "purple"),
            ("urgent", "red"),
        }
        members = {member.username for member in board.all_members()}
        assert {"syncd-bot", "eli", "farah", "hana"} <= members

    def test_board_fields_and_last_activity(self, client: TrelloClient) -> None:
        """GET /boards/{id}/{field} answers {"_value": ...}; dateLastActivity follows the newest action."""
        board = client.list_boards()[0]
        assert client.fetch_json(f"/boards/{board.id}/name") == {"_value": "Sales Requests"}
        card = board.open_lists()[0].add_card("Touch the board")
        newest = board.fetch_actions("all", action_limit=1)[0]
        assert newest["data"]["card"]["id"] == card.id
        assert board.get_last_activity() == datetime.fromisoformat(newest["date"])

    def test_labels_are_created_by_both_routes(self, client: TrelloClient) -> None:
        """POST /labels (py-trello's add_label) and POST /boards/{id}/labels both add a board label."""
        board = client.list_boards()[0]
        label = board.add_label("renewal", "blue")
        assert client.get_label(label.id, board.id).name == "renewal"
        created = client.fetch_json(f"/boards/{board.id}/labels", http_method="POST", post_args={"name": "x"})
        assert created["color"] is None
        assert {"renewal", "x"} <= {lbl.name for lbl in board.get_labels()}
        with pytest.raises(ResourceUnavailable, match="invalid value for color"):
            board.add_label("bad", "mauve")

    def test_board_card_filters(self, client: TrelloClient) -> None:
        """open, closed, all and visible cards; one card by id under the board."""
        board = client.list_boards()[0]
        card = board.open_cards()[0]
        card.set_closed(True)
        assert card.id not in {c.id for c in board.open_cards()}
        assert [c.id for c in board.closed_cards()] == [card.id]
        assert len(board.all_cards()) == 10
        assert len(board.visible_cards()) == 9
        assert board.get_card(card.id).closed is True


class TestLists:
    def test_create_close_and_read_lists(self, client: TrelloClient) -> None:
        """POST /lists, GET /lists/{id}, PUT /lists/{id}/closed and the list filters."""
        board = client.list_boards()[0]
        created = board.add_list("Parked", pos="top")
        assert board.open_lists()[0].name == "Parked"
        created.close()
        assert [lst.name for lst in board.closed_lists()] == ["Parked"]
        fetched = client.get_list(created.id)
        assert (fetched.name, fetched.closed) == ("Parked", True)
        created.open()
        created.set_name("Parking")
        created.fetch()
        assert (created.name, created.closed) == ("Parking", False)

    def test_list_cards_and_paging_with_before(self, client: TrelloClient) -> None:
        """GET /lists/{id}/cards (open by default) pages newest-first batches with before=<card id>."""
        requests_list = client.list_boards()[0].open_lists()[0]
        names = [card.name for card in requests_list.list_cards()]
        assert len(names) == 5
        paged = [card.name for card in requests_list.list_cards_iter(batch=2)]
        assert sorted(paged) == sorted(names)


class TestCards:
    def test_create_card_with_every_option(self, client: TrelloClient) -> None:
        """List.add_card: labels, members, position, due; Card.from_json finds every key it reads."""
        board = client.list_boards()[0]
        doing = board.open_lists()[1]
        eli = next(m for m in board.all_members() if m.username == "eli")
        launch = next(label for label in board.get_labels() if label.name == "launch")
        card = doing.add_card(
            "Demo for Hooli",
            desc="**bold**",
            labels=[launch],
            assign=[eli],
            position="top",
            due="2027-03-01T10:00:00+02:00",
        )
        assert card.due == "2027-03-01T08:00:00.000Z"
        assert card.idMembers == [eli.id]
        assert [label.name for label in card.labels] == ["launch"]
        assert card.pos < min(c.pos for c in doing.list_cards() if c.id != card.id)
        assert card.url.startswith(card.shortUrl)
        assert card.card_created_date.year >= 2026

    def test_create_card_without_id_list_is_400(self, client: TrelloClient) -> None:
        """Trello refuses a card without a list: 400 invalid value for idList."""
        with pytest.raises(ResourceUnavailable, match="invalid value for idList") as raised:
            client.fetch_json("/cards", http_method="POST", post_args={"name": "orphan"})
        assert "400" in str(raised.value)

    def test_field_setters_change_the_card(self, client: TrelloClient) -> None:
        """Every py-trello setter (PUT /cards/{id}/{field}) changes the card and its dateLastActivity."""
        card = sales_card(client, "Acme Foods asks for SSO")
        before = card.dateLastActivity
        card.set_name("Acme Foods needs SSO")
        card.set_description("SAML *and* SCIM")
        card.set_due(datetime(2027, 2, 1, 12, 0, tzinfo=UTC))
        card.set_due_complete()
        card.set_pos("bottom")
        fresh = client.get_card(card.id)
        assert (fresh.name, fresh.desc, fresh.due, fresh.is_due_complete) == (
            "Acme Foods needs SSO",
            "SAML *and* SCIM",
            "2027-02-01T12:00:00.000Z",
            True,
        )
        assert fresh.dateLastActivity > before
        card.remove_due()
        assert client.get_card(card.id).due is None
        card.set_start(datetime(2027, 1, 20, tzinfo=UTC))
        card.subscribe()
        body = client.fetch_json(f"/cards/{card.id}")
        assert (body["start"], body["subscribed"]) == ("2027-01-20T00:00:00.000Z", True)

    def test_put_card_changes_several_fields(self, client: TrelloClient) -> None:
        """PUT /cards/{id} with several fields (and idList) in one request."""
        card = sales_card(client, "Case study with Umbrella")
        done = client.list_boards()[0].open_lists()[2]
        body = client.fetch_json(
            f"/cards/{card.id}",
            http_method="PUT",
            post_args={"name": "Umbrella case study", "idList": done.id, "closed": True},
        )
        assert (body["name"], body["idList"], body["closed"]) == ("Umbrella case study", done.id, True)
        assert client.fetch_json(f"/cards/{card.id}/list")["name"] == "Done"
        assert client.fetch_json(f"/cards/{card.id}/board")["name"] == "Sales Requests"

    def test_move_card_between_lists(self, client: TrelloClient) -> None:
        """Card.change_list moves it, and the move is what list_movements reads back."""
        card = sales_card(client, "Partner portal demo account")
        doing = client.list_boards()[0].open_lists()[1]
        card.change_list(doing.id)
        assert client.get_card(card.id).idList == doing.id
        moves = card.list_movements()
        assert [(m["source"]["name"], m["destination"]["name"]) for m in moves] == [("Requests", "Doing")]

    def test_members_and_labels_on_a_card(self, client: TrelloClient) -> None:
        """POST/DELETE idMembers and idLabels."""
        board = client.list_boards()[0]
        card = sales_card(client, "Partner portal demo account")
        hana = next(m for m in board.all_members() if m.username == "hana")
        urgent = next(label for label in board.get_labels() if label.name == "urgent")
        card.add_member(hana)
        card.add_label(urgent)
        fresh = client.get_card(card.id)
        assert fresh.idMembers == [hana.id]
        assert {label.name for label in fresh.labels} == {"launch", "urgent"}
        with pytest.raises(ResourceUnavailable, match="already"):
            card.add_member(hana)
        card.remove_member(hana)
        card.remove_label(urgent)
        fresh = client.get_card(card.id)
        assert (fresh.idMembers, [label.name for label in fresh.labels]) == ([], ["launch"])

    def test_delete_card_makes_it_404(self, client: TrelloClient) -> None:
        """DELETE /cards/{id}: afterwards the card is 404 everywhere."""
        card = sales_card(client, "Volume discount approval")
        card.delete()
        with pytest.raises(ResourceUnavailable, match="404"):
            client.get_card(card.id)
        assert card.id not in {c.id for c in client.list_boards()[0].all_cards()}

    def test_malformed_id_is_400_invalid_id(self, client: TrelloClient) -> None:
        """Trello rejects a malformed id before looking it up."""
        with pytest.raises(ResourceUnavailable, match="invalid id"):
            client.fetch_json("/cards/not-an-id!")


class TestCommentsAndAttachments:
    def test_comment_edit_and_delete(self, client: TrelloClient) -> None:
        """Comments are commentCard actions; both edit routes and both delete routes work."""
        card = sales_card(client, "Acme Foods asks for SSO")
        first = card.comment("Ping legal")
        assert (first["type"], first["data"]["text"]) == ("commentCard", "Ping legal")
        card.update_comment(first["id"], "Ping legal today")
        second = card.comment("Second")
        client.fetch_json(
            f"/cards/{card.id}/actions/{second['id']}/comments", http_method="PUT", post_args={"text": "Second, edited"}
        )
        fresh = client.get_card(card.id)
        texts = [c["data"]["text"] for c in fresh.fetch_comments()]
        assert texts == ["Ping legal today", "Second, edited"]
        assert fresh.badges["comments"] == 2
        card.delete_comment(second)
        client.fetch_json(f"/actions/{first['id']}", http_method="DELETE")
        assert client.get_card(card.id).fetch_comments(force=True) == []
        assert client.get_card(card.id).badges["comments"] == 0

    def test_only_the_author_may_edit_a_comment(self, emulator: TrelloEmulator, client: TrelloClient) -> None:
        """Someone else's comment cannot be edited."""
        card = sales_card(client, "Acme Foods asks for SSO")
        comment = card.comment("mine")
        other = client_for(emulator, "eli@corp.example")
        with pytest.raises(Unauthorized):
            other.fetch_json(f"/actions/{comment['id']}", http_method="PUT", post_args={"text": "yours"})

    def test_link_attachments(self, client: TrelloClient) -> None:
        """Card.attach(url=...) adds a link attachment; GET one, list them, delete one."""
        card = sales_card(client, "Acme Foods asks for SSO")
        attached = card.attach(name="syncd", url="https://jira.corp.example/browse/ENG-1")
        assert (attached["name"], attached["url"], attached["isUpload"]) == (
            "syncd",
            "https://jira.corp.example/browse/ENG-1",
            False,
        )
        listed = card.get_attachments()
        assert [a.name for a in listed] == ["syncd"]
        one = client.fetch_json(f"/cards/{card.id}/attachments/{attached['id']}")
        assert one["id"] == attached["id"]
        assert client.get_card(card.id).badges["attachments"] == 1
        card.remove_attachment(attached["id"])
        assert card.get_attachments() == []


class TestConformance:
    def test_card_list_board_and_member_match_the_spec(self, client: TrelloClient) -> None:
        """Core entities validate against Trello's own OpenAPI description."""
        card = sales_card(client, "Case study with Umbrella")
        body = client.fetch_json(f"/cards/{card.id}")
        # The spec declares `labels` as label ids; Trello sends label objects, so this card has none.
        assert body["labels"] == []
        assert body["idAttachmentCover"] is None
        assert_conforms("trello", "get", "/cards/{id}", 200, body)
        lst = client.fetch_json(f"/lists/{card.idList}")
        assert_conforms("trello", "get", "/boards/{id}/lists", 200, [lst])
        assert_conforms("trello", "get", "/boards/{id}", 200, client.fetch_json(f"/boards/{card.idBoard}"))
        assert_conforms("trello", "get", "/members/{id}", 200, client.fetch_json("/members/me"))

    def test_actions_and_attachments_match_the_spec(self, client: TrelloClient) -> None:
        """A comment action and the card's attachments validate against the spec."""
        card = sales_card(client, "Case study with Umbrella")
        comment = card.comment("conformance")
        assert_conforms("trello", "post", "/cards/{id}/actions/comments", 200, comment)
        assert_conforms("trello", "get", "/cards/{id}/actions", 200, client.fetch_json(f"/cards/{card.id}/actions"))
        card.attach(url="https://example.com/x")
        attachments = client.fetch_json(f"/cards/{card.id}/attachments")
        assert_conforms("trello", "get", "/cards/{id}/attachments", 200, attachments)


class TestSecondaryRoutes:
    def test_action_list_and_member_logs(self, emulator: TrelloEmulator, client: TrelloClient) -> None:
        """GET /actions/{id}, /lists/{id}/actions (moves count for both lists) and /members/{id}/actions."""
        ana = emulator.act_as("ana@corp.example")
        card_id = ana.create_card("Requests", "Logged")
        ana.move_card(card_id, "Done")
        move = client.fetch_json(f"/cards/{card_id}/actions")[0]
        assert client.fetch_json(f"/actions/{move['id']}")["data"]["listAfter"]["name"] == "Done"
        requests_list = client.list_boards()[0].open_lists()[0]
        assert [a["type"] for a in requests_list.fetch_actions("updateCard")] == ["updateCard"]
        mine = client.fetch_json("/members/ana/actions", query_params={"filter": "createCard,updateCard"})
        assert [(a["type"], a["memberCreator"]["username"]) for a in mine][:2] == [
            ("updateCard", "ana"),
            ("createCard", "ana"),
        ]
        body = client.fetch_json(f"/actions/{move['id']}", query_params={"fields": "type", "memberCreator": "false"})
        assert body == {"id": move["id"], "type": "updateCard"}

    def test_card_subresources(self, client: TrelloClient) -> None:
        """GET /cards/{id}/members, /checklists, /pluginData and the nested card options."""
        card = sales_card(client, "Trial-to-paid email sequence")
        members = client.fetch_json(f"/cards/{card.id}/members")
        assert sorted(m["username"] for m in members) == ["eli", "farah"]
        assert client.fetch_json(f"/cards/{card.id}/checklists") == []
        card.fetch()
        assert card.plugin_data == []
        body = client.fetch_json(
            f"/cards/{card.id}", query_params={"members": "true", "list": "true", "fields": "name"}
        )
        assert set(body) == {"id", "name", "members", "list"}
        assert body["list"]["name"] == "Doing"

    def test_list_routes_by_filter_and_board(self, client: TrelloClient) -> None:
        """GET /boards/{id}/lists/{filter}, PUT /lists/{id} and GET /lists/{id}/board."""
        board = client.list_boards()[0]
        done = board.open_lists()[2]
        client.fetch_json(f"/lists/{done.id}", http_method="PUT", post_args={"name": "Shipped", "closed": True})
        closed = client.fetch_json(f"/boards/{board.id}/lists/closed")
        assert [(lst["name"], lst["closed"]) for lst in closed] == [("Shipped", True)]
        assert client.fetch_json(f"/lists/{done.id}/board")["name"] == "Sales Requests"
        assert len(board.visible_cards()) == 8

    def test_token_webhook_item_routes(self, emulator: TrelloEmulator, client: TrelloClient) -> None:
        """GET/PUT/DELETE /tokens/{token}/webhooks/{id}."""
        receiver = Receiver()
        try:
            token = emulator.credentials()["token"]
            hook = client.create_hook(receiver.url, next(iter(emulator.state.boards)))
            path = f"/tokens/{token}/webhooks/{hook.id}"
            assert client.fetch_json(path)["callbackURL"] == receiver.url
            assert client.fetch_json(path, http_method="PUT", post_args={"description": "x"})["description"] == "x"
            client.fetch_json(path, http_method="DELETE")
            assert client.list_hooks() == []
        finally:
            receiver.close()
