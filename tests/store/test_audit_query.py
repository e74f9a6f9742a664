"""The audit log filtered in SQL (issue 19): pages, exports and query() select exactly what the filters mean.

The meaning is :meth:`AuditFilter.matches` (the filters decided in Python on each event, as ``syncd audit`` always
did); Hypothesis writes random events and random filters and the database must answer the same, on SQLite and on
PostgreSQL. Then the index the filters use (audit_terms): filled by migration 0013 as append fills it, checked by
verify, rebuilt by reindex.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, insert, select, text, update

from syncd.audit import (
    AuditEvent,
    AuditFilter,
    Recorded,
    append,
    events,
    export,
    fill_terms,
    page,
    query,
    reindex,
    verify,
)
from syncd.store import Store
from syncd.store.schema import GENESIS, audit, audit_head, audit_terms

LONG_REF = "card-" + "x" * 300
"""Longer than audit_terms holds as written: kept as its digest, and still found by equality."""
VALUES = {
    "sync_id": ["S1", "S2", "S9"],
    "ref": ["ENG-1", "ENG-2", "card-1", LONG_REF, ""],
    "group": ["launch", "pricing"],
    "department": ["sales", "marketing", "engineering", ""],
    "person": ["ana@corp.example", "ANA@corp.example", "straße@corp.example", "STRASSE@corp.example", ""],
    "field": ["title", "status", "due", ""],
    "kind": ["write", "conflict", "skip"],
}
"""The values events are made of and filters ask for: few, so that filters often match, sometimes nothing."""
DEPARTMENTS, PEOPLE = st.sampled_from(VALUES["department"]), st.sampled_from(VALUES["person"])
FIELDS, REFS = st.sampled_from(VALUES["field"]), st.sampled_from(VALUES["ref"])
T0 = datetime(2024, 5, 1, tzinfo=UTC)
TIMES = st.integers(0, 6 * 24).map(lambda hours: T0 + timedelta(hours=hours))
ZONES = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))])


@st.composite
def audit_events(draw: st.DrawFn) -> AuditEvent:
    """An event of any kind, with values from small sets so that filters often match, and sometimes nothing."""
    people = st.none() | st.dictionaries(FIELDS, PEOPLE, max_size=2)
    new = st.none() | st.text(max_size=3) | st.dictionaries(FIELDS, st.integers(0, 3), max_size=3)
    return AuditEvent(
        draw(st.sampled_from(["write", "create", "conflict", "decision", "skip"])),
        group=draw(st.none() | st.sampled_from(["launch", "pricing"])),
        sync_id=draw(st.none() | st.sampled_from(["S1", "S2", "S3"])),
        endpoint=draw(st.none() | DEPARTMENTS),
        refs=draw(st.dictionaries(DEPARTMENTS, REFS, max_size=2)),
        field=draw(st.none() | FIELDS),
        new=draw(new),
        origin=draw(st.none() | DEPARTMENTS | st.just("engineering,sales")),  # a guard's or deletion's sources
        person=draw(st.none() | PEOPLE),
        people=draw(people),
        decided_by=draw(people),
        at=draw(TIMES).astimezone(draw(ZONES)),
    )


READERS = st.frozensets(DEPARTMENTS | st.just("engineering,sales"), max_size=3)
"""A person's readable departments: none, one (a term of the index) or several (any of them)."""
FILTERS = {name: st.sampled_from(values) for name, values in VALUES.items()} | {
    "person": PEOPLE | st.just("Straße@Corp.Example"),
    "since": TIMES,
    "until": TIMES,
    "readers": READERS,
}
SINGLE = [AuditFilter(**{name: value}) for name, values in VALUES.items() for value in values] + [  # type: ignore[arg-type]  # text filters only
    AuditFilter(readers=frozenset(readers))
    for readers in ([], ["sales"], ["marketing"], ["engineering", "sales"], ["engineering,sales"], [""])
]
"""Every filter alone with every value: checked on every example, so each value's meaning meets many events."""


