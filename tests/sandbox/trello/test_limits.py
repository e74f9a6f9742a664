"""The Trello emulator refuses what Trello refuses in the card fields syncd writes: name, desc, due."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from sandbox.trello import TrelloEmulator
from sandbox.trello.model import iso
from tests.sandbox.trello.support import auth_params


def _list_id(emulator: TrelloEmulator) -> str:
    return next(lst.id for lst in emulator.state.lists.values() if lst.name == "Requests")


def _post(emulator: TrelloEmulator, **params: Any) -> requests.Response:
    body = {"idList": _list_id(emulator), **params}
    return requests.post(f"{emulator.url}/1/cards", params=auth_params(emulator), json=body, timeout=5)


def _put(emulator: TrelloEmulator, card: str, **params: Any) -> requests.Response:
    return requests.put(f"{emulator.url}/1/cards/{card}", params=auth_params(emulator), json=params, timeout=5)


def _refused(response: requests.Response, field: str) -> None:
    assert (response.status_code, response.text) == (400, f"invalid value for {field}")


class TestName:
    @pytest.mark.parametrize("params", [{}, {"name": ""}, {"name": "   "}, {"name": "\n\t"}])
    def test_a_card_without_a_name_is_not_created(self, emulator: TrelloEmulator, params: dict[str, str]) -> None:
        """Missing, empty or blank: "invalid value for name", and no card, no action, is left behind."""
        cards, actions = len(emulator.state.cards), len(emulator.state.actions)
        _refused(_post(emulator, **params), "name")
        assert (len(emulator.state.cards), len(emulator.state.actions)) == (cards, actions)

    def test_16384_characters_are_taken_and_16385_refused(self, emulator: TrelloEmulator) -> None:
        """A name is 1 to 16384 characters long, on create and on edit."""
        created = _post(emulator, name="n" * 16384)
        assert created.json()["name"] == "n" * 16384
        _refused(_post(emulator, name="n" * 16385), "name")
        _refused(_put(emulator, created.json()["id"], name="n" * 16385), "name")
        _refused(_put(emulator, created.json()["id"], name=" "), "name")

    def test_characters_beyond_the_basic_plane_count_two(self, emulator: TrelloEmulator) -> None:
        """JavaScript counts UTF-16 code units: 8192 emoji are the most a name holds."""
        assert _post(emulator, name="\U0001f680" * 8192).status_code == 200
        _refused(_post(emulator, name="\U0001f680" * 8192 + "x"), "name")


class TestDescription:
    def test_16384_characters_are_taken_and_16385_refused(self, emulator: TrelloEmulator) -> None:
        """A description is 0 to 16384 characters long, on create and on edit; empty is fine."""
        created = _post(emulator, name="Long read", desc="d" * 16384)
        assert created.json()["desc"] == "d" * 16384
        _refused(_post(emulator, name="Too long a read", desc="d" * 16385), "desc")
        card = created.json()["id"]
        _refused(_put(emulator, card, desc="d" * 16385), "desc")
        assert _put(emulator, card, desc="").json()["desc"] == ""


class TestDue:
    @pytest.mark.parametrize(
        ("due", "stored"),
        [
            ("2027-03-01", "2027-03-01T00:00:00.000Z"),
            ("2027-03-01T10:00:00+02:00", "2027-03-01T08:00:00.000Z"),
            ("1583-01-01T00:00:00.000Z", "1583-01-01T00:00:00.000Z"),
            ("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"),
        ],
    )
    def test_a_valid_date_is_taken(self, emulator: TrelloEmulator, due: str, stored: str) -> None:
        """An ISO 8601 date or date-time is held as an instant in UTC, written with a four-digit year."""
        assert _post(emulator, name="Due", due=due).json()["due"] == stored

    @pytest.mark.parametrize("due", ["tomorrow", "2027-02-30", "20270301", "2027-W09-1", "1-01-01T00:00:00.000Z"])
    def test_what_is_not_a_date_is_refused(self, emulator: TrelloEmulator, due: str) -> None:
        """Not a date, or not in the extended ISO form with a four-digit year: "invalid value for due"."""
        _refused(_post(emulator, name="Due", due=due), "due")

    @pytest.mark.parametrize("due", ["0001-01-01T00:00:00.000Z", "1582-12-31", "1583-01-01T00:30:00+01:00"])
    def test_a_day_before_1583_is_refused(self, emulator: TrelloEmulator, due: str) -> None:
        """No range is documented: the sandbox takes the unfavourable reading (its UTC day from 1583 on)."""
        _refused(_post(emulator, name="Due", due=due), "due")
        card = _post(emulator, name="Due later").json()["id"]
        _refused(_put(emulator, card, due=due), "due")
        _refused(_put(emulator, card, start=due), "start")

    def test_instants_are_written_with_a_four_digit_year(self) -> None:
        """As JavaScript's toISOString writes them (strftime would write year 1 as "1-01-01...")."""
        assert iso(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00.000Z"
        assert iso(datetime(999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)) == "0999-12-31T23:59:59.999Z"
