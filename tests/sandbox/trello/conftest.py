"""Fixtures of the Trello emulator tests: a started emulator of the shipped seed and a py-trello client for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from trello import TrelloClient

from sandbox.trello import TrelloEmulator
from tests.sandbox.trello.support import client_for, running_emulator


@pytest.fixture
def emulator() -> Iterator[TrelloEmulator]:
    with running_emulator() as service:
        yield service


@pytest.fixture
def client(emulator: TrelloEmulator) -> TrelloClient:
    return client_for(emulator)
