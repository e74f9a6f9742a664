"""The mass-change guard (issue 17): many archives, deletions or unlinks toward one endpoint in one pass are held
for a person; the rest of the group keeps syncing; ``syncd status`` exits 1 naming the guard; ``syncd guard``
confirms (the next pass applies exactly the held steps) or rejects (the mirrors stay, nothing flaps).

Whole passes over the three sandbox tools with the real connectors and the shipped mapping; the CLI in-process on
the same store. The seeded organisation mirrors 29 items.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from connectors.base import Connector
from sandbox.org import Sandbox
from syncd.audit import events
from syncd.cli import app
from syncd.engine import Pass, PassReport, endpoint_key
from syncd.guard import Threshold
from syncd.guarding import restorable
from syncd.mapping import Group
from syncd.store import Store
from syncd.store import guards as stored
from tests.syncd_env import ROOT, run

ELI = "eli@corp.example"
GUS = "gus@corp.example"


def mirrored(group: Group, connectors: dict[str, Connector], store: Store) -> list[dict[str, str]]:
    """Mirror the organisation and let it settle; every item's refs (member -> ref)."""
    run(group, connectors, store)
    assert run(group, connectors, store) == 0
    with store.transaction() as tx:
        return [
            {key.split("/", 1)[1]: each.ref for key, each in tx.links(link.sync_id).items()}
            for link in tx.endpoint_links(endpoint_key(group.name, "sales"))
        ]


def archived(world: World, member: str, refs: list[dict[str, str]]) -> list[bool]:
    """Whether each item's mirror at ``member`` is archived (a Jira issue flagged, an Asana task out of the project)."""
    found = {record.ref: record for record in world.connectors[member].fetch([each[member] for each in refs])}
    return [found[each[member]].archived if each[member] in found else True for each in refs]


def statuses(world: World, member: str, refs: list[dict[str, str]]) -> list[object]:
    """Each item's status as ``member``'s mirror holds it (canonical; None where it holds none)."""
    codec = world.group.codecs[member]
    found = {record.ref: record for record in world.connectors[member].fetch([each[member] for each in refs])}
    return [codec.decode(found[each[member]])[0].values.get("status") for each in refs]


def not_done(world: World) -> list[dict[str, str]]:
    """The items whose Jira issue is not done: an archive moves them (and so shows in Jira's change feed)."""
    done = statuses(world, "engineering", world.items)
    return [each for each, status in zip(world.items, done, strict=True) if status != "done"]


def pending(store: Store) -> dict[str, stored.Guard]:
    """The pending guards by the endpoint they hold."""
    with store.transaction() as tx:
        return {guard.endpoint: guard for guard in stored.active(tx) if guard.state == "pending"}


@dataclass(frozen=True)
class World:
    """The sandbox, the group mirrored over it, and the environment the CLI runs in on the same store."""

    sandbox: Sandbox
    group: Group
    connectors: dict[str, Connector]
    store: Store
    items: list[dict[str, str]]
    """Every item's refs (member -> ref): the 29 seeded items, mirrored."""
    environment: dict[str, str]

    def run(self, **kwargs: Any) -> PassReport:
        """One pass over the group."""
        return Pass(self.group, self.connectors, self.store).run(**kwargs)


@pytest.fixture
def world(
    sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store, environment: dict[str, str]
) -> World:
    found = mirrored(group, connectors, store)
    assert len(found) == 29
    return World(sandbox, group, connectors, store, found, environment)


def archive_24_cards(world: World) -> list[dict[str, str]]:
    """Eli archives 24 of the 29 cards in Trello; the items he archived."""
    eli = world.sandbox.trello.act_as(ELI)
    for each in world.items[:24]:
        eli.archive(each["sales"])
    return world.items[:24]


def cli(world: World, *args: str) -> tuple[int, str]:
    """Run ``syncd ARGS --config DIR`` in-process on the test's store; its exit code and everything it printed."""
    environment = world.environment
    result = CliRunner().invoke(app, [*args, "--config", environment["CONFIG_DIR"]], env=environment)
    return result.exit_code, result.output


