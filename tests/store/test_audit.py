"""The audit log: appended with the state it describes, hash-chained, and tampering is found where it happened."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime
from importlib import resources

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import delete, select, update

from syncd.audit import AuditEvent, Checkpoint, append, events, head, verify
from syncd.store import Store
from syncd.store.schema import GENESIS, audit, audit_head


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


def _migrate_to(store: Store, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(resources.files("syncd.store").joinpath("migrations")))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


class TestFormats:
    def test_a_chain_written_before_0009_still_verifies_and_is_extended(self, store: Store) -> None:
        """Old events keep format 1 and verify as chained; new ones follow in format 2, then 3 once keyed."""
        _migrate_to(store, "0007")
        with store.engine.begin() as connection:
            previous = GENESIS
            for seq in range(1, 4):
                at = datetime(2024, 5, seq, tzinfo=UTC)
                content = {"kind": "write", "group": "old", "sync_id": f"S{seq}", "new": seq, "at": at.isoformat()}
                canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                digest = hashlib.sha256(f"{previous}\n{seq}\n{canonical}".encode()).hexdigest()
                connection.exec_driver_sql(
                    "INSERT INTO audit (seq, at, kind, group_name, sync_id, content, prev_hash, hash)"
                    " VALUES (%(seq)s, %(at)s, 'write', 'old', %(sync_id)s, %(content)s, %(prev)s, %(hash)s)"
                    if store.engine.dialect.name == "postgresql"
                    else "INSERT INTO audit (seq, at, kind, group_name, sync_id, content, prev_hash, hash)"
                    " VALUES (:seq, :at, 'write', 'old', :sync_id, :content, :prev, :hash)",
                    {
                        "seq": seq,
                        "at": at if store.engine.dialect.name == "postgresql" else at.strftime("%Y-%m-%d %H:%M:%S.%f"),
                        "sync_id": f"S{seq}",
                        "content": json.dumps(content),
                        "prev": previous,
                        "hash": digest,
                    },
                )
                previous = digest
            connection.execute(update(audit_head).values(seq=3, hash=previous))
        store.migrate()
        _write(store, 2)
        store.audit_key = b"k"
        _write(store, 2)
        with store.engine.begin() as connection:
            formats = connection.execute(select(audit.c.hash_format).order_by(audit.c.seq)).scalars().all()
        assert formats == [1, 1, 1, 2, 2, 3, 3]
        result = verify(store)
        assert (result.ok, result.unkeyed, result.keyed, result.unchecked) == (True, 5, 2, 0)

    def test_keyed_events_are_not_verified_without_the_key(self, store: Store) -> None:
        """Without the key, keyed events are counted as unchecked: the chain is not called verified."""
        store.audit_key = b"k"
        _write(store, 3)
        store.audit_key = None
        result = verify(store)
        assert (result.ok, result.keyed, result.unchecked) == (True, 0, 3)

    def test_an_unkeyed_event_after_keyed_ones_is_a_downgrade(self, store: Store) -> None:
        """Appending without the key after keyed events (what a re-chainer without it must do) is named."""
        store.audit_key = b"k"
        _write(store, 2)
        store.audit_key = None
        _write(store, 1)
        store.audit_key = b"k"
        result = verify(store)
        assert (result.ok, result.first_bad_seq) == (False, 3)
        assert result.reason == "it is chained in hash format 2, older than format 3 before it"

    def test_a_wrong_key_is_found_at_the_first_event(self, store: Store) -> None:
        """Verifying with another key than the one written with fails at event 1, saying the key may be wrong."""
        store.audit_key = b"k"
        _write(store, 2)
        store.audit_key = b"another"
        result = verify(store)
        assert (result.ok, result.first_bad_seq) == (False, 1)
        assert "audit_key is not the key it was written with" in (result.reason or "")


class TestAnchor:
    @pytest.mark.parametrize(("column", "value"), [("kind", "skip"), ("sync_id", "S-X"), ("group_name", "other")])
    def test_an_edited_filter_column_is_found(self, store: Store, column: str, value: str) -> None:
        """Editing a column the listing filters on (here on both databases) is found at that event."""
        store.audit_key = b"k"
        _write(store, 3)
        with store.engine.begin() as connection:
            connection.execute(update(audit).where(audit.c.seq == 2).values({column: value}))
        result = verify(store)
        assert (result.ok, result.first_bad_seq) == (False, 2)
        assert result.reason is not None
        assert result.reason.startswith(f"its {column} column was changed")

    def test_an_edited_time_is_found(self, store: Store) -> None:
        """Moving an event in time (out of a --since window) is found at that event."""
        _write(store, 3)
        with store.engine.begin() as connection:
            connection.execute(update(audit).where(audit.c.seq == 2).values(at=datetime(2001, 1, 1, tzinfo=UTC)))
        assert verify(store).first_bad_seq == 2

    def test_a_rewound_head_is_found_against_a_checkpoint(self, store: Store) -> None:
        """Truncation with the head moved back verifies alone; the checkpoint taken before names the cut."""
        _write(store, 5)
        checkpoint = head(store)
        assert checkpoint is not None
        assert checkpoint.seq == 5
        with store.engine.begin() as connection:
            connection.execute(delete(audit).where(audit.c.seq > 3))
            third = connection.execute(select(audit.c.hash).where(audit.c.seq == 3)).scalar_one()
            connection.execute(update(audit_head).values(seq=3, hash=third))
        assert verify(store).ok
        result = verify(store, [Checkpoint(3, third), checkpoint])
        assert (result.ok, result.first_bad_seq, result.checkpoints) == (False, 4, 1)

    def test_a_deleted_head_is_found(self, store: Store) -> None:
        """No audit_head row: a finding, and no checkpoint to export."""
        _write(store, 2)
        with store.engine.begin() as connection:
            connection.execute(delete(audit_head))
        result = verify(store)
        assert (result.ok, result.first_bad_seq) == (False, None)
        assert head(store) is None


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
