"""`syncd conflicts`, `syncd quarantine` and `syncd status` on a real SQLite store, set up as the engine leaves it."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text, update
from typer.testing import CliRunner, Result

from syncd.audit import events
from syncd.cli import app
from syncd.plan import Refusal
from syncd.store import HeldConflict, Quarantined, Store
from syncd.store.schema import conflicts, cursors, quarantine
from tests.store.conftest import SCHEMA_HEAD

ROOT = Path(__file__).resolve().parent.parent
C1 = "01HXAAAA0000000000000000S1"
"""Open: the status of S1 (launch), changed at engineering and sales; marketing holds the item too."""
C2 = "01HXBBBB0000000000000000S2"
"""Open: the assignee of S2 (launch), set at engineering, cleared at sales."""
C3 = "01HXCCCC0000000000000000P1"
"""Closed: the title of P1 (pricing), settled by people at the tools."""
DESCRIPTION = "Reseller tiers:\n- bronze\n- " + "x" * 40
ASANA_SAYS = "assignee: Not a recognized ID or e-mail: nobody@corp.example"


def at(hour: int) -> datetime:
    return datetime(2024, 5, 1, hour, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path}/s.db")
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
def state(store: Store) -> Store:
    """Two groups as passes leave them: items, links, cursors, two open and one closed conflict, two failing items.

    Times are pinned after the fact (the store stamps the clock) so the output can be compared literally.
    """
    with store.transaction() as tx:
        for sync_id, group in (("S1", "launch"), ("S2", "launch"), ("S3", "launch"), ("P1", "pricing")):
            tx.new_item(sync_id, group)
        for sync_id, endpoint, ref in (
            ("S1", "launch/engineering", "ENG-1"),
            ("S1", "launch/sales", "card-1"),
            ("S1", "launch/marketing", "1201"),
            ("S2", "launch/engineering", "ENG-2"),
            ("S2", "launch/sales", "card-2"),
            ("S3", "launch/engineering", "ENG-3"),
            ("P1", "pricing/sales", "card-9"),
        ):
            tx.link(sync_id, endpoint, ref, "v1")
        for endpoint in ("launch/engineering", "launch/sales", "pricing/sales"):
            tx.set_cursor(endpoint, {"since": "2024-05-01T00:00:00Z"})
        tx.hold_conflict(
            C1,
            sync_id="S1",
            group="launch",
            field="status",
            base_value="todo",
            values={"engineering": "done", "sales": "doing"},
        )
        tx.hold_conflict(
            C2,
            sync_id="S2",
            group="launch",
            field="assignee",
            base_value="ana@corp.example",
            values={"engineering": "joe@corp.example", "sales": None},
        )
        tx.hold_conflict(
            C3,
            sync_id="P1",
            group="pricing",
            field="description",
            base_value="Reseller tiers",
            values={"sales": DESCRIPTION, "marketing": "[bold]Tiers[/bold]"},
        )
        tx.close_conflict(C3)
        for _ in range(3):
            tx.strike("S3", "launch", "ENG-3: 400 priority 'Urgent' is not allowed", counts=True, limit=3)
        tx.strike("P1", "pricing", "card-9: 429 rate limited", counts=True, limit=3)
        tx.refuse("S1", "launch/marketing", Refusal("assignees", ["nobody@corp.example"], [], ASANA_SAYS, at(16)))
        pin = tx.connection.execute
        for conflict_id, hour in ((C1, 9), (C2, 10), (C3, 8)):
            pin(update(conflicts).where(conflicts.c.id == conflict_id).values(opened_at=at(hour), updated_at=at(hour)))
        for sync_id, first, last in (("S3", 7, 11), ("P1", 12, 12)):
            pin(update(quarantine).where(quarantine.c.sync_id == sync_id).values(first_at=at(first), last_at=at(last)))
        for endpoint, hour in (("launch/engineering", 13), ("launch/sales", 14), ("pricing/sales", 15)):
            pin(update(cursors).where(cursors.c.endpoint == endpoint).values(updated_at=at(hour)))
    return store


@pytest.fixture
def config_dir(tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped configuration, its store overridden from the environment; no tool credential, no operator set."""
    config = tmp_path / "config"
    (config / "departments").mkdir(parents=True)
    shutil.copy(ROOT / "config" / "syncd.yaml", config / "syncd.yaml")
    for path in (ROOT / "config" / "departments").glob("*.yaml"):
        shutil.copy(path, config / "departments" / path.name)
    monkeypatch.setenv("SYNCD_STORE", store.url)
    for name in ("SYNCD_JIRA_TOKEN", "SYNCD_TRELLO_KEY", "SYNCD_TRELLO_TOKEN", "SYNCD_ASANA_TOKEN", "SYNCD_OPERATOR"):
        monkeypatch.delenv(name, raising=False)  # operating the queues must not need them
    monkeypatch.setattr("getpass.getuser", lambda: "login-name")
    return config