class TestArchiveInTrello:
    def test_24_of_29_archives_are_held_and_the_rest_keeps_syncing(self, world: World) -> None:
        """Nothing is archived in Jira or Asana, one guard per affected endpoint, a rename in Asana goes through,
        the pass is not ok and `syncd status` exits 1 naming both guards with the command to decide."""
        gone = archive_24_cards(world)
        kept = world.items[24]
        renamed = "Renamed while Trello was being archived"
        world.sandbox.asana.act_as(GUS).update_task(kept["marketing"], name=renamed)

        report = world.run()

        assert len(report.held) == 24
        assert not report.ok
        assert archived(world, "engineering", gone) == [False] * 24
        assert archived(world, "marketing", gone) == [False] * 24
        card = world.connectors["sales"].fetch([kept["sales"]])[0]
        assert world.group.codecs["sales"].decode(card)[0].values["title"] == renamed
        guards = pending(world.store)
        assert sorted(guards) == ["engineering", "marketing"]
        assert all(len(guard.items) == 24 and guard.sources == ["sales"] for guard in guards.values())
        held = [e.event for e in events(world.store) if e.event.kind == "guard"]
        assert sorted(e.endpoint or "" for e in held) == ["engineering", "marketing"]
        assert all(e.outcome == "held" and "syncd guard confirm" in (e.message or "") for e in held)

        code, said = cli(world, "status")
        assert code == 1
        assert all(f"syncd guard show {guard.id}" in said for guard in guards.values())
        code, said = cli(world, "status", "--format", "json")
        assert code == 1
        summary = json.loads(next(line for line in said.splitlines() if line.startswith("{")))
        assert {each["id"] for each in summary["guards"]} == {g.id for g in guards.values()}

    def test_a_later_pass_holds_the_same_items_in_the_same_guard(self, world: World) -> None:
        """The held items are planned again and held again: no write, no second guard, no new audit event."""
        gone = archive_24_cards(world)
        world.run()
        first = pending(world.store)
        report = world.run()
        assert report.writes == 0
        assert len(report.held) == 24
        assert {k: g.id for k, g in pending(world.store).items()} == {k: g.id for k, g in first.items()}
        assert len([e for e in events(world.store) if e.event.kind == "guard"]) == 2
        assert archived(world, "engineering", gone) == [False] * 24

    def test_confirm_applies_exactly_the_held_archives_on_the_next_pass(self, world: World) -> None:
        """`guard confirm ID --by` for both endpoints: audited with the person; the next pass archives the 24
        mirrors and no other; the guards settle, `syncd status` exits 0 and the next pass is quiet."""
        gone = archive_24_cards(world)
        world.run()
        for guard in pending(world.store).values():
            code, said = cli(world, "guard", "confirm", guard.id[:12], "--by", "ops@corp.example")
            assert code == 0, said
        decisions = [e.event for e in events(world.store) if e.event.kind == "guard" and e.event.person]
        assert {(e.outcome, e.person) for e in decisions} == {("confirmed", "ops@corp.example")}

        assert world.run().ok
        assert archived(world, "engineering", gone) == [True] * 24
        assert archived(world, "marketing", gone) == [True] * 24
        assert archived(world, "engineering", world.items[24:]) == [False] * 5
        with world.store.transaction() as tx:
            assert stored.active(tx) == []
        assert cli(world, "status")[0] == 0
        assert world.run().writes == 0

    def test_a_guard_confirmed_while_another_holds_its_items_waits_for_it(self, world: World) -> None:
        """Jira's guard confirmed, Asana's still pending: a pass applies nothing and Jira's guard stays open (it
        used to settle with nothing applied, and its archives were held again by a new guard); once Asana's is
        confirmed too, the next pass archives the 24 mirrors in both tools and both guards settle."""
        gone = archive_24_cards(world)
        world.run()
        guards = pending(world.store)
        assert cli(world, "guard", "confirm", guards["engineering"].id, "--by", "ops@corp.example")[0] == 0
        assert len(world.run().held) == 24
        with world.store.transaction() as tx:
            assert {guard.id: guard.open for guard in stored.active(tx)} == {
                guard.id: guard.open for guard in guards.values()
            }
        assert archived(world, "engineering", gone) == [False] * 24
        assert cli(world, "guard", "confirm", guards["marketing"].id, "--by", "ops@corp.example")[0] == 0
        assert world.run().ok
        assert archived(world, "engineering", gone) == [True] * 24
        assert archived(world, "marketing", gone) == [True] * 24
        with world.store.transaction() as tx:
            assert stored.active(tx) == []

    def test_reject_keeps_the_mirrors_reopens_the_cards_and_nothing_flaps(self, world: World) -> None:
        """`guard reject`: audited as `guard` events `rejected` by the person; the Jira and Asana mirrors stay
        active, Eli's 24 cards are reopened in their lists (audited as restores naming who rejected), and two more
        passes write nothing."""
        gone = archive_24_cards(world)
        lists = statuses(world, "sales", gone)
        world.run()
        guards = pending(world.store)
        for guard in guards.values():
            assert cli(world, "guard", "reject", guard.id, "--by", "ops@corp.example")[0] == 0
        decisions = [e.event for e in events(world.store) if e.event.kind == "guard" and e.event.person]
        assert sorted((e.endpoint or "", e.outcome, e.person) for e in decisions) == [
            ("engineering", "rejected", "ops@corp.example"),
            ("marketing", "rejected", "ops@corp.example"),
        ]
        assert world.run().ok
        for _ in range(2):
            report = world.run()
            assert report.ok
            assert report.writes == 0
        assert archived(world, "engineering", gone) == [False] * 24
        assert archived(world, "marketing", gone) == [False] * 24
        assert archived(world, "sales", gone) == [False] * 24  # the archive was the mistake: undone where it was made
        assert statuses(world, "sales", gone) == lists
        restores = [e.event for e in events(world.store) if e.event.kind == "restore"]
        assert len(restores) == 24
        assert {(e.endpoint, e.person) for e in restores} == {("sales", "ops@corp.example")}
        code, said = cli(world, "guard", "list", "--all", "--format", "json")
        assert code == 0
        assert {(g["state"], g["decided_by"]) for g in json.loads(said)} == {("rejected", "ops@corp.example")}
        assert cli(world, "status")[0] == 0


