"""The planner's decision table, branch by branch, with literal expectations: no network, no database, no clock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.errors import SideEmptied
from syncd.merge import ARCHIVED, FieldPolicy, GroupPolicy, Item, Rule, check_side, merge_field, plan
from syncd.plan import Archive, Create, Unlink, View, Write

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
MEMBERS = ("engineering", "sales", "marketing")


def policy(**rules: Rule) -> GroupPolicy:
    fields = {"title": FieldPolicy(), "status": FieldPolicy(), "labels": FieldPolicy(Rule("union"))}
    fields.update({name: FieldPolicy(rule) for name, rule in rules.items()})
    return GroupPolicy("launch", MEMBERS, fields, create_in=frozenset(MEMBERS))


def view(endpoint: str, minutes: int = 0, archived: bool = False, **values: Any) -> View:
    return View(endpoint, f"{endpoint}-1", values, T0 + timedelta(minutes=minutes), archived=archived)


BASE = {"title": "Launch page", "status": "doing", "labels": ["launch"], ARCHIVED: False}


def agreed(**changes: Mapping[str, object]) -> dict[str, View]:
    """All three endpoints at the base, with per-endpoint changes applied."""
    views = {}
    for minutes, endpoint in enumerate(MEMBERS):
        values: dict[str, Any] = {k: v for k, v in BASE.items() if k != ARCHIVED}
        values.update(changes.get(endpoint, {}))
        views[endpoint] = view(endpoint, minutes, **values)
    return views


class TestQuiescence:
    def test_nothing_changed_means_nothing_to_do(self) -> None:
        """Every endpoint equals the base: the plan is quiet (no echo, no flapping)."""
        result = plan(policy(), Item("s1", BASE, agreed()))
        assert result.quiet
        assert result.base == BASE


class TestPropagation:
    def test_a_change_at_one_endpoint_propagates(self) -> None:
        """Sales renamed the item: engineering and marketing get the new title, nobody else changes."""
        result = plan(policy(), Item("s1", BASE, agreed(sales={"title": "Launch page v2"})))
        assert result.steps == (
            Write("engineering", "engineering-1", {"title": "Launch page v2"}, "title from sales"),
            Write("marketing", "marketing-1", {"title": "Launch page v2"}, "title from sales"),
        )
        assert result.conflicts == ()
        assert result.base["title"] == "Launch page v2"
        assert result.origins == {"title": "sales"}

    def test_the_same_change_at_two_endpoints_is_no_conflict(self) -> None:
        """Two people made the same edit: it propagates to the third, and no conflict is recorded."""
        same = {"status": "done"}
        result = plan(policy(), Item("s1", BASE, agreed(sales=same, marketing=same)))
        assert [type(s).__name__ + ":" + s.endpoint for s in result.steps] == ["Write:engineering"]
        assert result.conflicts == ()


class TestEmptyBase:
    def test_a_first_value_for_a_field_never_set_propagates(self) -> None:
        """No tool had a due date (the base holds none): Sales sets one, it propagates, no conflict (found by a
        benchmark: every tool used to count as changed, and `manual` held it)."""
        views = agreed(sales={"due": "2027-02-01"}, engineering={"due": None}, marketing={"due": None})
        result = plan(policy(due=Rule("manual")), Item("s1", BASE, views))
        assert result.conflicts == ()
        assert result.base["due"] == "2027-02-01"
        assert {s.endpoint for s in result.steps if isinstance(s, Write)} == {"engineering", "marketing"}


class TestConflictRules:
    def test_latest_change_wins(self) -> None:
        """Both renamed: marketing's later edit wins, the loser's value is kept in the conflict."""
        views = agreed(sales={"title": "By sales"}, marketing={"title": "By marketing"})
        result = plan(policy(), Item("s1", BASE, views))
        (conflict,) = result.conflicts
        assert (conflict.rule, conflict.winner, conflict.result) == ("latest", "marketing", "By marketing")
        assert conflict.values == {"sales": "By sales", "marketing": "By marketing"}
        assert {s.endpoint for s in result.steps} == {"engineering", "sales"}

    def test_latest_uses_per_field_change_times(self) -> None:
        """The field's own change time decides, not the item's modification time."""
        sales = View("sales", "s", {"title": "By sales"}, T0 + timedelta(hours=2), {"title": T0 + timedelta(hours=1)})
        marketing = View("marketing", "m", {"title": "By marketing"}, T0 + timedelta(minutes=90))
        decision = merge_field("title", FieldPolicy(), {"title": "x"}, [sales, marketing])
        assert decision.value == "By marketing"

    def test_syncds_own_earlier_write_is_no_change_there(self) -> None:
        """Engineering holds a copy of sales' title that syncd wrote (an echo), later than marketing's rename.

        Without the echo, engineering would count as the latest change and sales' older title would win.
        """
        views = agreed(sales={"title": "By sales"}, marketing={"title": "By marketing"})
        views["engineering"] = view("engineering", 9, title="By sales", status="doing", labels=["launch"])
        echoes = {"engineering": {"title": "By sales"}}
        result = plan(policy(), Item("s1", BASE, views, echoes=echoes))
        (conflict,) = result.conflicts
        assert (conflict.winner, conflict.result) == ("marketing", "By marketing")
        assert conflict.values == {"sales": "By sales", "marketing": "By marketing"}
        assert {s.endpoint for s in result.steps} == {"engineering", "sales"}

    def test_an_edit_over_syncds_echo_is_a_change(self) -> None:
        """A person renaming after syncd's write changes the field there, echo or not."""
        views = agreed(engineering={"title": "By engineering"})
        result = plan(policy(), Item("s1", BASE, views, echoes={"engineering": {"title": "By sales"}}))
        assert result.base["title"] == "By engineering"

    def test_a_field_moved_away_and_back_is_a_change_there(self) -> None:
        """Engineering moved the status away and back (its view says so): the owner's base value wins over sales'."""
        views = agreed(sales={"status": "done"})
        views["engineering"] = replace(views["engineering"], returned=frozenset({"status"}))
        result = plan(policy(status=Rule("owner", owner="engineering")), Item("s1", BASE, views))
        (conflict,) = result.conflicts
        assert conflict.values == {"engineering": "doing", "sales": "done"}
        assert (conflict.winner, conflict.result) == ("engineering", "doing")
        assert [(s.endpoint, dict(s.values)) for s in result.steps if isinstance(s, Write)] == [
            ("sales", {"status": "doing"})
        ]

    def test_a_field_moved_away_and_back_alone_changes_nothing(self) -> None:
        """Nobody else changed it: the plan is quiet, as if nothing had happened."""
        views = agreed()
        views["engineering"] = replace(views["engineering"], returned=frozenset({"title"}))
        assert plan(policy(), Item("s1", BASE, views)).quiet

    def test_latest_ties_go_to_the_earlier_member(self) -> None:
        """Same instant: member order (engineering before sales) breaks the tie."""
        first = view("engineering", 0, title="E")
        second = view("sales", 0, title="S")
        assert merge_field("title", FieldPolicy(), {"title": "x"}, [first, second]).value == "E"

    def test_owner_wins_when_it_changed(self) -> None:
        """Engineering owns status: its change beats a concurrent one elsewhere, which is reverted."""
        views = agreed(engineering={"status": "done"}, sales={"status": "todo"})
        result = plan(policy(status=Rule("owner", owner="engineering")), Item("s1", BASE, views))
        (conflict,) = result.conflicts
        assert (conflict.winner, conflict.result, conflict.rule) == ("engineering", "done", "owner:engineering")
        assert {s.endpoint: s.values for s in result.steps if isinstance(s, Write)} == {
            "sales": {"status": "done"},
            "marketing": {"status": "done"},
        }

    def test_owner_unchanged_reverts_the_others(self) -> None:
        """Two non-owners changed status differently: the owner's (base) value stands and both are reverted."""
        views = agreed(sales={"status": "todo"}, marketing={"status": "done"})
        result = plan(policy(status=Rule("owner", owner="engineering")), Item("s1", BASE, views))
        assert result.base["status"] == "doing"
        assert {s.endpoint: s.values for s in result.steps if isinstance(s, Write)} == {
            "sales": {"status": "doing"},
            "marketing": {"status": "doing"},
        }

    def test_a_single_change_by_a_non_owner_still_propagates(self) -> None:
        """Ownership decides conflicts only: one change anywhere is no conflict and propagates."""
        result = plan(
            policy(status=Rule("owner", owner="engineering")), Item("s1", BASE, agreed(sales={"status": "todo"}))
        )
        assert result.base["status"] == "todo"
        assert result.conflicts == ()

    def test_prefer_follows_the_precedence(self) -> None:
        """prefer [marketing, sales]: marketing's value wins over sales' even though sales changed later."""
        views = agreed(sales={"title": "S"}, marketing={"title": "M"})
        views["sales"] = View("sales", "sales-1", {**views["sales"].values}, T0 + timedelta(hours=1))
        result = plan(policy(title=Rule("prefer", order=("marketing", "sales"))), Item("s1", BASE, views))
        assert result.base["title"] == "M"

    def test_union_merges_adds_and_removes(self) -> None:
        """Sales added "urgent", marketing removed "launch" and added "web": all three edits survive."""
        views = agreed(sales={"labels": ["launch", "urgent"]}, marketing={"labels": ["web"]})
        result = plan(policy(), Item("s1", BASE, views))
        assert result.base["labels"] == ["urgent", "web"]
        assert result.conflicts[0].winner is None

    def test_merge_text_combines_non_overlapping_edits(self) -> None:
        """Edits to different lines of a description both survive."""
        base = {"description": "one\ntwo\nthree\nfour\n"}
        sales = view("sales", 1, description="ONE\ntwo\nthree\nfour\n")
        marketing = view("marketing", 2, description="one\ntwo\nthree\nFOUR\n")
        decision = merge_field("description", FieldPolicy(Rule("merge-text")), base, [sales, marketing])
        assert decision.value == "ONE\ntwo\nthree\nFOUR\n"

    def test_merge_text_overlapping_edits_fall_back_to_latest(self) -> None:
        """Both edited the same line: the later edit wins, and the other is the conflict's losing value."""
        base = {"description": "one\n"}
        sales = view("sales", 1, description="uno\n")
        marketing = view("marketing", 2, description="eins\n")
        decision = merge_field("description", FieldPolicy(Rule("merge-text")), base, [sales, marketing])
        assert decision.value == "eins\n"
        assert decision.conflict is not None
        assert decision.conflict.values["sales"] == "uno\n"

    def test_manual_writes_nothing_and_holds_the_conflict(self) -> None:
        """manual: nothing is overwritten; the base keeps the old value until a person decides."""
        views = agreed(sales={"title": "S"}, marketing={"title": "M"})
        result = plan(policy(title=Rule("manual")), Item("s1", BASE, views))
        (conflict,) = result.conflicts
        assert conflict.held
        assert result.base["title"] == "Launch page"
        assert not any(isinstance(s, Write) and "title" in s.values for s in result.steps)

    def test_a_persons_decision_on_a_held_conflict_is_applied(self) -> None:
        """manual, decided (syncd conflicts resolve --take marketing): marketing's value goes everywhere."""
        views = agreed(sales={"title": "S"}, marketing={"title": "M"})
        result = plan(policy(title=Rule("manual")), Item("s1", BASE, views, decisions={"title": "marketing"}))
        (conflict,) = result.conflicts
        assert not conflict.held
        assert conflict.rule == "manual:marketing"
        assert conflict.winner == "marketing"
        assert result.base["title"] == "M"
        assert {(s.endpoint, s.values["title"]) for s in result.steps if isinstance(s, Write)} == {
            ("engineering", "M"),
            ("sales", "M"),
        }

    def test_a_decision_for_an_endpoint_that_kept_the_base_reverts_the_others(self) -> None:
        """Taking the side that did not change means the base value stands and both edits are reverted."""
        views = agreed(sales={"title": "S"}, marketing={"title": "M"})
        result = plan(policy(title=Rule("manual")), Item("s1", BASE, views, decisions={"title": "engineering"}))
        assert result.base["title"] == "Launch page"
        assert {s.endpoint for s in result.steps if isinstance(s, Write)} == {"sales", "marketing"}


