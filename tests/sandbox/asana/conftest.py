"""Fixtures of the Asana emulator tests: a started emulator of the shipped seed and an asana SDK client for it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.asana import AsanaEmulator
from tests.sandbox.asana.support import client_for, started


@pytest.fixture
def emulator() -> Iterator[AsanaEmulator]:
    yield from started()


@pytest.fixture
def client(emulator: AsanaEmulator) -> Any:
    return client_for(emulator)
