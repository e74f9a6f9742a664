"""`syncd audit` and `syncd audit verify` on a real SQLite store: filters, the three formats, and tampering found."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import delete, update
from typer.testing import CliRunner, Result

from syncd.audit import AuditEvent, Recorded, append, query
from syncd.cli import app
from syncd.store import Store
from syncd.store.schema import audit, audit_terms

ROOT = Path(__file__).resolve().parent.parent
LONG = "Reseller tiers: " + "x" * 84
"""A description longer than the table shows (100 characters)."""

EVENTS = [
    AuditEvent(
        "create",
        group="launch",
        sync_id="S1",
        endpoint="engineering",
        refs={"engineering": "ENG-1"},
        new={"title": "Launch", "status": "todo"},
        origin="sales",
        person="eli@corp.example",
        config_version="v1",
        message="created from sales",
        at=datetime(2024, 5, 1, 9, 0, tzinfo=UTC),
    ),
    AuditEvent(
        "write",
        group="launch",
        sync_id="S1",
        endpoint="marketing",
        refs={"marketing": "1201"},
        new={"status": "doing"},
        origin="engineering",
        person="Ana@Corp.example",
        at=datetime(2024, 5, 1, 23, 59, 59, tzinfo=UTC),
    ),
    AuditEvent(
        "conflict",
        group="launch",
        sync_id="S1",
        field="status",
        new="done",
        origin="engineering",
        person="ana@corp.example",
        rule="latest",
        loser={"sales": "doing"},
        outcome="decided",
        at=datetime(2024, 5, 2, 0, 0, tzinfo=UTC),
    ),
    AuditEvent(
        "write",
        group="pricing",
        sync_id="S2",
        endpoint="sales",
        refs={"sales": "card-abc"},
        new={"title": "[bold]Bulk seats[/bold]"},
        origin="marketing",
        person="joe@corp.example",
        message="title changed in marketing",
        at=datetime(2024, 5, 2, 10, 30, tzinfo=timezone(timedelta(hours=2))),  # 08:30 UTC
    ),
    AuditEvent(
        "archive",
        group="pricing",
        sync_id="S2",
        endpoint="engineering",
        refs={"engineering": "ENG-7"},
        origin="sales",
        at=datetime(2024, 5, 3, 12, 0, tzinfo=UTC),
    ),
    AuditEvent(
        "write",
        group="launch",
        sync_id="S3",
        endpoint="sales",
        refs={"sales": "card-xyz"},
        new={"description": LONG},
        origin="marketing",
        at=datetime(2024, 5, 4, 8, 0, tzinfo=UTC),
    ),
    AuditEvent(
        "conflict",
        group="launch",
        sync_id="S3",
        field="assignee",
        new=["ana@corp.example", "joe@corp.example"],
        rule="union",
        outcome="held",
        message="held for review",
        at=datetime(2024, 5, 4, 9, 0, tzinfo=UTC),
    ),
]

HEADER = [
    "seq",
    "at",
    "kind",
    "group",
    "sync_id",
    "endpoint",
    "refs",
    "field",
    "old",
    "new",
    "origin",
    "person",
    "people",
    "decided_by",
    "rule",
    "loser",
    "outcome",
    "config_version",
    "message",
    "prev_hash",
    "hash",
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path}/s.db")
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
def log(store: Store) -> list[Recorded]:
    """The seven events above, each appended in its own transaction as the engine does."""
    recorded = []
    for event in EVENTS:
        with store.transaction() as tx:
            recorded.append(append(tx, event))
    return recorded


@pytest.fixture
def config_dir(tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped configuration, its store overridden from the environment; no tool credential is set."""
    config = tmp_path / "config"
    (config / "departments").mkdir(parents=True)
    shutil.copy(ROOT / "config" / "syncd.yaml", config / "syncd.yaml")
    for path in (ROOT / "config" / "departments").glob("*.yaml"):
        shutil.copy(path, config / "departments" / path.name)
    monkeypatch.setenv("SYNCD_STORE", store.url)
    for name in ("SYNCD_JIRA_TOKEN", "SYNCD_TRELLO_KEY", "SYNCD_TRELLO_TOKEN", "SYNCD_ASANA_TOKEN"):
        monkeypatch.delenv(name, raising=False)  # reading the log must not need them
    return config


def syncd_audit(config_dir: Path, *args: str) -> Result:
    # Wide enough that Rich never wraps a table cell, so rows can be read back line by line.
    return CliRunner().invoke(app, ["audit", *args, "--config", str(config_dir)], env={"COLUMNS": "250"})