def syncd(config_dir: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, [*args, "--config", str(config_dir)], env={"COLUMNS": "250", **(env or {})})


def rows(result: Result) -> list[list[str]]:
    """The body rows of the tables printed, as cells (header and title lines left out)."""
    found = []
    for line in result.stdout.splitlines():
        if line.startswith("│"):
            found.append([cell.strip() for cell in re.split(r"│", line)[1:-1]])
    return found


def header(result: Result) -> list[str]:
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("┃")][:1]
    return [cell.strip() for cell in line.split("┃")[1:-1]]


def decide(config_dir: Path, conflict_id: str, take: str, person: str = "ana@corp.example") -> None:
    """A person's decision through the command; the test fails if it is refused."""
    result = syncd(config_dir, "conflicts", "resolve", conflict_id, "--take", take, "--by", person)
    assert result.exit_code == 0, result.output


def held(store: Store, conflict_id: str) -> HeldConflict:
    with store.transaction() as tx:
        found = tx.conflict(conflict_id)
    assert found is not None
    return found


def failing(store: Store, sync_id: str) -> Quarantined:
    with store.transaction() as tx:
        found = tx.quarantine_entry(sync_id)
    assert found is not None
    return found


class TestConflictsList:
    def test_lists_exactly_the_open_ones(self, config_dir: Path, state: Store) -> None:
        """The two open conflicts, oldest first, one column per department; the closed one is left out."""
        result = syncd(config_dir, "conflicts", "list")
        assert result.exit_code == 0, result.output
        assert header(result) == ["id", "group", "item", "field", "engineering", "sales", "state", "opened (UTC)"]
        assert rows(result) == [
            [C1, "launch", "S1", "status", "done", "doing", "open", "2024-05-01 09:00:00"],
            [C2, "launch", "S2", "assignee", "joe@corp.example", "(empty)", "open", "2024-05-01 10:00:00"],
        ]

    def test_all_includes_closed_ones(self, config_dir: Path, state: Store) -> None:
        """--all adds the closed conflict, its long value shortened to one line and its markup shown as written."""
        result = syncd(config_dir, "conflicts", "list", "--all")
        assert result.exit_code == 0, result.output
        assert header(result)[4:7] == ["sales", "marketing", "engineering"]
        assert rows(result) == [
            [
                C3,
                "pricing",
                "P1",
                "description",
                "Reseller tiers: - bronze - " + "x" * 12 + "…",  # 40 characters, on one line
                "[bold]Tiers[/bold]",
                "",
                "closed",
                "2024-05-01 08:00:00",
            ],
            [C1, "launch", "S1", "status", "doing", "", "done", "open", "2024-05-01 09:00:00"],
            [C2, "launch", "S2", "assignee", "(empty)", "", "joe@corp.example", "open", "2024-05-01 10:00:00"],
        ]

    def test_a_group_filter_and_an_empty_queue(self, config_dir: Path, state: Store) -> None:
        """--group keeps one group; a group with nothing open says so on stderr and exits 0."""
        launch = syncd(config_dir, "conflicts", "list", "--group", "launch")
        assert [row[0] for row in rows(launch)] == [C1, C2]
        pricing = syncd(config_dir, "conflicts", "list", "--group", "pricing")
        assert (pricing.exit_code, pricing.stdout, pricing.stderr) == (0, "", "no open conflicts\n")
        everything = syncd(config_dir, "conflicts", "list", "--group", "pricing", "--all")
        assert [row[0] for row in rows(everything)] == [C3]

    def test_a_decided_conflict_shows_its_choice(self, config_dir: Path, state: Store) -> None:
        """A decision waiting for the next pass stays listed, with the department chosen."""
        decide(config_dir, C1, "sales")
        result = syncd(config_dir, "conflicts", "list")
        assert rows(result)[0][6] == "decided: sales"