class TestPlan:
    def test_the_dry_run_shows_what_a_guard_would_hold_and_stores_nothing(self, world: World) -> None:
        """`syncd plan` after 24 archives in Trello: each archive toward Jira and Asana is marked as held by a new
        guard, with why, in the table and in JSON; no guard is opened and nothing is written."""
        gone = archive_24_cards(world)
        code, said = cli(world, "plan")
        assert code == 0, said
        lines = [line for line in said.splitlines() if " archive " in line]
        assert len(lines) == 48
        assert all("[would be held by a new guard: 24 archives at " in line for line in lines)
        guards = [line for line in said.splitlines() if line.startswith(f"{world.group.name} guard new ")]
        assert len(guards) == 2
        assert pending(world.store) == {}
        assert archived(world, "engineering", gone) == [False] * 24
        code, said = cli(world, "plan", "--format", "json")
        assert code == 0, said
        (group,) = json.loads(said)["groups"]
        assert [(g["state"], g["endpoint"], len(g["items"])) for g in group["guards"]] == [
            ("new", "engineering", 24),
            ("new", "marketing", 24),
        ]
        held = [s for item in group["items"] for s in item["steps"] if s["held"] is not None]
        assert len(held) == 48
        assert {(s["kind"], s["held"]["state"]) for s in held} == {("archive", "new")}

    def test_the_dry_run_names_the_pending_guard_that_holds_a_step(self, world: World) -> None:
        """Once a pass opened the guards, `syncd plan` names the pending guard holding each archive."""
        archive_24_cards(world)
        world.run()
        guards = pending(world.store)
        code, said = cli(world, "plan", "--format", "json")
        assert code == 0, said
        (group,) = json.loads(said)["groups"]
        assert {(g["id"], g["state"], g["endpoint"]) for g in group["guards"]} == {
            (guard.id, "pending", endpoint) for endpoint, guard in guards.items()
        }
        code, said = cli(world, "plan")
        lines = [line for line in said.splitlines() if " archive " in line]
        assert len(lines) == 48
        assert all(f"[held by pending guard {guards[line.split()[3]].id}" in line for line in lines)


