"""The Trello connector on py-trello, against the Trello emulator: the contract plus Trello's own quirks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import ClassVar

import pytest

from connectors.pacing import RetryPolicy, TokenBucket
from connectors.trello import TrelloConnector
from syncd.errors import AuthFailed
from syncd.model import Person
from syncd.sandbox.seed import load_seed
from syncd.sandbox.trello import TrelloEmulator
from tests.connectors.contract import ConnectorContract, drain
from tests.connectors.receiver import Receiver

FAST = RetryPolicy(attempts=4, max_total_s=20, initial_s=0.01, max_wait_s=2)
SEED = load_seed()
PEOPLE = {person.email: person.username for person in SEED.people}


@pytest.fixture
def emulator() -> Iterator[TrelloEmulator]:
    service = TrelloEmulator(SEED)
    service.start()
    yield service
    service.stop()


def _board(emulator: TrelloEmulator) -> str:
    return next(iter(emulator.state.boards))


def _connector(emulator: TrelloEmulator, **options: object) -> TrelloConnector:
    credentials = emulator.credentials()
    return TrelloConnector(
        base_url=emulator.url,
        key=credentials["key"],
        token=credentials["token"],
        board_id=_board(emulator),
        people=PEOPLE,
        policy=FAST,
        # Each test has its own emulator, so its own budgets (the shared per-credential ones span the process).
        buckets=[TokenBucket.per_window(100, 10), TokenBucket.per_window(300, 10)],
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
def connector(emulator: TrelloEmulator) -> TrelloConnector:
    return _connector(emulator)


@pytest.fixture
def fresh_connector(emulator: TrelloEmulator) -> TrelloConnector:
    return _connector(emulator)


@pytest.fixture
def impatient_connector(emulator: TrelloEmulator) -> TrelloConnector:
    """A connector that gives up on an answer after half a second (a write may land after that)."""
    return _connector(emulator, timeout_s=0.5)


class TrelloHuman:
    """Eli from Sales, working in Trello."""

    def __init__(self, emulator: TrelloEmulator) -> None:
        self.actor = emulator.act_as("eli@corp.example")

    def rename(self, ref: str, title: str) -> None:
        self.actor.update_card(ref, name=title)

    def delete(self, ref: str) -> None:
        self.actor.delete(ref)

    def move(self, ref: str, status: str) -> None:
        self.actor.move_card(ref, status)


@pytest.fixture
def human(emulator: TrelloEmulator) -> TrelloHuman:
    return TrelloHuman(emulator)


@pytest.fixture
def statuses() -> tuple[str, str]:
    return ("Requests", "Doing")


@pytest.fixture
def someone() -> Person:
    return Person("farah@corp.example")


class TestTrelloContract(ConnectorContract):
    create_path: ClassVar[str] = r"^/1/cards$"
    comment_path: ClassVar[str] = r"^/1/cards/[^/]+/actions/comments$"

    @staticmethod
    def expected_due(value: date | datetime | None) -> date | datetime | None:
        if isinstance(value, date) and not isinstance(value, datetime):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
        return value


class TestTrelloFeed:
    def test_an_idle_poll_costs_one_request(self, connector: TrelloConnector, emulator: TrelloEmulator) -> None:
        """With nothing changed, a poll is exactly one actions call."""
        _, cursor = drain(connector, None)
        emulator.reset_counters()
        assert connector.changes(cursor).records == ()
        assert emulator.request_count() == 1

    def test_pages_past_the_1000_actions_limit(self, connector: TrelloConnector, emulator: TrelloEmulator) -> None:
        """More than 1000 actions since the cursor are all read (paged with before=), in 3 + 1 requests."""
        _, cursor = drain(connector, None)
        actor = emulator.act_as("eli@corp.example")
        card = actor.create_card("Requests", "Busy card")
        for n in range(1100):
            actor.update_card(card, desc=f"edit {n}")
        last = actor.create_card("Requests", "After the burst")
        emulator.reset_counters()
        batch = connector.changes(cursor)
        assert {card, last} <= {record.ref for record in batch.records}
        assert emulator.request_count("GET /1/boards/<board>/actions") == 2
        assert emulator.request_count() == 3  # two pages of actions, one board listing

    def test_a_card_moved_by_a_person_reports_its_new_list(
        self, connector: TrelloConnector, emulator: TrelloEmulator
    ) -> None:
        """A list move made in Trello shows up as the new status."""
        created = connector.create({"title": "Move me", "status": "Requests"}, marker="sync-move-1")
        _, cursor = drain(connector, None)
        emulator.act_as("farah@corp.example").move_card(created.ref, "Done")
        (record,) = connector.changes(cursor).records
        assert record.fields["status"] == "Done"

    def test_people_outside_the_directory_are_reported_not_guessed(self, connector: TrelloConnector) -> None:
        """Assigning an e-mail the directory does not know is an error naming the person and the fix."""
        with pytest.raises(Exception, match="people directory"):
            connector.create({"title": "x", "assignees": (Person("stranger@else.example"),)}, marker="sync-p-1")


class TestTrelloFaults:
    def test_a_refused_token_is_fatal_and_names_no_secret(self, emulator: TrelloEmulator) -> None:
        """A wrong token fails at once with AuthFailed; the message does not contain the key or token."""
        credentials = emulator.credentials()
        connector = TrelloConnector(
            base_url=emulator.url, key=credentials["key"], token="wrong-token", board_id=_board(emulator), policy=FAST
        )
        with pytest.raises(AuthFailed) as raised:
            connector.describe()
        assert "wrong-token" not in str(raised.value)
        assert credentials["key"] not in str(raised.value)


class TestTrelloWebhooks:
    def test_a_signed_delivery_names_its_card(self, emulator: TrelloEmulator) -> None:
        """A delivery signed over body + callback URL yields the card id; a forged one is refused."""
        url = "https://syncd.example/hooks/trello"
        connector = _connector(emulator, secret="app-secret", callback_url=url)
        body = json.dumps({"action": {"id": "a1", "type": "updateCard", "data": {"card": {"id": "c1"}}}}).encode()
        signature = base64.b64encode(hmac.new(b"app-secret", body + url.encode(), hashlib.sha1).digest()).decode()
        assert connector.verify_webhook({"X-Trello-Webhook": signature}, body) == ["c1"]
        assert connector.verify_webhook({"X-Trello-Webhook": signature}, body) == []  # redelivered: seen
        with pytest.raises(AuthFailed):
            connector.verify_webhook({"X-Trello-Webhook": "AAAA"}, body)

    def test_registered_webhook_delivers_verifiable_hints(self, emulator: TrelloEmulator) -> None:
        """ensure_webhook passes Trello's HEAD check once; a person's edit arrives signed and names the card."""
        with Receiver() as receiver:
            secret = emulator.credentials()["secret"]
            connector = _connector(emulator, secret=secret, callback_url=receiver.url)
            first = connector.ensure_webhook()
            assert connector.ensure_webhook() == first
            card = next(iter(emulator.state.cards))
            emulator.act_as("eli@corp.example").update_card(card, name="Edited while watched")
            (delivery,) = receiver.wait_for(1)
            assert connector.verify_webhook(delivery.headers, delivery.body) == [card]