def seqs(result: Result) -> list[int]:
    assert result.exit_code == 0, result.output
    return [json.loads(line)["seq"] for line in result.stdout.splitlines()]


def table_rows(result: Result) -> dict[int, list[str]]:
    rows = {}
    for line in result.stdout.splitlines():
        cells = [cell.strip() for cell in re.split(r"[│|┃]", line)[1:-1]]
        if cells and cells[0].isdigit():
            rows[int(cells[0])] = cells
    return rows


class TestFilters:
    @pytest.mark.parametrize(
        ("args", "expected"),
        [
            ((), [1, 2, 3, 4, 5, 6, 7]),
            (("--item", "S1"), [1, 2, 3]),
            (("--item", "S404"), []),
            (("--ref", "ENG-1"), [1]),
            (("--ref", "card-abc"), [4]),
            (("--group", "pricing"), [4, 5]),
            (("--department", "engineering"), [1, 2, 3, 5]),  # written there (1, 5) or its change (2, 3)
            (("--department", "marketing"), [2, 4, 6]),
            (("--person", "ana@corp.example"), [2, 3]),
            (("--person", "ANA@CORP.EXAMPLE"), [2, 3]),
            (("--field", "status"), [1, 2, 3]),  # the writes carry it in their values, the conflict names it
            (("--field", "title"), [1, 4]),
            (("--field", "assignee"), [7]),
            (("--kind", "write"), [2, 4, 6]),
            (("--kind", "conflict", "--group", "launch", "--person", "ana@corp.example"), [3]),
            (("--since", "2024-05-02"), [3, 4, 5, 6, 7]),  # midnight UTC, inclusive
            (("--until", "2024-05-02"), [1, 2]),  # exclusive
            (("--since", "2024-05-02", "--until", "2024-05-03"), [3, 4]),
            (("--since", "2024-05-02T10:30:00+02:00"), [4, 5, 6, 7]),  # event 4 at exactly 08:30 UTC
            (("--since", "2024-05-02T08:30:01"), [5, 6, 7]),  # no zone: UTC
            (("--until", "2024-05-02T08:30:00Z"), [1, 2, 3]),
            (("--limit", "2"), [6, 7]),
            (("--kind", "write", "--limit", "2"), [4, 6]),
            (("--department", "engineering", "--limit", "2"), [3, 5]),
            (("--limit", "50"), [1, 2, 3, 4, 5, 6, 7]),
        ],
    )
    def test_each_filter_selects_exactly(
        self, config_dir: Path, log: list[Recorded], args: tuple[str, ...], expected: list[int]
    ) -> None:
        """Every filter, alone and combined, selects exactly these events, oldest first."""
        assert seqs(syncd_audit(config_dir, *args, "--format", "jsonl")) == expected

    @pytest.mark.skipif(not hasattr(time, "tzset"), reason="the local zone can only be switched where tzset exists")
    def test_a_time_without_zone_is_utc_in_any_local_zone(self, config_dir: Path, log: list[Recorded]) -> None:
        """On a machine set to New York, 05:00 without a zone still means UTC (not 09:00 UTC): event 4 is after it."""
        with pytest.MonkeyPatch.context() as zone:
            zone.setenv("TZ", "America/New_York")
            time.tzset()
            try:
                result = syncd_audit(config_dir, "--since", "2024-05-02T05:00:00", "--format", "jsonl")
            finally:
                zone.undo()
                time.tzset()
        assert seqs(result) == [4, 5, 6, 7]

    @pytest.mark.parametrize("option", ["--since", "--until"])
    def test_a_bad_time_names_the_option(self, config_dir: Path, log: list[Recorded], option: str) -> None:
        """A value that is not ISO 8601 exits 2 naming the option and the value."""
        result = syncd_audit(config_dir, option, "yesterday")
        assert result.exit_code == 2
        assert f"'{option}'" in result.stderr
        assert "'yesterday' is not an ISO 8601 date or datetime" in result.stderr
        assert result.stdout == ""

    def test_a_zero_limit_is_refused(self, config_dir: Path, log: list[Recorded]) -> None:
        """--limit counts events to show; 0 is a usage error, not an empty answer."""
        result = syncd_audit(config_dir, "--limit", "0")
        assert result.exit_code == 2
        assert "'--limit'" in result.stderr