class TestConflictsShow:
    def test_shows_the_conflict_in_full(self, config_dir: Path, state: Store) -> None:
        """Base value, each department's value with its ref, and how to decide; a unique prefix is enough."""
        result = syncd(config_dir, "conflicts", "show", "01HXA")
        assert result.exit_code == 0, result.output
        assert result.stdout == (
            f"conflict  {C1}\n"
            "group     launch\n"
            "item      S1\n"
            "field     status\n"
            "state     open\n"
            "opened    2024-05-01 09:00:00 UTC\n"
            "updated   2024-05-01 09:00:00 UTC\n"
            "base      todo\n"
            "values\n"
            "  engineering  ENG-1   done\n"
            "  sales        card-1  doing\n"
            f"decide    syncd conflicts resolve {C1} --take DEPARTMENT\n"
        )

    def test_shows_long_values_whole_and_the_decision(self, config_dir: Path, state: Store) -> None:
        """A multi-line value is printed whole, indented; a closed conflict can still be shown."""
        result = syncd(config_dir, "conflicts", "show", C3)
        assert result.exit_code == 0, result.output
        assert result.stdout.endswith(
            "values\n"
            "  sales      card-9  Reseller tiers:\n"
            "                     - bronze\n"
            "                     - " + "x" * 40 + "\n"
            "  marketing  -       [bold]Tiers[/bold]\n"  # the item is not linked there
        )
        assert "state     closed\n" in result.stdout

    def test_shows_who_decided(self, config_dir: Path, state: Store) -> None:
        decide(config_dir, C2, "sales", "farah@corp.example")
        result = syncd(config_dir, "conflicts", "show", C2)
        assert "  sales        card-2  (empty)\n" in result.stdout
        assert result.stdout.endswith("decided   take sales, by farah@corp.example\n")


