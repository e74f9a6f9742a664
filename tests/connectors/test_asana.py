"""The Asana connector on the asana v5 SDK, against the Asana emulator: the contract plus Asana's own quirks."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Iterator
from datetime import timedelta
from typing import ClassVar

import pytest

from connectors.asana import AsanaConnector
from connectors.pacing import RetryPolicy, TokenBucket
from syncd.errors import AuthFailed, ItemNotFound
from syncd.model import Person
from syncd.sandbox.asana import AsanaEmulator
from syncd.sandbox.seed import load_seed
from tests.connectors.contract import ConnectorContract, drain
from tests.connectors.receiver import Receiver

FAST = RetryPolicy(attempts=4, max_total_s=20, initial_s=0.01, max_wait_s=2)


@pytest.fixture
def emulator() -> Iterator[AsanaEmulator]:
    service = AsanaEmulator(load_seed())
    service.start()
    yield service
    service.stop()


def _project(emulator: AsanaEmulator) -> str:
    return next(iter(emulator.state.projects))


def _connector(emulator: AsanaEmulator, **options: object) -> AsanaConnector:
    return AsanaConnector(
        base_url=emulator.url,
        token=emulator.credentials()["token"],
        project_gid=_project(emulator),
        policy=FAST,
        bucket=TokenBucket.per_window(1500, 60),  # this test's emulator, this test's budget
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
def connector(emulator: AsanaEmulator) -> AsanaConnector:
    return _connector(emulator)


@pytest.fixture
def fresh_connector(emulator: AsanaEmulator) -> AsanaConnector:
    return _connector(emulator)


@pytest.fixture
def impatient_connector(emulator: AsanaEmulator) -> AsanaConnector:
    """A connector that gives up on an answer after half a second (a write may land after that)."""
    return _connector(emulator, timeout_s=0.5)


class AsanaHuman:
    """Gus from Marketing, working in Asana."""

    def __init__(self, emulator: AsanaEmulator) -> None:
        self.actor = emulator.act_as("gus@corp.example")

    def rename(self, ref: str, title: str) -> None:
        self.actor.update_task(ref, name=title)

    def delete(self, ref: str) -> None:
        self.actor.delete(ref)

    def move(self, ref: str, status: str) -> None:
        self.actor.move(ref, status)


@pytest.fixture
def human(emulator: AsanaEmulator) -> AsanaHuman:
    return AsanaHuman(emulator)


@pytest.fixture
def statuses() -> tuple[str, str]:
    return ("Backlog", "In progress")


@pytest.fixture
def someone() -> Person:
    return Person("hana@corp.example")


class TestAsanaContract(ConnectorContract):
    create_path: ClassVar[str] = r"^/api/1\.0/tasks$"
    comment_path: ClassVar[str] = r"^/api/1\.0/tasks/[^/]+/stories$"
    marker_in_reads: ClassVar[bool] = False
    counts_unknown: ClassVar[bool] = True

    @staticmethod
    def rich_text(text: str) -> str:
        return f"<body>{text}</body>"


class TestAsanaFeed:
    def test_an_idle_poll_costs_one_request(self, connector: AsanaConnector, emulator: AsanaEmulator) -> None:
        """With nothing changed, a poll is exactly one events call."""
        _, cursor = drain(connector, None)
        emulator.reset_counters()
        batch = connector.changes(cursor)
        assert batch.records == ()
        assert emulator.request_count() == 1

    def test_changed_items_are_read_in_pages_not_one_by_one(
        self, connector: AsanaConnector, emulator: AsanaEmulator
    ) -> None:
        """N tasks changed cost at most ceil(N/100) + 2 requests (events, listing pages), never N."""
        _, cursor = drain(connector, None)
        actor = emulator.act_as("gus@corp.example")
        created = [actor.create_task(f"Bulk {n}", section="Backlog") for n in range(130)]
        emulator.reset_counters()
        batches, _ = drain(connector, cursor)
        assert set(created) <= {record.ref for batch in batches for record in batch.records}
        events_calls = emulator.request_count("GET /api/1.0/events")
        listing_calls = emulator.request_count() - events_calls
        assert listing_calls <= math.ceil(130 / 100) + 2
        assert emulator.request_count() <= math.ceil(130 / 100) + 2 + events_calls

    def test_an_expired_sync_token_triggers_a_full_scan(
        self, connector: AsanaConnector, emulator: AsanaEmulator
    ) -> None:
        """After 25 hours the token is gone (412): the next poll lists the whole project, losing nothing."""
        _, cursor = drain(connector, None)
        emulator.clock.advance(25 * 3600)
        batch = connector.changes(cursor)
        assert batch.full_scan
        assert len(batch.records) >= 10

    def test_reconciles_periodically_even_without_412(self, emulator: AsanaEmulator) -> None:
        """Events are at most once, so a full scan runs every reconcile interval regardless."""
        connector = _connector(emulator, reconcile_every=timedelta(seconds=0))
        _, cursor = drain(connector, None)
        assert connector.changes(cursor).full_scan


class TestAsanaFaults:
    def test_a_refused_token_is_fatal_and_names_no_secret(self, emulator: AsanaEmulator) -> None:
        """A bad token raises AuthFailed at once; the message says what to fix and does not quote the token."""
        connector = AsanaConnector(
            base_url=emulator.url, token="not-a-token", project_gid=_project(emulator), policy=FAST
        )
        with pytest.raises(AuthFailed) as raised:
            connector.fetch(["1"])
        assert "not-a-token" not in str(raised.value)
        assert "personal access token" in str(raised.value)

    def test_a_missing_task_is_skippable(self, connector: AsanaConnector) -> None:
        """Fetching a task that does not exist leaves it out; reading it directly is ItemNotFound."""
        assert connector.fetch(["1111111111111111"]) == []
        with pytest.raises(ItemNotFound):
            connector.update("1111111111111111", {"title": "x"})


class TestAsanaWebhooks:
    def test_a_signed_delivery_names_its_tasks(self, emulator: AsanaEmulator) -> None:
        """A delivery signed with the handshake secret yields the task gids; a forged one is refused."""
        connector = _connector(emulator, webhook_secret="s3cret")
        body = json.dumps(
            {"events": [{"resource": {"gid": "42", "resource_type": "task"}, "action": "changed"}]}
        ).encode()
        signature = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert connector.verify_webhook({"X-Hook-Signature": signature}, body) == ["42"]
        assert connector.verify_webhook({"X-Hook-Signature": signature}, body) == []  # redelivered: seen
        with pytest.raises(AuthFailed):
            connector.verify_webhook({"X-Hook-Signature": "0" * 64}, body)

    def test_registered_webhook_handshakes_and_delivers_verifiable_hints(self, emulator: AsanaEmulator) -> None:
        """The handshake secret is kept; registering again is a no-op; a person's edit arrives signed."""
        connector = _connector(emulator)
        with Receiver(handshake=connector.accept_handshake) as receiver:
            first = connector.ensure_webhook(receiver.url)
            assert connector.webhook_secret
            assert connector.ensure_webhook(receiver.url) == first
            task = next(iter(emulator.state.tasks))
            emulator.act_as("gus@corp.example").update_task(task, name="Edited while watched")
            deliveries = receiver.wait_for(1)
            refs = [ref for d in deliveries for ref in connector.verify_webhook(d.headers, d.body)]
            assert task in refs