class TestQuery:
    def test_a_naive_bound_is_refused(self, store: Store) -> None:
        """query() will not guess a zone: the CLI decides (UTC) before it asks."""
        with pytest.raises(ValueError, match="timezone-aware"):
            query(store, since=datetime(2024, 5, 2))  # noqa: DTZ001 - the mistake under test

    def test_a_negative_limit_is_refused(self, store: Store) -> None:
        """A negative count is a bug in the caller, not an empty answer."""
        with pytest.raises(ValueError, match="must not be negative"):
            query(store, limit=-1)

    def test_the_records_read_back_as_appended(self, store: Store, log: list[Recorded]) -> None:
        """Filters in SQL and in Python together return the very records append() returned."""
        assert query(store, group="launch", department="marketing") == [log[1], log[5]]


class TestFormats:
    def test_jsonl_round_trips_every_field(self, config_dir: Path, log: list[Recorded]) -> None:
        """One JSON object per event: seq, the event as recorded (UTC ISO time), and its place in the chain."""
        lines = [json.loads(line) for line in syncd_audit(config_dir, "--format", "jsonl").stdout.splitlines()]
        assert [list(line) for line in lines] == [HEADER] * 7
        assert lines[3] == {
            "seq": 4,
            "at": "2024-05-02T08:30:00+00:00",
            "kind": "write",
            "group": "pricing",
            "sync_id": "S2",
            "endpoint": "sales",
            "refs": {"sales": "card-abc"},
            "field": None,
            "old": None,
            "new": {"title": "[bold]Bulk seats[/bold]"},
            "origin": "marketing",
            "person": "joe@corp.example",
            "people": None,
            "decided_by": None,
            "rule": None,
            "loser": None,
            "outcome": "applied",
            "config_version": None,
            "message": "title changed in marketing",
            "prev_hash": log[2].hash,
            "hash": log[3].hash,
        }
        assert lines[6]["new"] == ["ana@corp.example", "joe@corp.example"]
        assert [line["hash"] for line in lines] == [each.hash for each in log]
        assert [line["prev_hash"] for line in lines[1:]] == [line["hash"] for line in lines[:-1]]

    def test_csv_has_the_header_and_one_row_per_event(self, config_dir: Path, log: list[Recorded]) -> None:
        """csv.DictReader reads it back; mappings and lists are compact JSON, a missing value an empty cell."""
        result = syncd_audit(config_dir, "--format", "csv", "--item", "S1")
        assert result.exit_code == 0, result.output
        reader = csv.DictReader(io.StringIO(result.stdout))
        rows = list(reader)
        assert reader.fieldnames == HEADER
        assert [row["seq"] for row in rows] == ["1", "2", "3"]
        assert rows[0]["new"] == '{"title":"Launch","status":"todo"}'
        assert rows[0]["refs"] == '{"engineering":"ENG-1"}'
        assert rows[0]["config_version"] == "v1"
        assert (rows[2]["field"], rows[2]["new"], rows[2]["loser"]) == ("status", "done", '{"sales":"doing"}')
        assert (rows[2]["endpoint"], rows[2]["old"]) == ("", "")
        assert rows[1]["at"] == "2024-05-01T23:59:59+00:00"
        assert rows[2]["hash"] == log[2].hash

    def test_csv_of_nothing_is_the_header(self, config_dir: Path, log: list[Recorded]) -> None:
        """No match still prints the header, so a script reads an empty table rather than nothing."""
        result = syncd_audit(config_dir, "--format", "csv", "--kind", "quarantine")
        assert result.stdout == ",".join(HEADER) + "\n"

    def test_the_table_shows_each_event(self, config_dir: Path, log: list[Recorded]) -> None:
        """The default format: one row per event, UTC times, the new value shortened, markup shown as written."""
        result = syncd_audit(config_dir)
        assert result.exit_code == 0, result.output
        rows = table_rows(result)
        assert sorted(rows) == [1, 2, 3, 4, 5, 6, 7]
        # seq, time, kind, group, item, endpoint, field, new, origin, person, rule, outcome, message
        assert rows[3] == [
            "3",
            "2024-05-02 00:00:00",
            "conflict",
            "launch",
            "S1",
            "",
            "status",
            "done",
            "engineering",
            "ana@corp.example",
            "latest",
            "decided",
            "",
        ]
        assert rows[4][1] == "2024-05-02 08:30:00"
        assert rows[4][7] == '{"title":"[bold]Bulk seats[/bold]"}'
        assert rows[4][12] == "title changed in marketing"
        assert rows[6][7] == '{"description":"Reseller tiers: xxxxxxx…'
        assert LONG not in result.stdout
        assert rows[7][11:] == ["held", "held for review"]

    def test_an_empty_table_says_so(self, config_dir: Path, log: list[Recorded]) -> None:
        """No match: an empty table and a note on stderr, exit 0."""
        result = syncd_audit(config_dir, "--item", "S404")
        assert result.exit_code == 0
        assert table_rows(result) == {}
        assert "no audit event matches" in result.stderr


