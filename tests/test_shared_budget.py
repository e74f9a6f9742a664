"""Replicas on one PostgreSQL store share each tool credential's rate budget (issue 16).

Two replicas are two threads here, each with a Store of its own (its own connection pool, as two processes have),
driving the Trello emulator (100 requests / 10 s per token, answering 429 beyond) through the real connector as
fast as their budget lets them. Sharing the bucket row, they stay under the limit while using most of it; each
pacing alone, as replicas did before, they exceed it at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import pytest

from connectors.pacing import RetryPolicy, SharedBudget, TokenBucket
from connectors.trello import TrelloConnector
from sandbox.seed import load_seed
from sandbox.trello import TrelloEmulator
from syncd.errors import RateLimited
from syncd.store import Store
from tests.store.conftest import fresh_postgres_database

ONCE = RetryPolicy(attempts=1)
"""A 429 comes out as RateLimited, counted, instead of being waited out."""
KEY = "trello:test-credential:100/10"


@pytest.fixture(scope="module")
def stores() -> Iterator[tuple[Store, Store]]:
    """Two stores on one fresh PostgreSQL database: two replicas' connection pools."""
    with fresh_postgres_database() as url:
        one, two = Store(url), Store(url)
        one.migrate()
        try:
            yield one, two
        finally:
            one.close()
            two.close()


@pytest.fixture
def emulator() -> Iterator[TrelloEmulator]:
    service = TrelloEmulator(load_seed())
    service.start()
    yield service
    service.stop()


def drive(emulator: TrelloEmulator, buckets: Sequence[TokenBucket], seconds: float) -> list[int]:
    """Each bucket's replica reads the board's cards until ``seconds`` are up; how many 429s each met."""
    credentials = emulator.credentials()
    board = next(iter(emulator.state.boards))
    refused = [0] * len(buckets)

    def replica(index: int, bucket: TokenBucket) -> None:
        connector = TrelloConnector(
            base_url=emulator.url,
            key=credentials["key"],
            token=credentials["token"],
            board_id=board,
            policy=ONCE,
            buckets=[bucket],
        )
        card = next(iter(emulator.state.cards))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                connector.fetch([card])
            except RateLimited:
                refused[index] += 1

    threads = [threading.Thread(target=replica, args=(i, b)) for i, b in enumerate(buckets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return refused


class TestSharedBudget:
    def test_the_bucket_row_starts_full_and_then_spaces_requests(self, stores: tuple[Store, Store]) -> None:
        """The first ``capacity`` requests go at once (from either replica); the next waits about 1/rate."""
        one, two = stores
        waits = [store.take_budget("bucket-check", 3, 2.0, 1) for store in (one, two, one)]
        assert waits == [0.0, 0.0, 0.0]
        assert 0.3 < two.take_budget("bucket-check", 3, 2.0, 1) <= 0.5
        assert 0.8 < one.take_budget("bucket-check", 3, 2.0, 1) <= 1.0  # queued behind the one before

    def test_two_replicas_stay_within_the_tools_limit(
        self, stores: tuple[Store, Store], emulator: TrelloEmulator
    ) -> None:
        """Sharing one bucket row, two replicas send at most the budget in any 10 s (no 429) and use most of it."""
        buckets = [SharedBudget(KEY, 100, 10, taker=store.take_budget) for store in stores]
        seconds = 11.0
        refused = drive(emulator, buckets, seconds)
        statuses = emulator.counters()["statuses"]
        assert refused == [0, 0]
        assert "429" not in statuses, statuses
        sent = emulator.counters()["total"]
        allowed = buckets[0].capacity + buckets[0].rate * seconds  # 9 at once, then 8.6/s: 95 in any 10 s
        # Each replica may have taken one turn just before the end and sent it just after.
        assert 0.85 * allowed <= sent <= allowed + len(buckets), (sent, allowed)

    def test_each_pacing_alone_they_exceed_it(self, emulator: TrelloEmulator) -> None:
        """The control: two replicas each pacing to the whole budget (as before) meet 429s within seconds."""
        refused = drive(emulator, [TokenBucket.per_window(100, 10), TokenBucket.per_window(100, 10)], 2.0)
        assert sum(refused) > 0
        assert emulator.counters()["statuses"].get("429", 0) > 0

    def test_a_store_that_does_not_answer_leaves_the_process_pacing_alone(self) -> None:
        """The taker failing (the store is down), each request is paced by this process's own sliding window."""

        def down(key: str, capacity: float, rate: float, cost: int) -> float:
            raise ConnectionError("the store does not answer")

        budget = SharedBudget(KEY, 100, 10, taker=down)
        assert [budget.reserve() for _ in range(95)] == [0.0] * 95  # the local window's 95 at once
        assert budget.reserve() > 0