@st.composite
def filters(draw: st.DrawFn) -> AuditFilter:
    """One to three filters at once (more would rarely match anything), times in any zone."""
    chosen = draw(st.lists(st.sampled_from(sorted(FILTERS)), min_size=1, max_size=3, unique=True))
    given: dict[str, Any] = {name: draw(FILTERS[name]) for name in chosen}
    for bound in ("since", "until"):
        if bound in given:
            given[bound] = given[bound].astimezone(draw(ZONES))
    return AuditFilter(**given)


def _emptied(store: Store) -> None:
    """Back to an empty log (Hypothesis runs many examples on one store)."""
    with store.engine.begin() as connection:
        connection.execute(delete(audit_terms))
        connection.execute(delete(audit))
        connection.execute(update(audit_head).values(seq=0, hash=GENESIS))


def _appended(store: Store, written: list[AuditEvent]) -> list[Recorded]:
    with store.transaction() as tx:
        for event in written:
            append(tx, event)
    return events(store)


class TestSameAsInPython:
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(written=st.lists(audit_events(), max_size=20), chosen=st.lists(filters(), min_size=1, max_size=3))
    def test_sql_selects_what_the_filters_mean(
        self, store: Store, written: list[AuditEvent], chosen: list[AuditFilter]
    ) -> None:
        """export, every page (newest first, any size) and query() answer exactly AuditFilter.matches's events."""
        _emptied(store)
        stored = _appended(store, written)
        for wanted in SINGLE:
            expected = [recorded.seq for recorded in stored if wanted.matches(recorded)]
            assert [recorded.seq for recorded in export(store, wanted)] == expected, wanted
        for wanted in chosen:
            expected = [recorded.seq for recorded in stored if wanted.matches(recorded)]
            assert [recorded.seq for recorded in export(store, wanted, batch=3)] == expected
            arguments = {name: getattr(wanted, name) for name in wanted.__dataclass_fields__}
            assert query(store, **arguments) == [r for r in stored if r.seq in expected]
            assert [recorded.seq for recorded in query(store, **arguments, limit=2)] == expected[-2:]
            paged: list[int] = []
            before: int | None = None
            while True:
                found, before = page(store, wanted, before=before, limit=3)
                paged += [recorded.seq for recorded in found]
                if before is None:
                    break
            assert paged == expected[::-1]


class TestPages:
    def test_pages_walk_back_and_say_when_they_end(self, store: Store) -> None:
        """Seven events in pages of three: 7 6 5, 4 3 2, 1; the last page says there is no next one."""
        _appended(store, [AuditEvent("write", sync_id=f"S{n}", at=T0 + timedelta(minutes=n)) for n in range(7)])
        first, before = page(store, limit=3)
        second, after_second = page(store, before=before, limit=3)
        last, end = page(store, before=after_second, limit=3)
        assert [[r.seq for r in each] for each in (first, second, last)] == [[7, 6, 5], [4, 3, 2], [1]]
        assert (before, after_second, end) == (5, 2, None)
        assert page(store, limit=7)[1] is None, "exactly a page left: no next page to ask for"

    def test_an_export_left_part_way_releases_its_cursor(self, store: Store) -> None:
        """A consumer that stops reading (a closed download) leaves no open cursor behind (warnings are errors)."""
        _appended(store, [AuditEvent("write", sync_id=f"S{n}") for n in range(5)])
        stream = export(store, batch=2)
        assert next(stream).seq == 1
        stream.close()
        assert [recorded.seq for recorded in export(store)] == [1, 2, 3, 4, 5]

    def test_a_page_is_at_least_one_event_and_times_have_zones(self, store: Store) -> None:
        """limit 0 and naive times are refused, naming what to give instead."""
        with pytest.raises(ValueError, match="at least one event"):
            page(store, limit=0)
        with pytest.raises(ValueError, match="timezone-aware"):
            AuditFilter(since=datetime(2024, 5, 1))  # noqa: DTZ001 - the naive time refused


def _migrate_to(store: Store, revision: str, *, down: bool) -> None:
    config = Config()
    config.set_main_option("script_location", str(resources.files("syncd.store").joinpath("migrations")))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def _terms(store: Store) -> list[tuple[str, str, int]]:
    with store.engine.connect() as connection:
        rows = connection.execute(select(audit_terms).order_by(audit_terms.c.seq, audit_terms.c.term_kind))
        return sorted((row.term_kind, row.value, row.seq) for row in rows)