class TestRejectedArchiveElsewhere:
    def test_tasks_taken_out_of_the_asana_project_are_put_back_in_their_sections(self, world: World) -> None:
        """Gus takes 24 tasks out of the Asana project (Asana's archive here): held toward Jira and Trello; rejected,
        the tasks are added back to the project, each in the section it was in, and the group is quiet."""
        gone = world.items[:24]
        sections = statuses(world, "marketing", gone)
        gus = world.sandbox.asana.act_as(GUS)
        for each in gone:
            gus.remove_from_project(each["marketing"])
        assert len(world.run().held) == 24
        guards = pending(world.store)
        assert sorted(guards) == ["engineering", "sales"]
        for guard in guards.values():
            code, said = cli(world, "guard", "reject", guard.id, "--by", "ops@corp.example")
            assert code == 0, said
            assert "cannot restore" not in said
        assert world.run().ok
        assert archived(world, "marketing", gone) == [False] * 24
        assert statuses(world, "marketing", gone) == sections
        assert archived(world, "engineering", gone) == [False] * 24
        assert archived(world, "sales", gone) == [False] * 24
        assert world.run().writes == 0

    def test_jira_issues_archived_go_back_to_their_status(self, world: World) -> None:
        """20 Jira issues archived as Jira archives (moved to Done and flagged): held, Done written nowhere; rejected,
        the flag is cleared and each issue moves back to its status, nothing is archived or marked done in Trello or
        Asana, and the group is quiet."""
        gone = not_done(world)[:20]
        before = {member: statuses(world, member, gone) for member in ("engineering", "sales", "marketing")}
        for each in gone:
            world.connectors["engineering"].archive(each["engineering"])  # moved to Done, flagged archived
        assert len(world.run().held) == 20
        for guard in pending(world.store).values():
            assert cli(world, "guard", "reject", guard.id, "--by", "ops@corp.example")[0] == 0
        assert world.run().ok
        assert {member: statuses(world, member, gone) for member in before} == before
        assert archived(world, "engineering", gone) == [False] * 20
        assert archived(world, "sales", gone) == [False] * 20
        assert archived(world, "marketing", gone) == [False] * 20
        assert world.run().writes == 0

    def test_where_the_tool_cannot_restore_the_reject_says_so_and_archives_nothing(self, world: World) -> None:
        """In a group that maps no status for Jira, Jira cannot restore: `guard reject` says so in one line, the
        issues stay archived in Jira and their mirrors stay active (the held archives are never applied)."""
        gone = not_done(world)[:20]
        no_jira_status = without_jira_status(world.group)
        for each in gone:
            world.connectors["engineering"].archive(each["engineering"])
        assert len(Pass(no_jira_status, world.connectors, world.store).run().held) == 20
        for guard in pending(world.store).values():
            code, said = cli(world, "guard", "reject", guard.id, "--by", "ops@corp.example")
            assert code == 0
            assert "cannot restore 20 items archived at engineering" in said
        assert Pass(no_jira_status, world.connectors, world.store).run().ok
        assert archived(world, "engineering", gone) == [True] * 20
        assert archived(world, "sales", gone) == [False] * 20
        assert archived(world, "marketing", gone) == [False] * 20
        assert Pass(no_jira_status, world.connectors, world.store).run().writes == 0


def without_jira_status(group: Group) -> Group:
    """The group as if its mapping held status for Trello and Asana only (``status: {members: [sales, marketing]}``)."""
    fields = dict(group.policy.fields)
    fields["status"] = replace(fields["status"], holders=frozenset({"sales", "marketing"}))
    return replace(group, policy=replace(group.policy, fields=fields))