class TestDirection:
    def test_a_change_at_a_non_source_endpoint_is_reverted(self) -> None:
        """Status flows only from engineering: sales' edit does not count and is put back."""
        group = GroupPolicy(
            "launch",
            MEMBERS,
            {"status": FieldPolicy(sources=frozenset({"engineering"}))},
        )
        result = plan(group, Item("s1", BASE, agreed(sales={"status": "done"})))
        assert result.steps == (Write("sales", "sales-1", {"status": "doing"}, "status from base"),)


class TestPerMemberFields:
    """Labels held by engineering and sales only: marketing is neither read nor written for them."""

    @staticmethod
    def held(**item: Any) -> tuple[GroupPolicy, Item]:
        kept = FieldPolicy(Rule("union"), holders=frozenset({"engineering", "sales"}))
        group = replace(policy(), fields={**policy().fields, "labels": kept})
        return group, Item("s1", **item)

    def test_a_change_at_a_holder_reaches_the_other_holder_only(self) -> None:
        """Ana adds a label in Jira: Trello gets it, the Asana task keeps its own tags untouched."""
        views = agreed(engineering={"labels": ["api", "launch"]}, marketing={"labels": ["press"]})
        result = plan(*self.held(base=BASE, views=views))
        assert result.steps == (Write("sales", "sales-1", {"labels": ["api", "launch"]}, "labels from engineering"),)
        assert result.base["labels"] == ["api", "launch"]

    def test_a_change_at_a_member_that_does_not_hold_the_field_is_not_read(self) -> None:
        """Gus tags the task in Asana: no change for anyone, nothing reverted, the base keeps the holders' value."""
        result = plan(*self.held(base=BASE, views=agreed(marketing={"labels": ["launch", "press"]})))
        assert result.quiet
        assert result.base == BASE

    def test_holders_conflict_by_the_rule_among_themselves(self) -> None:
        """Both holders edit labels: union of theirs; marketing's tags take no part and get no write."""
        views = agreed(
            engineering={"labels": ["api", "launch"]}, sales={"labels": []}, marketing={"labels": ["social"]}
        )
        result = plan(*self.held(base=BASE, views=views))
        (conflict,) = result.conflicts
        assert set(conflict.values) == {"engineering", "sales"}
        assert result.base["labels"] == ["api"]
        assert {s.endpoint for s in result.steps} == {"engineering", "sales"}

    def test_a_mirror_created_at_a_member_that_does_not_hold_the_field_gets_no_value(self) -> None:
        """A new card: the Jira issue is created with its labels, the Asana task without any."""
        views = {"sales": view("sales", title="New", status="todo", labels=["pricing"])}
        result = plan(*self.held(base=None, views=views))
        creates = {s.endpoint: s.values for s in result.steps if isinstance(s, Create)}
        assert creates == {
            "engineering": {"title": "New", "status": "todo", "labels": ["pricing"]},
            "marketing": {"title": "New", "status": "todo"},
        }

    def test_an_item_new_at_a_member_that_does_not_hold_the_field_brings_none(self) -> None:
        """A new Asana task with tags: its mirrors are created without labels, and its tags stay as they are."""
        views = {"marketing": view("marketing", title="New", status="todo", labels=["press"])}
        result = plan(*self.held(base=None, views=views))
        assert [s.values for s in result.steps if isinstance(s, Create)] == [{"title": "New", "status": "todo"}] * 2
        assert "labels" not in result.base

    def test_a_member_that_cannot_be_read_is_not_behind_on_a_field_it_does_not_hold(self) -> None:
        """Asana is down while labels change in Jira: the task misses nothing, so the item does not wait for it."""
        views = agreed(engineering={"labels": ["api", "launch"]})
        del views["marketing"]
        result = plan(*self.held(base=BASE, views=views, unavailable={"marketing": "marketing-1"}))
        assert result.waiting == ()

    def test_a_scope_label_is_required_only_where_the_field_is_held(self) -> None:
        """Marketing scoped by a label it does not hold as a field: the item's labels do not take it."""
        group, item = self.held(base=None, views={"sales": view("sales", title="New", labels=["pricing"])})
        result = plan(replace(group, scope_labels={"marketing": "launch"}), item)
        assert result.base["labels"] == ["pricing"]
        result = plan(replace(group, scope_labels={"engineering": "launch"}), item)
        assert result.base["labels"] == ["launch", "pricing"]