class TestConflictsResolve:
    def test_decides_and_audits_once(self, config_dir: Path, state: Store) -> None:
        """The conflict becomes decided with take and resolved_by, and exactly one decision event is written."""
        result = syncd(config_dir, "conflicts", "resolve", "01HXA", "--take", "sales", "--by", "farah@corp.example")
        assert result.exit_code == 0, result.output
        assert result.stdout == (
            f"decided conflict {C1} for farah@corp.example: status of item S1 takes sales's value doing.\n"
            "The next pass of launch writes it to engineering, marketing and closes the conflict.\n"
        )
        decided = held(state, C1)
        assert (decided.state, decided.take, decided.resolved_by) == ("decided", "sales", "farah@corp.example")
        assert held(state, C2).state == "open"
        (recorded,) = events(state)
        event = recorded.event
        assert (event.kind, event.group, event.sync_id, event.field) == ("decision", "launch", "S1", "status")
        assert (event.origin, event.person, event.rule, event.outcome) == (
            "sales",
            "farah@corp.example",
            "manual",
            "decided",
        )
        assert event.message == "applied by the next pass"

    def test_another_member_holding_the_item_may_be_taken(self, config_dir: Path, state: Store) -> None:
        """Marketing did not change the status of S1 but holds it: its current value may win."""
        result = syncd(config_dir, "conflicts", "resolve", C1, "--take", "marketing", "--by", "farah@corp.example")
        assert result.exit_code == 0, result.output
        assert "takes marketing's current value.\n" in result.stdout
        assert "writes it to engineering, sales and" in result.stdout
        assert held(state, C1).take == "marketing"

    def test_the_person_defaults_to_syncd_operator_then_the_login(self, config_dir: Path, state: Store) -> None:
        """SYNCD_OPERATOR names the person; without it, the login name does."""
        result = syncd(config_dir, "conflicts", "resolve", C1, "--take", "sales", env={"SYNCD_OPERATOR": "ops@corp"})
        assert result.exit_code == 0, result.output
        assert held(state, C1).resolved_by == "ops@corp"
        assert syncd(config_dir, "conflicts", "resolve", C2, "--take", "engineering").exit_code == 0
        assert held(state, C2).resolved_by == "login-name"
        assert [each.event.person for each in events(state)] == ["ops@corp", "login-name"]

    def test_a_second_decision_replaces_the_first(self, config_dir: Path, state: Store) -> None:
        """Until the next pass applies it, a decision can be changed; both are in the audit log."""
        decide(config_dir, C1, "sales", "ana")
        result = syncd(config_dir, "conflicts", "resolve", C1, "--take", "engineering", "--by", "joe")
        assert result.exit_code == 0, result.output
        assert result.stdout.endswith("This replaces the earlier decision: take sales, by ana.\n")
        assert (held(state, C1).take, held(state, C1).resolved_by) == ("engineering", "joe")
        assert [each.event.origin for each in events(state)] == ["sales", "engineering"]

    def test_an_invalid_department_exits_2_naming_the_choices(self, config_dir: Path, state: Store) -> None:
        """A department that does not hold the item is refused; nothing is decided or audited."""
        result = syncd(config_dir, "conflicts", "resolve", C1, "--take", "finance", "--by", "ana")
        assert result.exit_code == 2
        assert result.stderr == (
            "error: 'finance' does not hold item S1 in group launch: --take one of engineering, sales, marketing\n"
        )
        assert held(state, C1).state == "open"
        assert events(state) == []

    def test_an_unknown_id_exits_2(self, config_dir: Path, state: Store) -> None:
        result = syncd(config_dir, "conflicts", "resolve", "01HXZ", "--take", "sales")
        assert result.exit_code == 2
        assert result.stderr == "error: no conflict '01HXZ': `syncd conflicts list --all` shows every conflict id\n"
        assert events(state) == []

    def test_an_ambiguous_id_exits_2_listing_the_matches(self, config_dir: Path, state: Store) -> None:
        result = syncd(config_dir, "conflicts", "show", "01HX")
        assert result.exit_code == 2
        assert result.stderr == (
            f"error: conflict id '01HX' is ambiguous: 3 conflicts start with it ({C1}, {C2}, {C3}); type more\n"
        )

    def test_a_wildcard_character_matches_nothing(self, config_dir: Path, state: Store) -> None:
        """An underscore is a character of the id, not a LIKE wildcard: it names no conflict."""
        result = syncd(config_dir, "conflicts", "show", "01HXA_")
        assert result.exit_code == 2
        assert "no conflict '01HXA_'" in result.stderr

    def test_a_closed_conflict_exits_2(self, config_dir: Path, state: Store) -> None:
        result = syncd(config_dir, "conflicts", "resolve", C3, "--take", "sales", "--by", "ana")
        assert result.exit_code == 2
        assert result.stderr == (
            f"error: conflict {C3} is closed: description of item P1 agrees everywhere again, nothing is left to "
            "decide\n"
        )
        assert held(state, C3).take is None
        assert events(state) == []

    def test_without_a_login_name_the_person_must_be_given(
        self, config_dir: Path, state: Store, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A decision is never recorded for nobody."""

        def no_login() -> str:
            raise OSError("no such user")

        monkeypatch.setattr("getpass.getuser", no_login)
        result = syncd(config_dir, "conflicts", "resolve", C1, "--take", "sales")
        assert result.exit_code == 2
        assert result.stderr == "error: cannot tell who you are: pass --by PERSON or set SYNCD_OPERATOR\n"
        assert held(state, C1).state == "open"


class TestQuarantine:
    def test_lists_held_and_retrying_items(self, config_dir: Path, state: Store) -> None:
        """Oldest failure first, with strikes, state, the last error and both failure times."""
        result = syncd(config_dir, "quarantine", "list")
        assert result.exit_code == 0, result.output
        assert rows(result) == [
            [
                "S3",
                "launch",
                "3",
                "held",
                "ENG-3: 400 priority 'Urgent' is not allowed",
                "2024-05-01 07:00:00",
                "2024-05-01 11:00:00",
            ],
            [
                "P1",
                "pricing",
                "1",
                "retrying",
                "card-9: 429 rate limited",
                "2024-05-01 12:00:00",
                "2024-05-01 12:00:00",
            ],
        ]
        pricing = syncd(config_dir, "quarantine", "list", "--group", "pricing")
        assert [row[0] for row in rows(pricing)] == ["P1"]

    def test_an_empty_quarantine(self, config_dir: Path, store: Store) -> None:
        result = syncd(config_dir, "quarantine", "list")
        assert (result.exit_code, result.stdout, result.stderr) == (0, "", "nothing is quarantined\n")

    def test_retry_releases_and_audits(self, config_dir: Path, state: Store) -> None:
        """After retry the item is no longer held and its strikes are reset; one release event names the person."""
        result = syncd(config_dir, "quarantine", "retry", "S3", env={"SYNCD_OPERATOR": "ops@corp"})
        assert result.exit_code == 0, result.output
        assert result.stdout == (
            "released S3 for ops@corp (3 strikes, last error: ENG-3: 400 priority 'Urgent' is not allowed); "
            "the next pass of launch tries it again.\n"
        )
        entry = failing(state, "S3")
        assert (entry.held, entry.strikes) == (False, 0)
        (recorded,) = events(state)
        event = recorded.event
        assert (event.kind, event.group, event.sync_id, event.person) == ("release", "launch", "S3", "ops@corp")
        assert event.message == "retried on the next pass"
        assert event.old == {"strikes": 3, "held": True, "error": "ENG-3: 400 priority 'Urgent' is not allowed"}

    def test_retrying_an_item_not_quarantined_exits_2(self, config_dir: Path, state: Store) -> None:
        result = syncd(config_dir, "quarantine", "retry", "S1", "--by", "ana")
        assert result.exit_code == 2
        assert (
            result.stderr == "error: item 'S1' is not quarantined: `syncd quarantine list` shows the items that are\n"
        )
        assert events(state) == []


class TestLeaseHeld:
    HOLDER = "replica-7:4242:abcdef"

    def test_retry_waits_then_names_the_holder(self, config_dir: Path, state: Store) -> None:
        """While another process holds the group, `quarantine retry` waits --wait seconds, then exits 2 naming it."""
        lease = state.acquire("launch", self.HOLDER, 60)
        assert lease is not None
        result = syncd(config_dir, "quarantine", "retry", "S3", "--by", "ana", "--wait", "0.3")
        assert result.exit_code == 2
        assert re.fullmatch(
            r"error: group launch is held by replica-7 pid 4242 since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC; "
            r"waited 0.3 s: run again once it is done \(a stopped holder's lease expires after lease_ttl_s\), "
            r"or pass a longer --wait\n",
            result.stderr,
        ), result.stderr
        assert failing(state, "S3").held
        assert events(state) == []

    def test_resolve_waits_then_names_the_holder(self, config_dir: Path, state: Store) -> None:
        """`conflicts resolve` on a group held elsewhere decides nothing and exits 2 with the one-line message."""
        assert state.acquire("launch", self.HOLDER, 60) is not None
        result = syncd(config_dir, "conflicts", "resolve", C1, "--take", "sales", "--by", "ana", "--wait", "0")
        assert result.exit_code == 2
        assert result.stderr.startswith("error: group launch is held by replica-7 pid 4242 since ")
        assert result.stderr.count("\n") == 1
        assert held(state, C1).state == "open"

    def test_a_decision_is_recorded_at_once_while_a_running_daemon_holds_the_group(
        self, config_dir: Path, state: Store
    ) -> None:
        """A daemon holds its groups for as long as it runs: a lead's decision is recorded without waiting for it,
        for the daemon's next pass to apply, and the daemon keeps its lease.
        """
        state.heartbeat(self.HOLDER, "replica-7", 4242, 60)  # a live `syncd run` replica...
        lease = state.acquire("launch", self.HOLDER, 60)  # ...holding the group
        assert lease is not None
        result = syncd(config_dir, "conflicts", "resolve", C1, "--take", "sales", "--by", "ana", "--wait", "0")
        assert result.exit_code == 0, result.output
        assert (held(state, C1).state, held(state, C1).take) == ("decided", "sales")
        result = syncd(config_dir, "quarantine", "retry", "S3", "--by", "ana", "--wait", "0")
        assert result.exit_code == 0, result.output
        assert not failing(state, "S3").held
        now, rows = state.holders()
        assert [(row.holder, row.token, row.live(now)) for row in rows] == [(self.HOLDER, lease.token, True)]

    def test_a_released_lease_lets_the_command_through_and_is_released_after(
        self, config_dir: Path, state: Store
    ) -> None:
        """Once the holder lets go the decision is made, and the command leaves the group free behind it."""
        lease = state.acquire("launch", self.HOLDER, 60)
        assert lease is not None
        state.release(lease)
        result = syncd(config_dir, "quarantine", "retry", "S3", "--by", "ana", "--wait", "0")
        assert result.exit_code == 0, result.output
        now, rows = state.holders()
        assert [(row.group, row.token, row.live(now)) for row in rows] == [("launch", 2, False)]

    def test_read_only_commands_need_no_lease(self, config_dir: Path, state: Store) -> None:
        """Listing and showing work while another process holds the group."""
        assert state.acquire("launch", self.HOLDER, 60) is not None
        assert syncd(config_dir, "quarantine", "list").exit_code == 0
        assert syncd(config_dir, "conflicts", "show", C1).exit_code == 0


class TestNewerSchema:
    def test_every_command_refuses_a_newer_schema_in_one_line(self, config_dir: Path, store: Store) -> None:
        """A store migrated by a newer syncd is refused with exit 2 and one line, before anything is read."""
        with store.transaction() as tx:
            tx.connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))
        for command in (("status",), ("quarantine", "list"), ("conflicts", "list")):
            result = syncd(config_dir, *command)
            assert result.exit_code == 2, command
            assert result.stderr == (
                "error: the store's schema is at revision 0099, newer than this syncd knows "
                f"({SCHEMA_HEAD}): upgrade syncd\n"
            )


class TestStatus:
    def test_json_counts_and_exit_1_while_something_waits(self, config_dir: Path, state: Store) -> None:
        """Per group: items, links and last pass per endpoint, held and retrying items, open and decided conflicts."""
        result = syncd(config_dir, "status", "--format", "json")
        assert result.exit_code == 1
        assert json.loads(result.stdout) == {
            "ok": False,
            "quarantined": 1,
            "open_conflicts": 2,
            "failing_endpoints": 0,
            "refused_values": 1,
            "guards": [],
            "notifications": [],
            "audit_events": 0,
            "groups": {
                "launch": {
                    "items": 3,
                    "endpoints": {
                        "engineering": {"links": 3, "last_pass": "2024-05-01T13:00:00+00:00", "failing": None},
                        "marketing": {"links": 1, "last_pass": None, "failing": None},
                        "sales": {"links": 2, "last_pass": "2024-05-01T14:00:00+00:00", "failing": None},
                    },
                    "quarantined": 1,
                    "retrying": 0,
                    "conflicts": {"open": 2, "decided": 0},
                    "refused": [
                        {
                            "item": "S1",
                            "endpoint": "marketing",
                            "field": "assignees",
                            "value": ["nobody@corp.example"],
                            "since": "2024-05-01T16:00:00+00:00",
                            "message": ASANA_SAYS,
                        }
                    ],
                    "owner": None,
                },
                "pricing": {
                    "items": 1,
                    "endpoints": {"sales": {"links": 1, "last_pass": "2024-05-01T15:00:00+00:00", "failing": None}},
                    "quarantined": 0,
                    "retrying": 1,
                    "conflicts": {"open": 0, "decided": 0},
                    "refused": [],
                    "owner": None,
                },
            },
            "replicas": [],
        }
        assert result.stderr == (
            "attention: 1 item quarantined (syncd quarantine list), 2 conflicts open (syncd conflicts list)\n"
        )

    def test_a_quarantined_item_alone_exits_1(self, config_dir: Path, state: Store) -> None:
        """With every conflict decided, the one held item still needs a person."""
        decide(config_dir, C1, "sales")
        decide(config_dir, C2, "sales")
        result = syncd(config_dir, "status", "--format", "json")
        assert result.exit_code == 1
        assert (json.loads(result.stdout)["ok"], json.loads(result.stdout)["open_conflicts"]) == (False, 0)
        assert result.stderr == (
            "attention: 1 item quarantined (syncd quarantine list), 0 conflicts open (syncd conflicts list)\n"
        )

    def test_exit_0_once_all_is_clear(self, config_dir: Path, state: Store) -> None:
        """Decided conflicts and retrying items need no person: after the decisions and the retry, status is 0."""
        decide(config_dir, C1, "sales")
        decide(config_dir, C2, "sales")
        assert syncd(config_dir, "quarantine", "retry", "S3", "--by", "ana").exit_code == 0
        result = syncd(config_dir, "status", "--format", "json")
        assert (result.exit_code, result.stderr) == (0, "")
        summary = json.loads(result.stdout)
        totals = {key: summary[key] for key in ("ok", "quarantined", "open_conflicts", "audit_events")}
        assert totals == {"ok": True, "quarantined": 0, "open_conflicts": 0, "audit_events": 3}
        assert summary["groups"]["launch"]["conflicts"] == {"open": 0, "decided": 2}
        assert summary["groups"]["launch"]["retrying"] == 1  # released S3, tried again on the next pass

    def test_an_empty_store_is_clear(self, config_dir: Path, store: Store) -> None:
        result = syncd(config_dir, "status", "--format", "json")
        assert result.exit_code == 0
        assert json.loads(result.stdout) == {
            "ok": True,
            "quarantined": 0,
            "open_conflicts": 0,
            "failing_endpoints": 0,
            "refused_values": 0,
            "guards": [],
            "notifications": [],
            "audit_events": 0,
            "replicas": [],
            "groups": {},
        }

    def test_the_tables(self, config_dir: Path, state: Store) -> None:
        """The same counts as tables for a person, then the audit chain length."""
        result = syncd(config_dir, "status")
        assert result.exit_code == 1
        assert rows(result) == [
            ["launch", "3", "1", "0", "2", "0", "-", ""],
            ["pricing", "1", "0", "1", "0", "0", "-", ""],
            ["launch", "engineering", "3", "2024-05-01 13:00:00", ""],
            ["launch", "marketing", "1", "never", ""],
            ["launch", "sales", "2", "2024-05-01 14:00:00", ""],
            ["pricing", "sales", "1", "2024-05-01 15:00:00", ""],
            ["launch", "S1", "marketing", "assignees", '["nobody@corp.example"]', "2024-05-01 16:00:00", ASANA_SAYS],
        ]
        assert result.stdout.endswith("audit log: 0 events\n")

    def test_an_endpoint_that_cannot_be_read_is_shown_with_its_reason_and_exits_1(
        self, config_dir: Path, state: Store
    ) -> None:
        """A member a pass left out because its tool failed: named with since when and why, and exit 1."""
        decide(config_dir, C1, "sales")
        decide(config_dir, C2, "sales")
        assert syncd(config_dir, "quarantine", "retry", "S3", "--by", "ana").exit_code == 0
        with state.transaction() as tx:
            tx.endpoint_failing("launch/engineering", "AuthFailed: jira: the credential was refused")
        result = syncd(config_dir, "status", "--format", "json")
        assert result.exit_code == 1
        summary = json.loads(result.stdout)
        assert summary["failing_endpoints"] == 1
        failing = summary["groups"]["launch"]["endpoints"]["engineering"]["failing"]
        assert failing["error"] == "AuthFailed: jira: the credential was refused"
        assert result.stderr.endswith(", 1 endpoint failing (see the endpoints table)\n")
        with state.transaction() as tx:
            tx.endpoint_answers("launch/engineering")
        assert syncd(config_dir, "status").exit_code == 0

    def test_a_config_error_exits_2(self, config_dir: Path) -> None:
        (config_dir / "syncd.yaml").write_text("store: sqlite:///var/syncd.db\nstroe: typo\n")
        result = syncd(config_dir, "status")
        assert result.exit_code == 2
        assert "stroe" in result.stderr
