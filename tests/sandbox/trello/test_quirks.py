"""The Trello behaviours that break naive sync engines: the action log, hidden e-mails, rate limits, act-as."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from trello import TrelloClient
from trello.exceptions import ResourceUnavailable

from sandbox.core import ACT_AS_HEADER
from sandbox.trello import TrelloEmulator
from tests.sandbox.trello.support import auth_params, client_for, running_emulator

PEOPLE = ["ana", "ben", "chen", "dana", "eli", "farah", "gus", "hana"]


@pytest.fixture
def emulator() -> Iterator[TrelloEmulator]:
    with running_emulator() as service:
        service.rate_limits_enabled = False
        yield service


def board_id(emulator: TrelloEmulator) -> str:
    return next(iter(emulator.state.boards))


class TestActionLog:
    def test_actions_come_newest_first_and_page_with_before(
        self, emulator: TrelloEmulator, client: TrelloClient
    ) -> None:
        """Board actions are newest first; limit=N pages walked with before=<oldest id> see each action once."""
        ana = emulator.act_as("ana@corp.example")
        card_id = ana.create_card("Requests", "Paging test")
        for n in range(23):
            ana.comment(card_id, f"comment {n}")
        board = client.get_board(board_id(emulator))
        everything = board.fetch_actions("all", action_limit=1000)
        dates = [action["date"] for action in everything]
        assert dates == sorted(dates, reverse=True)
        seen: list[str] = []
        before = None
        while True:
            page = board.fetch_actions("all", action_limit=7, before=before)
            if not page:
                break
            assert len(page) <= 7
            seen += [action["id"] for action in page]
            before = page[-1]["id"]
        assert seen == [action["id"] for action in everything]
        page_two = client.fetch_json(f"/boards/{board.id}/actions", query_params={"limit": 5, "page": 2})
        assert [a["id"] for a in page_two] == seen[10:15]
        assert len(seen) == len(set(seen)) == 13 + 1 + 23  # seeded lists and cards, the new card, the comments

    def test_a_history_over_1000_actions_needs_two_calls(self, emulator: TrelloEmulator, client: TrelloClient) -> None:
        """One call returns at most 1000 actions; before=<the 1000th id> fetches the rest, nothing twice."""
        ben = emulator.act_as("ben@corp.example")
        card_id = ben.create_card("Doing", "Chatty")
        for n in range(1010):
            ben.comment(card_id, f"note {n}")
        board = client.get_board(board_id(emulator))
        first = board.fetch_actions("all", action_limit=1000)
        rest = board.fetch_actions("all", action_limit=1000, before=first[-1]["id"])
        assert (len(first), len(rest)) == (1000, 13 + 1 + 1010 - 1000)
        assert rest[-1]["type"] == "createList"
        assert not {a["id"] for a in first} & {a["id"] for a in rest}

    def test_since_takes_an_action_id_or_a_date(self, emulator: TrelloEmulator, client: TrelloClient) -> None:
        """since= is exclusive and accepts an action id or an ISO date."""
        board = client.get_board(board_id(emulator))
        newest = board.fetch_actions("all", action_limit=1)[0]
        card_id = emulator.act_as("ben@corp.example").create_card("Doing", "After the mark")
        after = board.fetch_actions("all", since=newest["id"])
        assert [(a["type"], a["data"]["card"]["id"]) for a in after] == [("createCard", card_id)]
        assert [a["id"] for a in board.fetch_actions("all", since=newest["date"])] == [after[0]["id"]]

    def test_limit_over_1000_is_400(self, emulator: TrelloEmulator, client: TrelloClient) -> None:
        """At most 1000 actions per call: more is a 400, so a full history needs before= paging."""
        board = client.get_board(board_id(emulator))
        with pytest.raises(ResourceUnavailable, match="invalid value for limit") as raised:
            board.fetch_actions("all", action_limit=1001)
        assert "400" in str(raised.value)
        assert len(board.fetch_actions("all", action_limit=1000)) == 13

    def test_update_card_old_holds_exactly_the_changed_fields(self, client: TrelloClient) -> None:
        """updateCard carries data.old with the previous value of the field it changed, and nothing else."""
        card = next(c for c in client.list_boards()[0].open_cards() if c.name == "Renewal deck Q4")
        card.set_name("Renewal deck Q1")
        card.set_closed(True)
        card.change_list(client.list_boards()[0].open_lists()[0].id)
        updates = card.fetch_actions("updateCard")
        assert [u["data"]["old"] for u in updates] == [
            {"idList": updates[0]["data"]["listBefore"]["id"]},
            {"closed": False},
            {"name": "Renewal deck Q4"},
        ]
        assert updates[0]["data"]["listBefore"]["name"] == "Done"
        assert updates[0]["data"]["listAfter"]["name"] == "Requests"
        assert updates[1]["data"]["card"]["closed"] is True
        assert [u["type"] for u in card.fetch_actions("updateCard:closed")] == ["updateCard"]

    def test_card_actions_default_to_comments_and_moves(self, emulator: TrelloEmulator, client: TrelloClient) -> None:
        """GET /cards/{id}/actions without filter returns commentCard and updateCard:idList only."""
        ana = emulator.act_as("ana@corp.example")
        card_id = ana.create_card("Requests", "Defaults")
        ana.update_card(card_id, name="Defaults!")
        ana.move_card(card_id, "Doing")
        ana.comment(card_id, "moved")
        types = [(a["type"], sorted(a["data"].get("old", {}))) for a in client.fetch_json(f"/cards/{card_id}/actions")]
        assert types == [("commentCard", []), ("updateCard", ["idList"])]

    def test_deleted_card_is_only_a_delete_card_action(self, emulator: TrelloEmulator, client: TrelloClient) -> None:
        """After DELETE the card is 404; the board log keeps a deleteCard with just id, idShort and shortLink."""
        card = next(c for c in client.list_boards()[0].open_cards() if c.name == "Volume discount approval")
        card.delete()
        with pytest.raises(ResourceUnavailable, match="404"):
            client.fetch_json(f"/cards/{card.id}")
        deleted = client.get_board(board_id(emulator)).fetch_actions("deleteCard")
        assert len(deleted) == 1
        assert deleted[0]["data"]["card"] == {"id": card.id, "idShort": card.idShort, "shortLink": card.shortUrl[-8:]}
        assert deleted[0]["data"]["list"]["name"] == "Requests"

    def test_member_and_label_changes_are_actions(self, emulator: TrelloEmulator, client: TrelloClient) -> None:
        """Members, labels, attachments and comment edits/deletes are all in the log by type."""
        eli = emulator.act_as("eli@corp.example")
        card_id = eli.create_card("Requests", "Everything")
        eli.add_member(card_id, "hana@corp.example")
        eli.remove_member(card_id, "hana@corp.example")
        eli.add_label(card_id, "urgent")
        eli.remove_label(card_id, "urgent")
        comment = eli.comment(card_id, "hello")
        eli_client = client_for(emulator, "eli@corp.example")
        eli_client.fetch_json(f"/actions/{comment}", http_method="PUT", post_args={"text": "hello again"})
        eli_client.fetch_json(f"/actions/{comment}", http_method="DELETE")
        attached = eli_client.fetch_json(
            f"/cards/{card_id}/attachments", http_method="POST", post_args={"url": "https://example.com/a"}
        )
        eli_client.fetch_json(f"/cards/{card_id}/attachments/{attached['id']}", http_method="DELETE")
        log = client.fetch_json(f"/cards/{card_id}/actions", query_params={"filter": "all", "limit": 100})
        assert [a["type"] for a in log] == [
            "deleteAttachmentFromCard",
            "addAttachmentToCard",
            "deleteComment",
            "updateComment",
            "removeLabelFromCard",
            "addLabelToCard",
            "removeMemberFromCard",
            "addMemberToCard",
            "createCard",
        ]
        assert log[3]["data"]["old"] == {"text": "hello"}
        assert log[7]["member"]["username"] == "hana"
        assert {a["memberCreator"]["username"] for a in log} == {"eli"}


class TestPeople:
    def test_email_is_visible_only_to_the_member_themself(self, emulator: TrelloEmulator, client: TrelloClient) -> None:
        """Trello shows a member's e-mail only to that member: everyone else reads null."""
        assert client.fetch_json("/members/ana")["email"] is None
        assert client.get_member("ana").email is None
        ana = client_for(emulator, "ana@corp.example")
        assert ana.get_member("me").email == "ana@corp.example"
        assert ana.fetch_json("/members/ana")["email"] == "ana@corp.example"
        board_members = client.fetch_json(f"/boards/{board_id(emulator)}/members", query_params={"fields": "all"})
        assert {m["username"]: m["email"] for m in board_members}["ana"] is None

    def test_act_as_header_and_python_actor_write_as_that_person(
        self, emulator: TrelloEmulator, client: TrelloClient
    ) -> None:
        """X-Sandbox-Act-As and act_as() record the named member as the action's creator."""
        lists = client.fetch_json(f"/boards/{board_id(emulator)}/lists")
        response = requests.post(
            f"{emulator.url}/1/cards",
            params={**auth_params(emulator), "idList": lists[0]["id"], "name": "by dana"},
            headers={ACT_AS_HEADER: "dana@corp.example"},
            timeout=5,
        )
        card_id = response.json()["id"]
        emulator.act_as("gus@corp.example").archive(card_id)
        log = client.fetch_json(f"/cards/{card_id}/actions", query_params={"filter": "createCard,updateCard"})
        assert [(a["type"], a["memberCreator"]["username"]) for a in log] == [
            ("updateCard", "gus"),
            ("createCard", "dana"),
        ]

    def test_actor_deletes_and_reports_unknown_names(self, emulator: TrelloEmulator) -> None:
        """The Python actor deletes cards and names what it cannot find."""
        hana = emulator.act_as("hana@corp.example")
        card_id = hana.create_card("Doing", "Temp", desc="x", idLabels=[])
        hana.delete(card_id)
        assert emulator.state.cards[card_id].deleted
        with pytest.raises(Exception, match="no list"):
            hana.create_card("Nowhere", "x")


