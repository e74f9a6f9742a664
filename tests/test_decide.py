"""The plan stage with the tools' history as data: what it asks for, and the plan it makes once given it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from syncd.decide import Decided, HistoryWanted, attributed, decide
from syncd.merge import FieldPolicy, GroupPolicy, Item, Rule
from syncd.model import FieldChange
from syncd.pass_data import Touched
from syncd.plan import View, Write

T0 = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
MEMBERS = ("engineering", "sales", "marketing")
BASE = {"title": "Launch page", "status": "todo"}


def policy(status: Rule) -> GroupPolicy:
    fields = {"title": FieldPolicy(), "status": FieldPolicy(status)}
    return GroupPolicy("launch", MEMBERS, fields, create_in=frozenset(MEMBERS))


def views(minutes: dict[str, int], **changed: dict[str, Any]) -> dict[str, View]:
    return {
        m: View(m, f"{m}-1", {**BASE, **changed.get(m, {})}, T0 + timedelta(minutes=minutes.get(m, 0))) for m in MEMBERS
    }


def touched(found: dict[str, View], changed: set[str]) -> Touched:
    item = Touched(views=dict(found), changed=changed)
    item.synced = dict.fromkeys(MEMBERS, T0 - timedelta(hours=1))
    return item


class TestHistoryAsData:
    def test_a_conflict_decided_by_time_asks_for_the_history_of_its_members_only(self) -> None:
        """Two members changed the status (latest wins): the stage asks for their history, not the third's."""
        found = views({"engineering": 5, "sales": 9}, engineering={"status": "doing"}, sales={"status": "done"})
        item = touched(found, {"engineering", "sales"})
        outcome = decide(policy(Rule("latest")), Item("s1", BASE, found), item, {})
        assert outcome == HistoryWanted(frozenset({"engineering", "sales"}))

    def test_the_field_times_from_history_decide_not_the_items_modification_time(self) -> None:
        """Sales' card was touched last, but its status changed before Engineering's: Engineering's status wins."""
        found = views({"engineering": 5, "sales": 9}, engineering={"status": "doing"}, sales={"status": "done"})
        item = touched(found, {"engineering", "sales"})
        histories = {
            "engineering": [FieldChange("status", T0 + timedelta(minutes=5), by_self=False)],
            "sales": [FieldChange("status", T0 + timedelta(minutes=1), by_self=False)],
        }
        outcome = decide(policy(Rule("latest")), Item("s1", BASE, found), item, histories)
        assert isinstance(outcome, Decided)
        assert outcome.plan.base["status"] == "doing"
        assert Write("sales", "sales-1", {"status": "doing"}, "status from engineering") in outcome.plan.steps
        assert outcome.views["sales"].field_times["status"] == T0 + timedelta(minutes=1)

    def test_a_tool_that_cannot_answer_leaves_the_views_as_they_are(self) -> None:
        """No history (None) for either member: the items' modification times decide, and the plan is made."""
        found = views({"engineering": 5, "sales": 9}, engineering={"status": "doing"}, sales={"status": "done"})
        item = touched(found, {"engineering", "sales"})
        outcome = decide(policy(Rule("latest")), Item("s1", BASE, found), item, {"engineering": None, "sales": None})
        assert isinstance(outcome, Decided)
        assert outcome.plan.base["status"] == "done"

    def test_an_owner_rule_plans_at_once_and_leaves_naming_to_the_writes(self) -> None:
        """A conflict the owner decides is not about time: planned with no history read; the winner's history,
        which names the author, is read by the apply stage while it writes (``attribute``).
        """
        found = views({"engineering": 5, "sales": 9}, engineering={"status": "doing"}, sales={"status": "done"})
        item = touched(found, {"engineering", "sales"})
        whole = Item("s1", BASE, found)
        rule = Rule("owner", owner="engineering")
        outcome = decide(policy(rule), whole, item, {})
        assert isinstance(outcome, Decided)
        assert outcome.plan.base["status"] == "doing"
        assert outcome.attribute == frozenset({"engineering"})
        ana = [FieldChange("status", T0 + timedelta(minutes=5), by_self=False, person="ana@corp.example")]
        assert attributed(outcome.plan, outcome.views, {"engineering": ana}) == {"status": "ana@corp.example"}


