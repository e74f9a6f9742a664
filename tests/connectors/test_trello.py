"""The Trello connector on py-trello, against the Trello emulator: the contract plus Trello's own quirks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests
from trello.exceptions import ResourceUnavailable

from connectors.factory import CAPABILITIES
from connectors.pacing import RetryPolicy, TokenBucket
from connectors.trello import TrelloConnector
from connectors.trello.connector import BY_CARD_FROM, BY_CARD_UP_TO, _format_due
from connectors.trello.errors import translate
from sandbox.seed import load_seed
from sandbox.trello import TrelloEmulator
from syncd.errors import AuthFailed, InvalidItem
from syncd.mapping import UNTITLED, Group, compile_group
from syncd.model import Person, Record
from tests.connectors.contract import ConnectorContract, CustomCase, drain
from tests.connectors.receiver import Receiver

FAST = RetryPolicy(attempts=4, max_total_s=20, initial_s=0.01, max_wait_s=2)
SEED = load_seed()
PEOPLE = {person.email: person.username for person in SEED.people}
MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


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
        self.email = "eli@corp.example"

    def rename(self, ref: str, title: str) -> None:
        self.actor.update_card(ref, name=title)

    def delete(self, ref: str) -> None:
        self.actor.delete(ref)

    def move(self, ref: str, status: str) -> None:
        self.actor.move_card(ref, status)

    def set_custom(self, ref: str, name: str, value: Any) -> None:
        self.actor.set_custom_field(ref, name, value)


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
    custom_cases: ClassVar[tuple[CustomCase, ...]] = (
        ("Priority", "High", "High", "High"),
        ("Deal size", 48000, 48000, 48000),
        ("Customer", "Acme Foods", "Acme Foods", "Acme Foods"),
        ("Close date", date(2027, 2, 15), date(2027, 2, 15), "2027-02-15T12:00:00.000Z"),
        ("Signed", True, True, True),
    )
    custom_blank: ClassVar[dict[str, Any]] = {"Signed": False}

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

    def test_on_a_big_board_a_few_changed_cards_are_read_by_id(
        self, connector: TrelloConnector, emulator: TrelloEmulator
    ) -> None:
        """On a board of BY_CARD_FROM cards (most archived), a few changes cost one batch call, not a listing.

        A card deleted since is reported deleted; more than BY_CARD_UP_TO changed cards cost one listing, which
        spends less of the rate limits than reading them by id.
        """
        actor = emulator.act_as("eli@corp.example")
        cards = [actor.create_card("Requests", f"Old card {n}") for n in range(BY_CARD_FROM)]
        for card in cards[:400]:
            actor.archive(card)
        _, cursor = drain(connector, None)
        for card in cards[400:403]:
            actor.update_card(card, desc="changed")
        actor.delete(cards[403])
        emulator.reset_counters()
        batch = connector.changes(cursor)
        assert sorted(record.ref for record in batch.records) == sorted(cards[400:403])
        assert batch.deleted == (cards[403],)
        assert emulator.request_count("GET /1/batch") == 1
        assert emulator.request_count("GET /1/boards/<board>/cards/<which>") == 0
        for card in cards[: BY_CARD_UP_TO + 1]:
            actor.update_card(card, desc="changed again")
        emulator.reset_counters()
        many = connector.changes(batch.cursor)
        assert len(many.records) == BY_CARD_UP_TO + 1
        assert emulator.request_count("GET /1/boards/<board>/cards/<which>") == 1
        assert emulator.request_count("GET /1/batch") == 0

    def test_on_a_small_board_changed_cards_are_read_with_one_listing(
        self, connector: TrelloConnector, emulator: TrelloEmulator
    ) -> None:
        """A listing of a small board is one request of the rate limits; reading by id would cost more."""
        actor = emulator.act_as("eli@corp.example")
        _, cursor = drain(connector, None)
        card = actor.create_card("Requests", "Small board card")
        emulator.reset_counters()
        assert [record.ref for record in connector.changes(cursor).records] == [card]
        assert emulator.request_count() == 2  # the actions, one listing

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

    def test_syncds_own_write_hints_at_nothing_once_it_knows_its_account(self, emulator: TrelloEmulator) -> None:
        """An action syncd's member created (its write coming back) starts no pass; a person's edit still does."""
        with Receiver() as receiver:
            connector = _connector(emulator, secret=emulator.credentials()["secret"], callback_url=receiver.url)
            connector.ensure_webhook()
            card = next(iter(emulator.state.cards))
            connector.update(card, {"title": "Written by syncd, before it knows itself"})
            (unknown,) = receiver.wait_for(1)
            assert connector.verify_webhook(unknown.headers, unknown.body) == [card]
            assert connector.identify()
            connector.update(card, {"title": "Written by syncd"})
            ours = receiver.wait_for(2)[1]
            assert connector.verify_webhook(ours.headers, ours.body) == []
            emulator.act_as("eli@corp.example").update_card(card, name="Edited by Eli")
            theirs = receiver.wait_for(3)[2]
            assert connector.verify_webhook(theirs.headers, theirs.body) == [card]


def _group() -> Group:
    """The shipped example group: sales is this Trello board, engineering a Jira project."""
    tools: dict[str, Any] = {"engineering": "jira", "sales": "trello", "marketing": "asana"}
    return compile_group(MAPPINGS / "launch-requests.yaml", tools, CAPABILITIES)


def _nothing_sent_refused(emulator: TrelloEmulator) -> None:
    """No request reached Trello only to be refused (a value it cannot hold was never sent)."""
    assert emulator.counters()["statuses"].get("400", 0) == 0


class TestTrelloRefusedValues:
    """One refused value fails only its field: InvalidItem names it, and the codec keeps it from being sent."""

    @pytest.mark.parametrize(
        ("message", "field"),
        [
            ("invalid value for name", "title"),
            ("invalid value for desc", "description"),
            ("invalid value for idList", "status"),
            ("invalid value for dueComplete", "done"),
            ("invalid value for idMembers", "assignees"),
            ("invalid value for due", "due"),
            ('{"message":"invalid date","error":"ERROR"}', "due"),
            ("invalid value for idLabels", "labels"),
            ("invalid value for pos", None),
            ("invalid id", None),
        ],
    )
    def test_the_error_table_names_the_refused_field(self, message: str, field: str | None) -> None:
        """Trello's 400 text names the parameter; the InvalidItem names the canonical field (or none)."""
        response = requests.Response()
        response.status_code = 400
        error = ResourceUnavailable(f"{message} at https://api.trello.com/1/cards/c1?key=k&token=t", response)
        translated = translate(error, "c1")
        assert isinstance(translated, InvalidItem)
        assert (translated.field, translated.ref, translated.status) == (field, "c1", 400)
        assert "token" not in str(translated)

    def test_trellos_own_refusal_of_a_blank_title_names_the_title(self, connector: TrelloConnector) -> None:
        """Sent as is, a title of only spaces is refused by Trello (through the table), naming the title."""
        with pytest.raises(InvalidItem, match="invalid value for name") as raised:
            connector.create({"title": "   "}, marker="sync-blank-raw")
        assert raised.value.field == "title"

    def test_a_blank_title_is_written_untitled(self, connector: TrelloConnector, emulator: TrelloEmulator) -> None:
        """Through the codec, the card is created as "(untitled)" with the rest of its fields; reported."""
        fields, problems = (
            _group().codecs["sales"].encode({"title": " ", "description": "Body", "labels": ["web"]}, create=True)
        )
        created = connector.create(fields, marker="sync-blank-title")
        assert (created.fields["title"], created.fields["description"]) == (UNTITLED, "Body")
        assert created.fields["labels"] == ("web",)
        assert [(p.endpoint, p.field, p.value) for p in problems] == [("sales", "title", " ")]
        _nothing_sent_refused(emulator)

    def test_a_1004_character_title_is_written_whole(self, connector: TrelloConnector) -> None:
        """Trello holds 16,384 characters in a name: nothing is shortened or reported."""
        title = "Launch " + "checklist " * 99 + "end!!!!"
        assert len(title) == 1004
        fields, problems = _group().codecs["sales"].encode({"title": title}, create=True)
        assert problems == []
        assert connector.create(fields, marker="sync-long-title").fields["title"] == title

    def test_a_label_with_a_space_is_written_to_trello(self, connector: TrelloConnector) -> None:
        """Only Jira refuses 'needs review': Trello holds it, so the card carries it."""
        fields, problems = _group().codecs["sales"].encode({"title": "Labelled", "labels": ["needs review"]})
        assert problems == []
        assert connector.create(fields, marker="sync-space-label").fields["labels"] == ("needs review",)

    def test_a_label_syncd_adds_to_the_board_is_read_by_name(
        self, connector: TrelloConnector, emulator: TrelloEmulator
    ) -> None:
        """A card given a label the board lacked reads back with that label's name, then and on later reads."""
        connector.changes(None)  # the board's lists and labels read, as a running daemon has
        lists, labels = "GET /1/boards/<board>/lists", "GET /1/boards/<board>/labels"
        before = emulator.request_count(lists), emulator.request_count(labels)
        fields, _ = _group().codecs["sales"].encode({"title": "Newly labelled", "labels": ["brand-new-label"]})
        created = connector.create(fields, marker="sync-new-label")
        assert created.fields["labels"] == ("brand-new-label",)
        assert [record.fields["labels"] for record in connector.fetch([created.ref])] == [("brand-new-label",)]
        # The label it made is known by name at once: the board's lists and labels are not read again for it.
        assert (emulator.request_count(lists), emulator.request_count(labels)) == before

    def test_year_1_is_never_sent(self, connector: TrelloConnector, emulator: TrelloEmulator) -> None:
        """The connector refuses 0001-01-01 itself, naming the due date (never "1-01-01T..."); nothing is sent."""
        cards = len(emulator.state.cards)
        with pytest.raises(InvalidItem, match="1583-01-01 to 9999-12-31") as raised:
            connector.create({"title": "Year one", "due": date(1, 1, 1)}, marker="sync-year-1-raw")
        assert raised.value.field == "due"
        assert len(emulator.state.cards) == cards
        _nothing_sent_refused(emulator)

    def test_year_1_from_jira_is_reported_and_the_rest_written(
        self, connector: TrelloConnector, emulator: TrelloEmulator
    ) -> None:
        """A Jira issue due 0001-01-01 becomes a card without a due date; the date is a reported problem."""
        group = _group()
        issue = Record(
            tool="jira",
            ref="ENG-1",
            version="v1",
            modified=datetime(2027, 1, 1, tzinfo=UTC),
            fields={"title": "Due long ago", "due": date(1, 1, 1), "labels": ("launch",)},
        )
        view, _ = group.codecs["engineering"].decode(issue)
        assert view.values["due"] == "0001-01-01"
        fields, problems = group.codecs["sales"].encode(view.values, create=True)
        created = connector.create(fields, marker="sync-year-1-jira")
        assert (created.fields["title"], created.fields["due"], created.fields["labels"]) == (
            "Due long ago",
            None,
            ("launch",),
        )
        assert [(p.field, p.value) for p in problems] == [("due", "0001-01-01")]
        _nothing_sent_refused(emulator)

    @pytest.mark.parametrize(
        ("due", "sent"),
        [
            (date(1583, 1, 1), "1583-01-01T00:00:00.000Z"),
            (datetime(2027, 3, 1, 10, 0, 0, 250000, tzinfo=timezone(timedelta(hours=2))), "2027-03-01T08:00:00.250Z"),
            (date(9999, 12, 31), "9999-12-31T00:00:00.000Z"),
        ],
    )
    def test_a_due_date_is_written_with_a_four_digit_year(
        self, connector: TrelloConnector, due: date, sent: str
    ) -> None:
        """Trello's own form, UTC with milliseconds; it reads back as the same instant."""
        assert _format_due(due) == sent
        created = connector.create({"title": "Due", "due": due}, marker=f"sync-due-{sent}")
        assert created.fields["due"] == datetime.fromisoformat(sent.replace("Z", "+00:00"))

    @pytest.mark.parametrize(
        "due",
        [date(1582, 12, 31), datetime(1583, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))), date(1, 1, 1)],
    )
    def test_a_day_trello_cannot_hold_is_refused_before_sending(self, due: date) -> None:
        """Whose UTC day is before 1583: InvalidItem naming the due date, never a malformed date."""
        with pytest.raises(InvalidItem) as raised:
            _format_due(due)
        assert raised.value.field == "due"

    def test_a_too_long_description_is_refused_naming_it(self, connector: TrelloConnector) -> None:
        """Trello refuses a 16,385-character desc; the InvalidItem names the description and the card."""
        created = connector.create({"title": "Short for now"}, marker="sync-long-desc")
        with pytest.raises(InvalidItem, match="invalid value for desc") as raised:
            connector.update(created.ref, {"description": "d" * 16385})
        assert (raised.value.field, raised.value.ref) == ("description", created.ref)

    def test_the_connectors_own_refusals_name_their_field(self, connector: TrelloConnector) -> None:
        """A person missing from the directory, a list the board lacks: each names its field."""
        refused: list[dict[str, Any]] = [
            {"title": "x", "assignees": (Person("stranger@else.example"),)},
            {"title": "x", "status": "Nowhere"},
        ]
        fields: list[str | None] = []
        for index, values in enumerate(refused):
            with pytest.raises(InvalidItem) as raised:
                connector.create(values, marker=f"sync-own-refusal-{index}")
            fields.append(raised.value.field)
        assert fields == ["assignees", "status"]
