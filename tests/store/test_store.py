"""The state store on SQLite and PostgreSQL: links are unique, transactions are atomic, the schema is migrated."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from syncd.plan import Refusal
from syncd.store import CHUNK, DuplicateLink, Store
from syncd.store.schema import metadata

NOW = datetime(2026, 12, 4, tzinfo=UTC)


class TestSchema:
    def test_the_migrations_build_exactly_the_declared_schema(self, store: Store) -> None:
        """Alembic's upgrade head and the SQLAlchemy tables agree: no drift between code and database."""
        with store.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), metadata)
        assert diff == []

    def test_migrating_twice_is_harmless(self, store: Store) -> None:
        """migrate() on an up-to-date database changes nothing."""
        store.migrate()
        with store.transaction() as tx:
            assert tx.cursor("g/sales") is None


class TestLinks:
    def test_link_and_find(self, store: Store) -> None:
        """A linked ref is found by endpoint and ref, and among its item's links."""
        with store.transaction() as tx:
            tx.new_item("S1", "launch")
            tx.link("S1", "launch/sales", "card-1", "v1")
        with store.transaction() as tx:
            link = tx.find_link("launch/sales", "card-1")
            assert link is not None
            assert (link.sync_id, link.version) == ("S1", "v1")
            assert set(tx.links("S1")) == {"launch/sales"}
            assert tx.item_group("S1") == "launch"

    def test_batch_reads_answer_as_the_single_ones(self, store: Store) -> None:
        """A pass reads many items' links, bases, echoes, behind and refusals at once: the same as one by one."""
        count = CHUNK + 7  # more than one IN (...) chunk
        with store.transaction() as tx:
            for i in range(count):
                tx.new_item(f"S{i}", "launch")
                tx.link(f"S{i}", "launch/sales", f"card-{i}", f"v{i}")
                tx.link(f"S{i}", "launch/marketing", f"task-{i}", "")
                if i % 2:
                    tx.set_base(f"S{i}", {"title": f"Item {i}", "labels": ["launch"]})
            # Every kind of value a base holds reads back as written (the batch read decodes them aggregated).
            tx.set_base(
                "S0",
                {
                    "title": 'Ünïcode "quoted" \\ back\nslash 😀',
                    "budget": 1.5,
                    "points": 3,
                    "done": False,
                    "due": None,
                    "assignees": [],
                    "custom": {"Channels": ["Web", "Email"], "empty": {}},
                    'odd "name"': "x",
                },
            )
            tx.add_echoes("S3", "launch/sales", {"title": "Copied"})
            tx.set_behind("S5", {"launch/marketing": {"title": "Older"}})
            tx.refuse("S7", "launch/marketing", Refusal("assignees", ["eli@corp.example"], None, "no such user", NOW))
        ids = [f"S{i}" for i in range(count)]
        with store.transaction() as tx:
            refs = [f"card-{i}" for i in range(count)] + ["card-unknown"]
            assert tx.find_links("launch/sales", refs) == {
                f"card-{i}": tx.find_link("launch/sales", f"card-{i}") for i in range(count)
            }
            assert tx.links_of([*ids, "S-unknown"]) == {sync_id: tx.links(sync_id) for sync_id in ids}
            assert tx.bases(ids) == {s: b for s in ids if (b := tx.base(s)) is not None}
            assert tx.bases(["S0"])["S0"]["title"] == 'Ünïcode "quoted" \\ back\nslash 😀'
            assert tx.bases(["S0"])["S0"]["due"] is None
            assert tx.per_endpoint("echoes", ids) == {"S3": tx.echoes("S3")}
            assert tx.per_endpoint("behind", ids) == {"S5": tx.behind("S5")}
            assert tx.per_endpoint("refused", ids) == {"S7": tx.refusals("S7")}

    def test_echoes_are_dropped_by_field_and_endpoint(self, store: Store) -> None:
        """Recovery forgets the echo of a field a person changed at one endpoint; the others stay."""
        with store.transaction() as tx:
            tx.new_item("S1", "launch")
            tx.add_echoes("S1", "launch/engineering", {"status": "done", "title": "Copied"})
            tx.add_echoes("S1", "launch/marketing", {"status": "done"})
            tx.drop_echoes("S1", "launch/engineering", ["status"])
        with store.transaction() as tx:
            assert tx.echoes("S1") == {
                "launch/engineering": {"title": "Copied"},
                "launch/marketing": {"status": "done"},
            }

    def test_a_second_mirror_at_an_endpoint_is_refused(self, store: Store) -> None:
        """One item has at most one ref per endpoint, enforced by the database."""
        with store.transaction() as tx:
            tx.new_item("S1", "launch")
            tx.link("S1", "launch/sales", "card-1", "v1")
            with pytest.raises(DuplicateLink):
                tx.link("S1", "launch/sales", "card-2", "v1")
            tx.new_item("S2", "launch")
            with pytest.raises(DuplicateLink):
                tx.link("S2", "launch/sales", "card-1", "v1")
            assert tx.find_link("launch/sales", "card-2") is None

    def test_racing_linkers_leave_one_link(self, store: Store) -> None:
        """Two threads linking the same ref to different items at once: exactly one wins."""
        with store.transaction() as tx:
            tx.new_item("A", "g")
            tx.new_item("B", "g")
        outcomes: list[str] = []

        def link(sync_id: str) -> None:
            try:
                with store.transaction() as tx:
                    tx.link(sync_id, "g/jira", "ENG-1", "v")
                outcomes.append("linked")
            except DuplicateLink:
                outcomes.append("refused")
            except Exception as exc:  # SQLite may report the loser as a lock timeout instead
                outcomes.append(type(exc).__name__)

        threads = [threading.Thread(target=link, args=(name,)) for name in ("A", "B")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert outcomes.count("linked") == 1
        with store.transaction() as tx:
            assert len(tx.endpoint_links("g/jira")) == 1

    def test_versions_and_unlinking(self, store: Store) -> None:
        """The version moves with each write; unlinking forgets the endpoint only."""
        with store.transaction() as tx:
            tx.new_item("S1", "g")
            tx.link("S1", "g/jira", "ENG-1", "v1")
            tx.link("S1", "g/sales", "c1", "w1")
            tx.set_version("S1", "g/jira", "v2")
            tx.unlink("S1", "g/sales")
            assert {e: link.version for e, link in tx.links("S1").items()} == {"g/jira": "v2"}


class TestTransactions:
    def test_an_exception_rolls_everything_back(self, store: Store) -> None:
        """Base values, links and cursors of a failed transaction are all gone: all or nothing."""

        def crashing_pass() -> None:
            with store.transaction() as tx:
                tx.new_item("S1", "g")
                tx.link("S1", "g/jira", "ENG-1", "v1")
                tx.set_base("S1", {"title": "x"})
                tx.set_cursor("g/jira", {"since_ms": 1})
                raise RuntimeError("crash before commit")

        with pytest.raises(RuntimeError):
            crashing_pass()
        with store.transaction() as tx:
            assert tx.find_link("g/jira", "ENG-1") is None
            assert tx.base("S1") is None
            assert tx.cursor("g/jira") is None


class TestValues:
    def test_base_values_round_trip_as_json(self, store: Store) -> None:
        """Canonical values (strings, lists, booleans, nulls) come back as written; replacing replaces all."""
        values = {"title": "Launch", "labels": ["a", "b"], "done": False, "due": None}
        with store.transaction() as tx:
            tx.set_base("S1", values)
        with store.transaction() as tx:
            assert tx.base("S1") == values
            tx.set_base("S1", {"title": "Other"})
            assert tx.base("S1") == {"title": "Other"}

    def test_cursors_are_upserted(self, store: Store) -> None:
        """A cursor is created, then replaced."""
        with store.transaction() as tx:
            tx.set_cursor("g/asana", {"sync": "a"})
            tx.set_cursor("g/asana", {"sync": "b"})
            assert tx.cursor("g/asana") == {"sync": "b"}

    def test_journal_lifecycle(self, store: Store) -> None:
        """A journaled plan is pending until done; pending plans come oldest first."""
        with store.transaction() as tx:
            tx.journal_add("P1", "S1", "g", [{"write": "g/jira"}])
            tx.journal_add("P2", "S2", "g", [])
        with store.transaction() as tx:
            assert [entry.plan_id for entry in tx.journal_pending()] == ["P1", "P2"]
            assert tx.journal_pending()[0].steps == [{"write": "g/jira"}]
            tx.journal_done("P1")
            assert [entry.plan_id for entry in tx.journal_pending()] == ["P2"]

    def test_progress_noted_at_once_by_two_writers_is_all_kept(self, store: Store) -> None:
        """An item's writes to two tools go out at once, each noting its step's progress in the same journal entry:
        neither note may overwrite the other (on PostgreSQL the entry is locked while one is noted).
        """
        with store.transaction() as tx:
            tx.journal_add("P1", "S1", "g", [{"endpoint": "jira"}, {"endpoint": "asana"}])
        rounds = 40
        start = threading.Barrier(2, timeout=10)

        def note(index: int) -> None:
            start.wait()
            for n in range(rounds):
                with store.transaction() as tx:
                    tx.journal_step("P1", index, **{f"note{n}": n})

        writers = [threading.Thread(target=note, args=(index,)) for index in (0, 1)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        with store.transaction() as tx:
            (entry,) = tx.journal_pending()
        for step in entry.steps:
            assert {f"note{n}" for n in range(rounds)} <= set(step), step


class TestQuarantine:
    def test_strikes_hold_an_item_after_the_limit_and_release_resets(self, store: Store) -> None:
        """Two strikes retry, the third holds; a retriable failure never counts; release lets it be tried again."""
        with store.transaction() as tx:
            tx.new_item("S1", "launch")
            assert not tx.strike("S1", "launch", "refused", counts=True, limit=3).held
            assert tx.strike("S1", "launch", "tool down", counts=False, limit=3).strikes == 1
            assert not tx.strike("S1", "launch", "refused", counts=True, limit=3).held
            held = tx.strike("S1", "launch", "refused again", counts=True, limit=3)
        assert (held.strikes, held.held, held.error) == (3, True, "refused again")
        assert held.first_at <= held.last_at
        with store.transaction() as tx:
            assert [q.sync_id for q in tx.quarantined("launch", held=True)] == ["S1"]
            assert tx.quarantined("launch", held=False) == []
            assert tx.release("S1")
            assert not tx.release("S2")
            entry = tx.quarantine_entry("S1")
            assert entry is not None
            assert (entry.held, entry.strikes) == (False, 0)
            tx.clear_failure("S1")
            assert tx.quarantined() == []

    def test_the_held_count_reads_outside_transactions_and_is_zero_before_migrating(
        self, store: Store, tmp_path: Path
    ) -> None:
        """held_count counts held items only, answers while a transaction is open, and is 0 on a blank database."""
        with store.transaction() as tx:
            for sync_id in ("S1", "S2"):
                tx.new_item(sync_id, "launch")
                tx.strike(sync_id, "launch", "refused", counts=True, limit=1 if sync_id == "S1" else 3)
        with store.transaction():  # a pass holding SQLite's write lock does not block a scrape
            assert store.held_count() == 1
        store.ping()
        blank = Store(f"sqlite:///{tmp_path / 'blank.db'}")
        try:
            blank.ping()
            assert blank.held_count() == 0
        finally:
            blank.close()


class TestConflictQueue:
    def test_a_held_conflict_is_queued_once_refreshed_decided_and_closed(self, store: Store) -> None:
        """The same field's conflict is one row; new values refresh it; a decision and closing move its state."""
        with store.transaction() as tx:
            _, changed = tx.hold_conflict(
                "C1", sync_id="S1", group="launch", field="title", base_value="Old", values={"sales": "A"}
            )
            assert changed
            again, changed = tx.hold_conflict(
                "C2", sync_id="S1", group="launch", field="title", base_value="Old", values={"sales": "A"}
            )
            assert (again.id, changed) == ("C1", False)
            refreshed, changed = tx.hold_conflict(
                "C3", sync_id="S1", group="launch", field="title", base_value="Old", values={"sales": "B"}
            )
            assert (refreshed.id, changed, refreshed.values) == ("C1", True, {"sales": "B"})
        with store.transaction() as tx:
            assert [c.id for c in tx.conflicts(group="launch")] == ["C1"]
            tx.decide_conflict("C1", "sales", "farah@corp.example")
            decided = tx.conflict("C")
            assert decided is not None
            assert (decided.state, decided.take, decided.resolved_by) == ("decided", "sales", "farah@corp.example")
            tx.close_conflict("C1")
            assert tx.conflicts() == []
            assert [c.state for c in tx.conflicts(states=("closed",))] == ["closed"]
            reopened, changed = tx.hold_conflict(
                "C4", sync_id="S1", group="launch", field="title", base_value="B", values={"sales": "C"}
            )
            assert (reopened.id, changed) == ("C4", True)
            assert tx.conflict("C") is None  # ambiguous prefix: C1 and C4
