"""Fixtures of the Jira emulator tests: a started emulator of the shipped seed and python-jira clients for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from jira import JIRA

from sandbox.jira import JiraEmulator
from tests.sandbox.jira.support import client, shut, started


@pytest.fixture
def emulator() -> Iterator[JiraEmulator]:
    yield from started()


@pytest.fixture
def jira(emulator: JiraEmulator) -> Iterator[JIRA]:
    sdk = client(emulator)
    yield sdk
    shut(sdk)


@pytest.fixture
def jira3(emulator: JiraEmulator) -> Iterator[JIRA]:
    sdk = client(emulator, version="3")
    yield sdk
    shut(sdk)