def test_jira_restores_only_where_the_group_maps_its_status(group: Group) -> None:
    """Restoring a Jira issue moves it back to its agreed status: a group whose mapping holds status for Jira can;
    Trello and Asana always can (reopen the card, add the task back to the project)."""
    assert restorable(group) == {"engineering", "sales", "marketing"}
    assert restorable(without_jira_status(group)) == {"sales", "marketing"}


class TestDeletions:
    def test_rejected_recreates_are_unlinked_for_good(self, world: World) -> None:
        """Gus deletes 12 tasks that were renamed in Trello meanwhile: the 12 recreates in Asana are held; rejected,
        the items are unlinked there (audited, naming who rejected) and later changes never recreate them, nor
        does the window count those unlinks as a mass change toward Asana."""
        deleted = world.items[:12]
        eli, gus = world.sandbox.trello.act_as(ELI), world.sandbox.asana.act_as(GUS)
        for number, each in enumerate(deleted):
            eli.update_card(each["sales"], name=f"Renamed before the deletion {number}")
            gus.delete(each["marketing"])
        report = world.run()
        assert len(report.held) == 12
        guard = pending(world.store)["marketing"]
        assert {detail["what"] for detail in guard.items.values()} == {"recreate"}
        assert cli(world, "guard", "reject", guard.id, "--by", "ops@corp.example")[0] == 0
        assert world.run().ok
        unlinks = [e.event for e in events(world.store) if e.event.kind == "unlink"]
        assert len(unlinks) == 12
        assert {(e.endpoint, e.person) for e in unlinks} == {("marketing", "ops@corp.example")}
        for number, each in enumerate(deleted):
            eli.update_card(each["sales"], name=f"Renamed after the rejection {number}")
        world.sandbox.trello.act_as(ELI).archive(world.items[20]["sales"])  # one archive: no guard from the window
        report = world.run()
        assert report.ok
        assert not report.held
        with world.store.transaction() as tx:
            assert len(tx.endpoint_links(endpoint_key(world.group.name, "marketing"))) == 29 - 12
        with world.sandbox.asana.lock:
            names = {task.name for task in world.sandbox.asana.state.tasks.values()}
        assert not [name for name in names if name.startswith("Renamed after the rejection")]
        assert world.run().writes == 0

    def test_24_deleted_asana_tasks_are_held_and_a_rejection_restores_them(self, world: World) -> None:
        """Gus deletes 24 tasks: nothing is archived in Jira or Trello; rejected, the tasks are made again in Asana
        from the agreed values, and the group is quiet after."""
        gus = world.sandbox.asana.act_as(GUS)
        deleted = world.items[:24]
        for each in deleted:
            gus.delete(each["marketing"])
        report = world.run()
        assert len(report.held) == 24
        assert archived(world, "engineering", deleted) == [False] * 24
        assert archived(world, "sales", deleted) == [False] * 24
        guards = pending(world.store)
        assert sorted(guards) == ["engineering", "sales"]
        code, said = cli(world, "guard", "show", guards["sales"].id)
        assert code == 0
        assert said.count(" archive sales ") == 24
        for guard in guards.values():
            assert cli(world, "guard", "reject", guard.id, "--by", "ops@corp.example")[0] == 0
        assert world.run().ok
        with world.store.transaction() as tx:
            assert len(tx.endpoint_links(endpoint_key(world.group.name, "marketing"))) == 29
        assert archived(world, "engineering", deleted) == [False] * 24
        assert world.run().writes == 0