class TestAttribution:
    def test_the_last_persons_change_up_to_the_read_names_the_field(self) -> None:
        """Ana's move is in the value read; syncd's later copy and Ben's move after the read are not hers to lose."""
        found = views({"engineering": 5}, engineering={"status": "doing"})
        item = touched(found, {"engineering"})
        history = [
            FieldChange("status", T0 + timedelta(minutes=2), by_self=False, person="chen@corp.example"),
            FieldChange("status", T0 + timedelta(minutes=4), by_self=False, person="ana@corp.example"),
            FieldChange("status", T0 + timedelta(minutes=5), by_self=True, person=None),
            FieldChange("status", T0 + timedelta(minutes=7), by_self=False, person="ben@corp.example"),
        ]
        outcome = decide(policy(Rule("latest")), Item("s1", BASE, found), item, {})
        assert isinstance(outcome, Decided)
        assert outcome.attribute == frozenset({"engineering"})
        assert attributed(outcome.plan, outcome.views, {"engineering": history}) == {"status": "ana@corp.example"}

    def test_a_tool_that_cannot_answer_names_no_one(self) -> None:
        """No history (None): the write is planned all the same and names no one rather than a guess."""
        found = views({"engineering": 5}, engineering={"status": "doing"})
        item = touched(found, {"engineering"})
        outcome = decide(policy(Rule("latest")), Item("s1", BASE, found), item, {})
        assert isinstance(outcome, Decided)
        assert attributed(outcome.plan, outcome.views, {"engineering": None}) == {}
        assert outcome.plan.origins == {"status": "engineering"}

    def test_a_quiet_item_reads_no_history(self) -> None:
        """Nothing changed, nothing is written: no history is asked for (attribution costs only what is written)."""
        found = views({})
        outcome = decide(policy(Rule("latest")), Item("s1", BASE, found), touched(found, set()), {})
        assert isinstance(outcome, Decided)
        assert outcome.plan.quiet
        assert outcome.attribute == frozenset()

    def test_a_field_moved_away_and_back_is_found_in_the_history_and_weighed(self) -> None:
        """Engineering moved to Done and back while Sales moved to Done earlier: the owner's return is a change."""
        found = views({"sales": 3}, sales={"status": "done"})
        item = touched(found, {"engineering", "sales"})
        whole = Item("s1", BASE, found)
        rule = Rule("owner", owner="engineering")
        assert decide(policy(rule), whole, item, {}) == HistoryWanted(frozenset({"engineering"}))
        back = [
            FieldChange("status", T0 + timedelta(minutes=4), by_self=False),
            FieldChange("status", T0 + timedelta(minutes=6), by_self=False),
        ]
        outcome = decide(policy(rule), whole, item, {"engineering": back})
        assert isinstance(outcome, Decided)
        assert outcome.plan.base["status"] == "todo"
        assert "status" in outcome.views["engineering"].returned

    def test_a_mirror_never_agreed_since_its_create_weighs_its_whole_history(self) -> None:
        """Jira's mirror has no synced time (its read-back held Jira's default priority): Ben's move there and back
        still counts against Gus's move in Asana, found in the history since syncd created the issue."""
        found = views({"marketing": 3}, marketing={"status": "done"})
        item = touched(found, {"engineering", "marketing"})
        del item.synced["engineering"]
        whole = Item("s1", BASE, found)
        rule = Rule("owner", owner="engineering")
        assert decide(policy(rule), whole, item, {}) == HistoryWanted(frozenset({"engineering"}))
        history = [
            FieldChange("status", T0 - timedelta(minutes=30), by_self=True),  # syncd's create
            FieldChange("status", T0 + timedelta(minutes=4), by_self=False, person="ben@corp.example"),
            FieldChange("status", T0 + timedelta(minutes=6), by_self=False, person="ben@corp.example"),
        ]
        outcome = decide(policy(rule), whole, item, {"engineering": history})
        assert isinstance(outcome, Decided)
        assert outcome.plan.base["status"] == "todo"
        quiet = decide(policy(rule), whole, item, {"engineering": history[:1]})  # only syncd's: Gus's move goes on
        assert isinstance(quiet, Decided)
        assert quiet.plan.base["status"] == "done"