class TestLifecycle:
    def test_a_new_item_is_mirrored_where_the_group_says(self) -> None:
        """First seen in sales: created in engineering and marketing with sales' values."""
        result = plan(policy(), Item("s1", None, {"sales": view("sales", title="New", status="todo", labels=[])}))
        creates = [s for s in result.steps if isinstance(s, Create)]
        assert [c.endpoint for c in creates] == ["engineering", "marketing"]
        assert creates[0].values == {"title": "New", "status": "todo", "labels": []}

    def test_deleted_and_untouched_elsewhere_archives_the_mirrors(self) -> None:
        """Deleted in sales, unchanged elsewhere: the mirrors are archived, not deleted."""
        views = agreed()
        del views["sales"]
        result = plan(policy(), Item("s1", BASE, views, deleted={"sales": "sales-1"}))
        assert result.steps == (
            Archive("engineering", "engineering-1", "deleted at sales"),
            Archive("marketing", "marketing-1", "deleted at sales"),
        )
        assert result.base[ARCHIVED] is True  # from now on the item is archived (and frozen)

    def test_modify_beats_delete(self) -> None:
        """Deleted in sales while engineering edited it: the edit wins and sales gets the item back."""
        views = agreed(engineering={"title": "Edited"})
        del views["sales"]
        result = plan(policy(), Item("s1", BASE, views, deleted={"sales": "sales-1"}))
        (create,) = [s for s in result.steps if isinstance(s, Create)]
        assert create.endpoint == "sales"
        assert create.values["title"] == "Edited"
        assert not any(isinstance(s, Archive) for s in result.steps)

    def test_unlink_policy_leaves_mirrors_alone(self) -> None:
        """on_delete: unlink stops mirroring without touching the other tools."""
        views = agreed()
        del views["sales"]
        group = GroupPolicy("launch", MEMBERS, policy().fields, on_delete="unlink")
        result = plan(group, Item("s1", BASE, views, deleted={"sales": "sales-1"}))
        assert {type(s) for s in result.steps} == {Unlink}

    def test_archived_at_one_endpoint_archives_the_others(self) -> None:
        """Closed in Trello: the Jira and Asana mirrors are archived too, once."""
        views = agreed()
        views["sales"] = view("sales", 1, archived=True, **views["sales"].values)
        result = plan(policy(), Item("s1", BASE, views))
        assert [s.endpoint for s in result.steps if isinstance(s, Archive)] == ["engineering", "marketing"]
        assert result.base[ARCHIVED] is True
        again = plan(policy(), Item("s1", result.base, views))
        assert not any(isinstance(s, Archive) for s in again.steps)

    def test_leaving_scope_unlinks_only_there(self) -> None:
        """The label that put it in engineering's scope was removed: unlink engineering, nothing else."""
        views = agreed()
        del views["engineering"]
        result = plan(policy(), Item("s1", BASE, views, out_of_scope={"engineering": "engineering-1"}))
        assert result.steps == (Unlink("engineering", "engineering-1", "left the scope of engineering"),)

    def test_gone_everywhere_plans_nothing(self) -> None:
        """No view left: an empty plan (the executor drops the links)."""
        result = plan(policy(), Item("s1", BASE, {}, deleted={"sales": "s", "engineering": "e"}))
        assert result.steps == ()