class TestBelowThreshold:
    def test_a_single_archive_flows_through_as_before(self, world: World) -> None:
        """One card archived: its mirrors are archived in the same pass, no guard."""
        world.sandbox.trello.act_as(ELI).archive(world.items[0]["sales"])
        report = world.run()
        assert report.ok
        assert not report.held
        assert archived(world, "engineering", world.items[:1]) == [True]
        assert pending(world.store) == {}

    def test_a_department_threshold_overrides_the_default(self, world: World) -> None:
        """With max_items 2 and max_share 5 % for Jira, three archives are held there and go through to Asana."""
        for each in world.items[:3]:
            world.sandbox.trello.act_as(ELI).archive(each["sales"])
        thresholds = {"engineering": Threshold(max_items=2, max_share=0.05)}
        report = Pass(world.group, world.connectors, world.store, mass_change=thresholds).run()
        assert len(report.held) == 3
        assert sorted(pending(world.store)) == ["engineering"]
        assert archived(world, "engineering", world.items[:3]) == [False] * 3

    def test_the_department_files_threshold_decides_what_syncd_once_holds(self, world: World) -> None:
        """syncd.yaml lets 20 archives through; engineering.yaml holds more than 2 (and 5 %): `syncd once` after
        three archives in Trello opens a guard for Jira (its department's threshold) and none for Asana (the
        instance's), exiting 1; the three items wait whole, as a held item does."""
        config = Path(world.environment["CONFIG_DIR"])
        (config / "syncd.yaml").write_text("mass_change: {max_items: 20, max_share: 0.9}\n")
        engineering = config / "departments" / "engineering.yaml"
        engineering.write_text(engineering.read_text() + "\nmass_change: {max_items: 2, max_share: 0.05}\n")
        for each in world.items[:3]:
            world.sandbox.trello.act_as(ELI).archive(each["sales"])
        code, said = cli(world, "once", "--mappings", str(ROOT / "mappings"))
        assert code == 1, said
        guards = pending(world.store)
        assert sorted(guards) == ["engineering"]
        assert "more than 2 and 5%" in guards["engineering"].reason
        assert archived(world, "engineering", world.items[:3]) == [False] * 3


class TestWebhooks:
    def test_a_webhook_hinted_pass_counts_too(self, world: World) -> None:
        """The 24 archives named by webhook hints, in one targeted pass: held as a full pass's would be."""
        gone = archive_24_cards(world)
        report = world.run(hints={"sales": [each["sales"] for each in gone]})
        assert len(report.held) == 24
        assert sorted(pending(world.store)) == ["engineering", "marketing"]
        assert archived(world, "marketing", gone) == [False] * 24

    def test_archives_arriving_one_webhook_at_a_time_add_up_to_a_guard(self, world: World) -> None:
        """Eli archives cards one by one, each its own webhook and pass: the first ten flow through (within the
        threshold), the eleventh and later are held, since the archives of the last ten minutes count too.
        """
        eli = world.sandbox.trello.act_as(ELI)
        thresholds = {member: Threshold(max_items=10, max_share=0.2) for member in world.group.codecs}
        held: list[str] = []
        for each in world.items[:14]:
            eli.archive(each["sales"])
            report = Pass(world.group, world.connectors, world.store, mass_change=thresholds).run(
                hints={"sales": [each["sales"]]}
            )
            held += report.held
        assert archived(world, "engineering", world.items[:10]) == [True] * 10
        assert archived(world, "engineering", world.items[10:14]) == [False] * 4
        guards = pending(world.store)
        assert sorted(guards) == ["engineering", "marketing"]
        assert "in the last 600 s" in guards["engineering"].reason
        assert len(guards["engineering"].items) == 4

    def test_a_window_of_zero_counts_each_pass_alone(self, world: World) -> None:
        """With ``window_s: 0`` each pass is judged alone: fourteen single archives all flow through."""
        eli = world.sandbox.trello.act_as(ELI)
        thresholds = {member: Threshold(max_items=10, max_share=0.2, window_s=0) for member in world.group.codecs}
        for each in world.items[:14]:
            eli.archive(each["sales"])
            Pass(world.group, world.connectors, world.store, mass_change=thresholds).run(
                hints={"sales": [each["sales"]]}
            )
        assert archived(world, "engineering", world.items[:14]) == [True] * 14
        assert pending(world.store) == {}


def test_an_unknown_guard_is_refused_naming_the_command_that_lists_them(world: World) -> None:
    """An unknown id is refused (exit 2) naming the command that lists guards."""
    code, said = cli(world, "guard", "confirm", "nope", "--by", "ops")
    assert code == 2
    assert "syncd guard list" in said