class TestVerify:
    def test_an_intact_chain_is_ok(self, config_dir: Path, log: list[Recorded]) -> None:
        """Seven untouched events verify."""
        result = syncd_audit(config_dir, "verify")
        assert (result.exit_code, result.stdout) == (0, "audit chain ok: 7 events\n")

    def test_an_empty_log_is_ok(self, config_dir: Path) -> None:
        """A fresh store has a valid, empty chain."""
        result = syncd_audit(config_dir, "verify")
        assert (result.exit_code, result.stdout) == (0, "audit chain ok: 0 events\n")

    def test_the_config_can_come_before_verify(self, config_dir: Path, log: list[Recorded]) -> None:
        """`syncd audit --config DIR verify` reads the same store as `syncd audit verify --config DIR`."""
        result = CliRunner().invoke(app, ["audit", "--config", str(config_dir), "verify"])
        assert (result.exit_code, result.stdout) == (0, "audit chain ok: 7 events\n")

    def test_an_edited_event_is_named(self, config_dir: Path, store: Store, log: list[Recorded]) -> None:
        """Changing event 2's value after the fact breaks the chain at 2."""
        with store.engine.begin() as connection:
            row = connection.execute(audit.select().where(audit.c.seq == 2)).one()
            connection.execute(update(audit).where(audit.c.seq == 2).values(content={**row.content, "new": "forged"}))
        result = syncd_audit(config_dir, "verify")
        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr == "audit chain broken at event 2: its content was changed after it was written\n"

    def test_a_deleted_event_is_named(self, config_dir: Path, store: Store, log: list[Recorded]) -> None:
        """Deleting event 3 is reported as event 3 missing."""
        with store.engine.begin() as connection:
            connection.execute(delete(audit).where(audit.c.seq == 3))
        result = syncd_audit(config_dir, "verify")
        assert result.exit_code == 1
        assert result.stderr == "audit chain broken at event 3: event 3 is missing\n"

    def test_swapped_events_are_named(self, config_dir: Path, store: Store, log: list[Recorded]) -> None:
        """Swapping events 2 and 3 (their content and hashes intact) breaks the chain at 2, the first out of place."""
        with store.engine.begin() as connection:
            connection.execute(update(audit).where(audit.c.seq == 2).values(seq=0))
            connection.execute(update(audit).where(audit.c.seq == 3).values(seq=2))
            connection.execute(update(audit).where(audit.c.seq == 0).values(seq=3))
        result = syncd_audit(config_dir, "verify")
        assert result.exit_code == 1
        assert result.stderr == "audit chain broken at event 2: its link to the previous event was changed\n"

    def test_an_edited_index_is_named_and_reindex_repairs_it(
        self, config_dir: Path, store: Store, log: list[Recorded]
    ) -> None:
        """An index entry removed (Ana's conflict hidden from --person): verify exits 1 naming it, reindex repairs."""
        with store.engine.begin() as connection:
            connection.execute(
                delete(audit_terms).where(audit_terms.c.seq == 3, audit_terms.c.value == "ana@corp.example")
            )
        assert seqs(syncd_audit(config_dir, "--person", "ana@corp.example", "--format", "jsonl")) == [2]
        result = syncd_audit(config_dir, "verify")
        assert (result.exit_code, result.stdout) == (1, "")
        assert result.stderr.startswith("audit index wrong at event 3: its entries in the audit index (audit_terms)")
        assert "`syncd audit reindex` rebuilds the index" in result.stderr
        repaired = syncd_audit(config_dir, "reindex")
        assert (repaired.exit_code, repaired.stderr) == (0, "")
        assert re.fullmatch(r"audit index rebuilt: \d+ entries\n", repaired.stdout)
        assert syncd_audit(config_dir, "verify").exit_code == 0
        assert seqs(syncd_audit(config_dir, "--person", "ana@corp.example", "--format", "jsonl")) == [2, 3]