class TestRateLimits:
    def test_a_burst_over_100_per_token_is_429(self, emulator: TrelloEmulator) -> None:
        """The 101st request of one token within 10 s is a 429 with Trello's body and headers, no Retry-After."""
        emulator.rate_limits_enabled = True
        params = auth_params(emulator)
        with requests.Session() as http:
            answers = [http.get(f"{emulator.url}/1/members/me", params=params, timeout=5) for _ in range(101)]
        assert [a.status_code for a in answers[:100]] == [200] * 100
        first, limited = answers[0], answers[100]
        assert first.headers["x-rate-limit-api-token-max"] == "100"
        assert first.headers["x-rate-limit-api-token-remaining"] == "99"
        assert first.headers["x-rate-limit-api-token-interval-ms"] == "10000"
        assert first.headers["x-rate-limit-api-key-max"] == "300"
        assert limited.status_code == 429
        assert limited.json() == {"error": "API_TOKEN_LIMIT_EXCEEDED", "message": "Rate limit exceeded"}
        assert limited.headers["x-rate-limit-api-token-remaining"] == "0"
        assert "Retry-After" not in limited.headers

    def test_the_key_allows_300_across_tokens(self, emulator: TrelloEmulator) -> None:
        """Several tokens of one key share 300 requests per 10 s: the 301st is API_KEY_LIMIT_EXCEEDED."""
        emulator.rate_limits_enabled = True

        def burst(person: str) -> list[requests.Response]:
            params = auth_params(emulator, f"{person}@corp.example")
            with requests.Session() as http:
                return [http.get(f"{emulator.url}/1/members/me", params=params, timeout=5) for _ in range(40)]

        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = [a for batch in pool.map(burst, PEOPLE) for a in batch]
        statuses = [a.status_code for a in answers]
        assert statuses.count(200) == 300
        assert statuses.count(429) == 20
        assert {a.json()["error"] for a in answers if a.status_code == 429} == {"API_KEY_LIMIT_EXCEEDED"}

    def test_py_trello_hides_the_429_details(self, emulator: TrelloEmulator) -> None:
        """py-trello raises a bare ResourceUnavailable on 429: no response, no headers to back off by."""
        emulator.rate_limits_enabled = True
        client = client_for(emulator)
        for _ in range(100):
            client.fetch_json("/members/me")
        with pytest.raises(ResourceUnavailable) as raised:
            client.fetch_json("/members/me")
        assert raised.value._status == 429
        assert not hasattr(raised.value, "response")
        assert not hasattr(raised.value, "headers")
