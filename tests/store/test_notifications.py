"""The notifications outbox on SQLite and PostgreSQL: one row per event and target, claimed by one deliverer,
held back for the digest window, sent once, and given back with a back-off when its target fails."""

from __future__ import annotations

import threading
import time

from sqlalchemy import update

from syncd.notices import Event, Outbox, Route
from syncd.store import Store
from syncd.store import notifications as outbox
from syncd.store.schema import notifications

SALES = Route("sales/chat", "sales", frozenset({"held_conflict", "quarantined"}), 0.0)
ENGINEERING = Route("engineering/1", "engineering", frozenset({"held_conflict"}), 0.0)
ROUTES = {"sales": [SALES], "engineering": [ENGINEERING]}


def event(number: int, departments: tuple[str, ...] = ("sales", "engineering")) -> Event:
    return Event(
        "held_conflict",
        f"held_conflict:C{number}",
        departments,
        f"conflict {number}",
        group="launch-requests",
        sync_id=f"S{number}",
        links=(("decide", f"/ui/conflicts/C{number}"),),
    )


def claim(store: Store, holder: str, digest_s: float = 0.0, claim_s: float = 30.0) -> dict[str, list[str]]:
    with store.engine.begin() as connection:
        found = outbox.claim(connection, holder, digest_s=digest_s, claim_s=claim_s)
    return {target: [row.text for row in rows] for target, rows in found.items()}


class TestOutbox:
    def test_an_event_recorded_twice_is_one_row_per_target_that_wants_it(self, store: Store) -> None:
        """Two passes recording the same held conflict add one row for each department's target, not two."""
        for _ in range(2):
            with store.transaction() as tx:
                Outbox(ROUTES).record(tx, event(1))
        with store.transaction() as tx:
            assert Outbox(ROUTES).record(tx, event(2, ("marketing",))) == 0  # marketing has no target
        assert claim(store, "a") == {"sales/chat": ["conflict 1"], "engineering/1": ["conflict 1"]}
        assert store.unsent_notifications() == 2

    def test_a_rolled_back_transaction_queues_nothing(self, store: Store) -> None:
        """The row commits with its cause or not at all."""
        try:
            with store.transaction() as tx:
                Outbox(ROUTES).record(tx, event(1))
                raise RuntimeError("the pass failed before its commit")
        except RuntimeError:
            pass
        assert claim(store, "a") == {}

    def test_the_digest_window_holds_a_burst_then_hands_it_over_whole(self, store: Store) -> None:
        """Rows younger than the window wait; once the first is old enough, all of the target's go together."""
        with store.transaction() as tx:
            for number in (1, 2, 3):
                Outbox({"sales": [SALES]}).record(tx, event(number))
        assert claim(store, "a", digest_s=0.4) == {}
        time.sleep(0.5)
        assert claim(store, "a", digest_s=0.4) == {"sales/chat": ["conflict 1", "conflict 2", "conflict 3"]}

    def test_a_claimed_row_goes_to_no_one_else_until_its_claim_lapses(self, store: Store) -> None:
        """A second deliverer gets nothing while the first holds the rows; after the claim lapses it gets them."""
        with store.transaction() as tx:
            Outbox({"sales": [SALES]}).record(tx, event(1))
        assert claim(store, "a", claim_s=0.3) == {"sales/chat": ["conflict 1"]}
        assert claim(store, "b") == {}
        time.sleep(0.4)
        assert claim(store, "b") == {"sales/chat": ["conflict 1"]}

    def test_released_rows_are_due_at_once_for_another_deliverer(self, store: Store) -> None:
        """A deliverer that stops hands its claimed rows back instead of leaving them until the claim lapses."""
        with store.transaction() as tx:
            Outbox({"sales": [SALES]}).record(tx, event(1))
        with store.engine.begin() as connection:
            (row,) = outbox.claim(connection, "a", digest_s=0, claim_s=30)["sales/chat"]
            outbox.release(connection, [row.id], "a")
        assert claim(store, "b") == {"sales/chat": ["conflict 1"]}

    def test_sent_rows_are_never_claimed_again_and_a_lapsed_claim_cannot_mark_them(self, store: Store) -> None:
        """Only the holder of a claim marks its rows sent; a sent row is done for good."""
        with store.transaction() as tx:
            Outbox({"sales": [SALES]}).record(tx, event(1))
        with store.engine.begin() as connection:
            (row,) = outbox.claim(connection, "a", digest_s=0, claim_s=30)["sales/chat"]
            assert outbox.sent(connection, [row.id], "someone else") == 0
            assert outbox.sent(connection, [row.id], "a") == 1
        assert claim(store, "a") == {}
        assert store.unsent_notifications() == 0

    def test_a_failed_delivery_comes_back_after_its_backoff_with_the_error_redacted(self, store: Store) -> None:
        """The rows are due again after the back-off, counted, with the target's error stored without secrets."""
        with store.transaction() as tx:
            Outbox({"sales": [SALES]}).record(tx, event(1))
        with store.engine.begin() as connection:
            (row,) = outbox.claim(connection, "a", digest_s=0, claim_s=30)["sales/chat"]
            outbox.failed(connection, [row.id], "a", "refused https://bot:hunter2-secret@chat.example/x", 0.3)
        assert claim(store, "a") == {}
        time.sleep(0.4)
        with store.engine.begin() as connection:
            (again,) = outbox.claim(connection, "a", digest_s=60, claim_s=30)["sales/chat"]  # retries skip the window
            stored = connection.execute(notifications.select()).one()
        assert again.attempts == 1
        assert "hunter2" not in stored.error
        assert "***" in stored.error

    def test_two_deliverers_claiming_at_once_split_the_rows(self, store: Store) -> None:
        """Claims from two threads (two replicas) never hand one row to both."""
        with store.transaction() as tx:
            for number in range(40):
                Outbox({"sales": [SALES]}).record(tx, event(number, ("sales",)))
        # Each row is its own target's, so the claims can interleave row by row.
        with store.engine.begin() as connection:
            for number in range(40):
                connection.execute(
                    update(notifications)
                    .where(notifications.c.key == f"held_conflict:C{number}/sales/chat")
                    .values(target=f"sales/{number}")
                )
        claimed: dict[str, list[str]] = {"a": [], "b": []}

        def deliverer(holder: str) -> None:
            for _ in range(20):
                for rows in claim(store, holder).values():
                    claimed[holder] += rows

        threads = [threading.Thread(target=deliverer, args=(holder,)) for holder in claimed]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(claimed["a"] + claimed["b"]) == sorted(f"conflict {number}" for number in range(40))