EVENTS = [
    AuditEvent(
        "write",
        group="launch",
        sync_id="S1",
        endpoint="sales",
        refs={"sales": "card-1"},
        new={"title": "A", "due": "2024-05-02"},
        origin="engineering",
        person="Ana@Corp.example",
        people={"title": "Ana@Corp.example", "due": "eli@corp.example"},
    ),
    AuditEvent("conflict", group="launch", sync_id="S1", field="status", rule="latest", loser={"sales": "doing"}),
    AuditEvent("decision", sync_id="S1", field="status", person="lead@corp.example", decided_by={"status": "x@y"}),
]


class TestIndex:
    def test_the_migration_backfills_what_append_writes(self, store: Store) -> None:
        """Down to 0014 (no reader terms) or 0012 (no index) and up again: audit_terms holds what the appends wrote."""
        _appended(store, EVENTS * 4)
        written = _terms(store)
        assert ("person", "ana@corp.example", 1) in written
        assert ("field", "due", 1) in written
        assert {("reader", "sales", 1), ("reader", "engineering", 1)} <= set(written)
        _migrate_to(store, "0014", down=True)
        assert _terms(store) == [each for each in written if each[0] != "reader"]
        _migrate_to(store, "head", down=False)
        assert _terms(store) == written
        _migrate_to(store, "0012", down=True)
        _migrate_to(store, "head", down=False)
        assert _terms(store) == written
        assert verify(store).ok

    def test_the_backfill_reads_in_batches_and_skips_unreadable_rows(self, store: Store) -> None:
        """Any batch size gives the same index; a row whose content is not JSON gets none (verify names it)."""
        _appended(store, EVENTS * 3)
        written = _terms(store)
        with store.engine.begin() as connection:
            connection.execute(delete(audit_terms))
            assert fill_terms(connection, batch=2) == len(written)
        assert _terms(store) == written
        if store.engine.dialect.name == "sqlite":  # PostgreSQL's JSON column refuses the corrupt value itself
            with store.engine.begin() as connection:
                connection.execute(text("UPDATE audit SET content = '{not json' WHERE seq = 2"))
                connection.execute(delete(audit_terms))
                fill_terms(connection)
            assert {seq for _, _, seq in _terms(store)} == {1, 3, 4, 5, 6, 7, 8, 9}
            assert verify(store).first_bad_seq == 2

    def test_a_removed_index_entry_is_found_and_reindex_repairs_it(self, store: Store) -> None:
        """Deleting Ana's entry hides her write from --person: verify names the event, reindex puts it back."""
        _appended(store, EVENTS)
        with store.engine.begin() as connection:
            connection.execute(delete(audit_terms).where(audit_terms.c.value == "ana@corp.example"))
        assert query(store, person="ana@corp.example") == []
        result = verify(store)
        assert (result.ok, result.in_index, result.first_bad_seq) == (False, True, 1)
        assert "syncd audit reindex" in (result.reason or "")
        assert reindex(store) == len(_terms(store))
        assert verify(store).ok
        assert [r.seq for r in query(store, person="ana@corp.example")] == [1]

    def test_an_added_index_entry_is_found(self, store: Store) -> None:
        """An entry naming someone the event does not (it would show under their filter) is found at its event."""
        _appended(store, EVENTS)
        with store.engine.begin() as connection:
            connection.execute(insert(audit_terms).values(term_kind="person", value="mallory@corp.example", seq=2))
            count = connection.execute(select(func.count()).select_from(audit_terms)).scalar_one()
        assert count == len(_terms(store))
        result = verify(store)
        assert (result.ok, result.in_index, result.first_bad_seq) == (False, True, 2)

    def test_a_chain_finding_comes_before_an_index_one(self, store: Store) -> None:
        """An edited event is reported as the chain's finding, not as the index it no longer matches."""
        _appended(store, EVENTS)
        with store.engine.begin() as connection:
            row = connection.execute(select(audit).where(audit.c.seq == 1)).one()
            forged = {**row.content, "person": "mallory@corp.example"}
            connection.execute(update(audit).where(audit.c.seq == 1).values(content=forged))
        result = verify(store)
        assert (result.ok, result.in_index, result.first_bad_seq) == (False, False, 1)