class TestArchivedItems:
    def test_an_item_archived_everywhere_is_frozen(self) -> None:
        """Archiving moved the Jira issue to Done, and someone renamed the closed card: nothing propagates."""
        base = {**BASE, ARCHIVED: True}
        views = {
            "engineering": view("engineering", 1, archived=True, title="Launch page", status="done", labels=["launch"]),
            "sales": view("sales", 2, archived=True, title="Renamed", status="doing", labels=["launch"]),
        }
        result = plan(policy(), Item("s1", base, views, deleted={"marketing": "marketing-1"}))
        assert result.quiet
        assert result.base == base


class TestMassDeleteGuard:
    def test_an_endpoint_listing_far_fewer_items_is_an_outage(self) -> None:
        """40 linked, 3 listed: SideEmptied, no deletion is planned from it."""
        with pytest.raises(SideEmptied, match="3 of 40"):
            check_side("sales", linked=40, listed=3)

    def test_normal_churn_passes(self) -> None:
        """A few deletions, or a tiny group, are not an outage."""
        check_side("sales", linked=40, listed=35)
        check_side("sales", linked=2, listed=0)


WORDS = st.text(alphabet="abcdefgh", min_size=1, max_size=6)


class TestConvergence:
    @given(
        base=WORDS,
        edits=st.dictionaries(st.sampled_from(MEMBERS), WORDS, max_size=3),
        rule=st.sampled_from([Rule("latest"), Rule("owner", owner="sales"), Rule("prefer", order=MEMBERS)]),
    )
    def test_applying_a_plan_converges_and_the_next_plan_is_quiet(
        self, base: str, edits: dict[str, str], rule: Rule
    ) -> None:
        """Whatever the edits and the rule: after applying the plan every endpoint agrees, and replanning is quiet."""
        group = GroupPolicy("g", MEMBERS, {"title": FieldPolicy(rule)})
        views = {e: view(e, i, title=edits.get(e, base)) for i, e in enumerate(MEMBERS)}
        first = plan(group, Item("s", {"title": base}, views))
        applied = dict(views)
        for step in first.steps:
            assert isinstance(step, Write)
            applied[step.endpoint] = view(step.endpoint, 10, **{**views[step.endpoint].values, **step.values})
        assert len({v.values["title"] for v in applied.values()}) == 1
        assert plan(group, Item("s", first.base, applied)).quiet


