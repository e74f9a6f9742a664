"""Replicas on one PostgreSQL store share each tool credential's rate budget (issue 16).

Two replicas are two threads here, each with a Store of its own (its own connection pool, as two processes have),
driving the Trello emulator (100 requests / 10 s per token, answering 429 beyond) through the real connector as
fast as their budget lets them. Sharing the bucket row, they stay under the limit while using most of it; each
pacing alone, as replicas did before, they exceed it at once.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
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

    def test_a_replica_paused_while_it_takes_holds_up_nobody(self, stores: tuple[Store, Store]) -> None:
        """Another process takes from the bucket in a loop and is SIGSTOPped ten times at random moments: each
        time, this replica still takes at once. A taker paused inside an open transaction would hold the bucket's
        row, and every replica's every request to that tool would wait until it resumed."""
        one, _ = stores
        url = one.engine.url.render_as_string(hide_password=False)
        script = (
            "import sys\nfrom syncd.store import Store\nstore = Store(sys.argv[1])\nprint('ready', flush=True)\n"
            "while True:\n    store.take_budget('paused-taker', 1e9, 1e9, 1)\n"
        )
        taker = subprocess.Popen([sys.executable, "-c", script, url], stdout=subprocess.PIPE, text=True)
        try:
            assert taker.stdout is not None
            assert taker.stdout.readline().strip() == "ready"
            waited: list[float] = []
            for _ in range(10):
                time.sleep(random.uniform(0.05, 0.2))
                taker.send_signal(signal.SIGSTOP)
                started = time.monotonic()
                take = threading.Thread(target=one.take_budget, args=("paused-taker", 1e9, 1e9, 1), daemon=True)
                take.start()
                take.join(timeout=5.0)  # held up, it ends when the taker is killed below
                waited.append(time.monotonic() - started)
                taker.send_signal(signal.SIGCONT)
                if take.is_alive():
                    break
        finally:
            taker.kill()
            taker.communicate()
        assert max(waited) < 0.5, waited