class TestCheckpoints:
    def test_head_prints_one_json_line(self, config_dir: Path, log: list[Recorded]) -> None:
        """`syncd audit head` prints the last seq and hash, the line to keep outside the database."""
        result = syncd_audit(config_dir, "head")
        assert result.exit_code == 0
        assert json.loads(result.stdout) == {"seq": 7, "hash": log[-1].hash}
        assert result.stdout.count("\n") == 1

    def test_verify_holds_the_exported_head(self, config_dir: Path, log: list[Recorded]) -> None:
        """The head just exported is held; an unkeyed chain says so as a warning, not as a failure."""
        checkpoint = syncd_audit(config_dir, "head").stdout.strip()
        result = syncd_audit(config_dir, "verify", "--checkpoint", checkpoint)
        assert (result.exit_code, result.stdout) == (0, "audit chain ok: 7 events, 1 checkpoint held\n")
        assert "warning: 7 events are unkeyed: an edit by someone with database write access can be re-chained" in (
            " ".join(result.stderr.split())
        )

    def test_a_checkpoint_of_another_history_is_named(self, config_dir: Path, log: list[Recorded]) -> None:
        """A checkpoint whose hash the chain does not hold names that event."""
        result = syncd_audit(config_dir, "verify", "--checkpoint", json.dumps({"seq": 4, "hash": "f" * 64}))
        assert result.exit_code == 1
        assert result.stderr.startswith("audit chain broken at event 4: its hash differs from the checkpoint")

    @pytest.mark.parametrize("given", ['{"seq": "x"}', "{not json", "missing-file.jsonl"])
    def test_a_malformed_checkpoint_exits_2(self, config_dir: Path, log: list[Recorded], given: str) -> None:
        """A checkpoint that cannot be read is a usage error, not a verdict about the chain."""
        result = syncd_audit(config_dir, "verify", "--checkpoint", given)
        assert result.exit_code == 2
        assert "Traceback" not in result.output


class TestErrors:
    def test_a_config_error_exits_2(self, config_dir: Path) -> None:
        """A broken syncd.yaml is reported with its file, for listing and verifying alike."""
        (config_dir / "syncd.yaml").write_text("store: sqlite:///var/syncd.db\nstroe: typo\n")
        for args in ((), ("verify",)):
            result = syncd_audit(config_dir, *args)
            assert result.exit_code == 2
            assert "error:" in result.stderr
            assert "syncd.yaml" in result.stderr
            assert "stroe" in result.stderr

    def test_an_unreadable_store_exits_2(
        self, config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A store that cannot be opened is one line of error, not a traceback."""
        (tmp_path / "blocker").write_text("a file where the store's directory should be")
        monkeypatch.setenv("SYNCD_STORE", f"sqlite:///{tmp_path}/blocker/dir/s.db")
        result = syncd_audit(config_dir, "verify")
        assert result.exit_code == 2
        assert "error: cannot create the store's directory " in result.stderr
        assert "blocker/dir: Not a directory" in result.stderr
        assert "Traceback" not in result.output


class TestPerFieldPeople:
    SHARED = AuditEvent(
        "write",
        group="launch",
        sync_id="S9",
        endpoint="engineering",
        refs={"engineering": "ENG-9"},
        new={"title": "Launch v2", "due": "2027-03-05"},
        origin="marketing,sales",
        people={"title": "eli@corp.example", "due": "gus@corp.example"},
        decided_by={"due": "lead@corp.example"},
        rule="manual:marketing",
        at=datetime(2024, 5, 5, 9, 0, tzinfo=UTC),
    )

    @pytest.fixture
    def shared(self, store: Store) -> Recorded:
        with store.transaction() as tx:
            return append(tx, self.SHARED)

    def test_the_table_names_each_fields_person_and_the_decider(self, config_dir: Path, shared: Recorded) -> None:
        """A write carrying two people's changes names each per field, and who decided what it applies."""
        rows = table_rows(syncd_audit(config_dir))
        assert rows[1][9] == "due: gus@corp.example; title: eli@corp.example; decided by lead@corp.example"

    def test_the_export_carries_people_and_deciders(self, config_dir: Path, shared: Recorded) -> None:
        """JSON Lines keep the per-field people and deciders as mappings (lossless)."""
        (line,) = [json.loads(each) for each in syncd_audit(config_dir, "--format", "jsonl").stdout.splitlines()]
        assert (line["person"], line["people"], line["decided_by"]) == (
            None,
            {"title": "eli@corp.example", "due": "gus@corp.example"},
            {"due": "lead@corp.example"},
        )

    @pytest.mark.parametrize("who", ["eli@corp.example", "GUS@corp.example", "lead@corp.example"])
    def test_person_finds_a_write_by_any_of_its_people(self, config_dir: Path, shared: Recorded, who: str) -> None:
        """--person matches one of a write's per-field people, or who decided what it applies."""
        assert seqs(syncd_audit(config_dir, "--format", "jsonl", "--person", who)) == [1]
