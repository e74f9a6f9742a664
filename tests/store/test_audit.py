"""The audit log: appended with the state it describes, hash-chained, and tampering is found where it happened."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import delete, update

from syncd.audit import AuditEvent, append, events, verify
from syncd.store import Store
from syncd.store.schema import audit


def _write(store: Store, count: int, group: str = "launch") -> None:
    for n in range(count):
        with store.transaction() as tx:
            append(tx, AuditEvent("write", group=group, sync_id=f"S{n}", field="title", old="a", new=f"b{n}"))


class TestChain:
    def test_an_intact_chain_verifies(self, store: Store) -> None:
        """Five appended events verify, numbered 1 to 5."""
        _write(store, 5)
        assert verify(store).ok
        assert [r.seq for r in events(store)] == [1, 2, 3, 4, 5]

    def test_an_empty_log_verifies(self, store: Store) -> None:
        """No events is a valid chain."""
        assert verify(store).ok

    def test_events_commit_with_their_transaction_or_not_at_all(self, store: Store) -> None:
        """An event appended in a transaction that fails is not in the log, and the chain stays valid."""

        def failing() -> None:
            with store.transaction() as tx:
                append(tx, AuditEvent("write", sync_id="S9"))
                raise RuntimeError("crash")

        with pytest.raises(RuntimeError):
            failing()
        _write(store, 1)
        assert verify(store).ok
        assert [r.event.sync_id for r in events(store)] == ["S0"]

    def test_the_losing_value_of_a_conflict_is_kept(self, store: Store) -> None:
        """A conflict event stores the rule and the loser, and reads back as written."""
        with store.transaction() as tx:
            append(tx, AuditEvent("conflict", sync_id="S1", field="status", new="done", loser="todo", rule="latest"))
        (recorded,) = events(store, sync_id="S1")
        assert (recorded.event.loser, recorded.event.rule) == ("todo", "latest")


class TestTampering:
    def test_an_edited_value_is_found(self, store: Store) -> None:
        """Changing event 3's content breaks the chain at 3."""
        _write(store, 5)
        with store.engine.begin() as connection:
            row = connection.execute(audit.select().where(audit.c.seq == 3)).one()
            content = {**row.content, "new": "forged"}
            connection.execute(update(audit).where(audit.c.seq == 3).values(content=content))
        result = verify(store)
        assert (result.ok, result.first_bad_seq) == (False, 3)

    def test_a_deleted_event_is_found(self, store: Store) -> None:
        """Deleting event 2 is reported as event 2 missing."""
        _write(store, 4)
        with store.engine.begin() as connection:
            connection.execute(delete(audit).where(audit.c.seq == 2))
        result = verify(store)
        assert (result.ok, result.first_bad_seq) == (False, 2)

    def test_truncating_the_end_is_found(self, store: Store) -> None:
        """Deleting the newest events is caught by the chain head."""
        _write(store, 4)
        with store.engine.begin() as connection:
            connection.execute(delete(audit).where(audit.c.seq == 4))
        assert not verify(store).ok

    def test_a_rewritten_link_is_found(self, store: Store) -> None:
        """Rewriting an event's previous-hash (to splice the chain) is found at that event."""
        _write(store, 3)
        with store.engine.begin() as connection:
            connection.execute(update(audit).where(audit.c.seq == 2).values(prev_hash="f" * 64))
        assert verify(store).first_bad_seq == 2


class TestConcurrency:
    def test_concurrent_appends_keep_one_linear_chain(self, store: Store) -> None:
        """Four threads appending at once: 40 events, numbered without gaps, and the chain verifies."""
        errors: list[BaseException] = []

        def worker(name: str) -> None:
            try:
                _write(store, 10, group=name)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(f"g{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert [r.seq for r in events(store)] == list(range(1, 41))
        assert verify(store).ok