class TestUnavailableMembers:
    def test_a_member_that_cannot_be_read_gets_nothing_and_waits(self) -> None:
        """Jira cannot be read: Sales' rename goes to Marketing only; Jira is neither written nor created in."""
        views = agreed(sales={"title": "Launch page v2"})
        del views["engineering"]
        result = plan(policy(), Item("s1", BASE, views, unavailable={"engineering": "engineering-1"}))
        assert [(type(s).__name__, s.endpoint) for s in result.steps] == [("Write", "marketing")]
        assert result.waiting == ("engineering",)

    def test_an_unchanged_item_does_not_wait_for_a_member_that_is_up_to_date(self) -> None:
        """Nothing changed and Jira holds the base: nothing waits for it."""
        views = agreed()
        del views["engineering"]
        result = plan(policy(), Item("s1", BASE, views, unavailable={"engineering": "engineering-1"}))
        assert result.quiet
        assert result.waiting == ()

    def test_a_create_in_a_member_that_cannot_be_read_waits(self) -> None:
        """A new item: created in Marketing now, in Jira once it answers (its mirror may exist already)."""
        result = plan(
            policy(), Item("s1", None, {"sales": view("sales", title="New")}, unavailable={"engineering": None})
        )
        assert [(type(s).__name__, s.endpoint) for s in result.steps] == [("Create", "marketing")]
        assert result.waiting == ("engineering",)

    def test_a_member_behind_and_unchanged_is_brought_up_to_date(self) -> None:
        """Jira still holds the title from before its outage: it is written the new one, no conflict."""
        views = agreed(engineering={"title": "Launch page"}, sales={"title": "v2"}, marketing={"title": "v2"})
        item = Item("s1", {**BASE, "title": "v2"}, views, behind={"engineering": {"title": "Launch page"}})
        result = plan(policy(), item)
        assert result.steps == (Write("engineering", "engineering-1", {"title": "v2"}, "title from base"),)
        assert result.conflicts == ()

    @pytest.mark.parametrize(("jira_minutes", "winner"), [(10, "Ana's"), (-10, "v2")])
    def test_a_member_behind_that_changed_meanwhile_is_weighed_by_the_rule(
        self, jira_minutes: int, winner: str
    ) -> None:
        """Ana renamed in Jira during its outage, Eli in Trello: both left Jira's older title; latest decides."""
        views = agreed(sales={"title": "v2"}, marketing={"title": "v2"})
        views["engineering"] = view("engineering", jira_minutes, title="Ana's", status="doing", labels=["launch"])
        item = Item("s1", {**BASE, "title": "v2"}, views, behind={"engineering": {"title": "Launch page"}})
        result = plan(policy(title=Rule("latest")), item)
        assert result.base["title"] == winner
        assert [c.field for c in result.conflicts] == ["title"]
