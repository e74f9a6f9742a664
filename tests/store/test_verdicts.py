"""The audit chain's verdicts in the store: one verification at a time across replicas, the last one for all."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from syncd.store import Store
from syncd.store.schema import audit_verdicts
from syncd.store.verdicts import ABANDONED_S


def test_one_verification_at_a_time_and_the_last_for_everyone(store: Store) -> None:
    assert store.last_verdict() is None
    first = store.begin_verdict("dave@corp.example")
    assert first is not None
    assert store.begin_verdict("ana@corp.example") is None  # another replica's button, while it runs
    running = store.last_verdict()
    assert running is not None
    assert (running.by, running.finished_at, running.outcome) == ("dave@corp.example", None, None)
    store.finish_verdict(first, outcome='{"ok": true, "events": 3}', error=None)
    done = store.last_verdict()
    assert done is not None
    assert done.finished_at is not None
    assert done.finished_at >= done.started_at
    assert done.outcome == '{"ok": true, "events": 3}'
    second = store.begin_verdict("ana@corp.example")
    assert second is not None
    assert second != first


def test_a_verification_whose_process_died_does_not_block_for_ever(store: Store) -> None:
    """Begun more than ABANDONED_S ago and never finished: a new one may start."""
    stuck = store.begin_verdict("dave@corp.example")
    assert stuck is not None
    running = store.last_verdict()
    assert running is not None
    with store.engine.begin() as connection:
        connection.execute(
            update(audit_verdicts)
            .where(audit_verdicts.c.id == stuck)
            .values(started_at=running.started_at - timedelta(seconds=ABANDONED_S + 1))
        )
    assert store.begin_verdict("ana@corp.example") is not None
