"""Group mappings: compiled from YAML, decoding records to canonical values and back, reporting what cannot map."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from syncd.mapping import Group, compile_group
from syncd.merge import Rule
from syncd.model import Person, Record
from syncd.yamlfile import FileError

ROOT = Path(__file__).resolve().parent.parent
TOOLS: dict[str, Any] = {"engineering": "jira", "sales": "trello", "marketing": "asana"}
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def group() -> Group:
    return compile_group(ROOT / "mappings" / "launch-requests.yaml", TOOLS)


def record(tool: str, **fields: Any) -> Record:
    return Record(tool=tool, ref=f"{tool}-1", version="v1", modified=T0, fields=fields)


class TestCompile:
    def test_the_shipped_group_compiles(self, group: Group) -> None:
        """The example group names three members and the rules its file declares."""
        assert group.name == "launch-requests"
        assert group.policy.members == ("engineering", "sales", "marketing")
        assert group.policy.fields["status"].rule == Rule("owner", owner="engineering")
        assert group.policy.fields["labels"].rule == Rule("union")
        assert group.policy.create_in == frozenset({"engineering", "sales", "marketing"})

    def test_a_member_without_a_department_file_is_an_error(self) -> None:
        """Every member must be a configured department."""
        with pytest.raises(FileError, match="no file in config/departments"):
            compile_group(ROOT / "mappings" / "launch-requests.yaml", {"engineering": "jira"})

    def test_a_rule_naming_a_stranger_is_an_error_with_a_line(self, tmp_path: Path) -> None:
        """owner: finance, not a member: reported with the file and line."""
        path = tmp_path / "g.yaml"
        path.write_text("members:\n  sales: {}\nfields:\n  title: {rule: {owner: finance}}\n")
        with pytest.raises(FileError, match=r"g.yaml:\d+: .*\['finance'\] are not members"):
            compile_group(path, TOOLS)

    def test_an_unknown_field_is_an_error(self, tmp_path: Path) -> None:
        """Only the canonical fields can be mirrored."""
        path = tmp_path / "g.yaml"
        path.write_text("members:\n  sales: {}\nfields:\n  colour: {}\n")
        with pytest.raises(FileError, match="unknown fields"):
            compile_group(path, TOOLS)


class TestStatus:
    def test_many_to_one_decodes_to_one_canonical_value(self, group: Group) -> None:
        """Jira's In Review and In Progress both mean doing."""
        codec = group.codecs["engineering"]
        review, _ = codec.decode(record("jira", status="In Review"))
        progress, _ = codec.decode(record("jira", status="In Progress"))
        assert review.values["status"] == progress.values["status"] == "doing"

    def test_encoding_uses_the_write_choice(self, group: Group) -> None:
        """doing is written to Jira as In Progress (the file's write choice), not In Review."""
        fields, problems = group.codecs["engineering"].encode({"status": "doing"})
        assert fields == {"status": "In Progress"}
        assert problems == []

    def test_an_unmapped_status_is_reported_and_left_out(self, group: Group) -> None:
        """A list the map does not know is a problem naming the fix, and no status is guessed."""
        view, problems = group.codecs["sales"].decode(record("trello", status="Parking lot", title="x"))
        assert "status" not in view.values
        assert view.values["title"] == "x"
        (problem,) = problems
        assert (problem.endpoint, problem.field, problem.value) == ("sales", "status", "Parking lot")
        assert "fields.status.map.sales" in problem.message


class TestPeopleAndDates:
    def test_people_decode_to_sorted_emails(self, group: Group) -> None:
        """Members become their e-mails, sorted, whatever the tool's account ids."""
        people = (Person("farah@corp.example", account="f1"), Person("eli@corp.example", account="e1"))
        view, _ = group.codecs["sales"].decode(record("trello", assignees=people))
        assert view.values["assignees"] == ["eli@corp.example", "farah@corp.example"]

    def test_a_person_without_an_email_is_reported(self, group: Group) -> None:
        """A Trello member missing from the people directory is reported, not guessed."""
        view, problems = group.codecs["sales"].decode(record("trello", assignees=(Person(None, account="m9"),)))
        assert "assignees" not in view.values
        assert "people" in problems[0].message

    def test_due_instants_compare_as_dates_in_the_declared_zone(self, group: Group) -> None:
        """Trello's 23:30 UTC on the 14th is the 15th in Berlin, the same as Jira's date 2027-01-15."""
        trello, _ = group.codecs["sales"].decode(record("trello", due=datetime(2027, 1, 14, 23, 30, tzinfo=UTC)))
        jira, _ = group.codecs["engineering"].decode(record("jira", due=date(2027, 1, 15)))
        assert trello.values["due"] == jira.values["due"] == "2027-01-15"

    def test_labels_are_a_sorted_set(self, group: Group) -> None:
        """Labels decode sorted and de-duplicated, so two reads compare equal."""
        view, _ = group.codecs["marketing"].decode(record("asana", labels=("web", "launch", "web")))
        assert view.values["labels"] == ["launch", "web"]


class TestText:
    def test_descriptions_meet_as_markdown(self, group: Group) -> None:
        """Jira wiki bold and Asana strong bold decode to the same canonical Markdown."""
        jira, _ = group.codecs["engineering"].decode(record("jira", description="Ship *now*"))
        asana, _ = group.codecs["marketing"].decode(
            record("asana", description="<body>Ship <strong>now</strong></body>")
        )
        assert jira.values["description"] == asana.values["description"]

    def test_a_round_trip_through_each_tool_is_stable(self, group: Group) -> None:
        """Canonical text encoded for a tool and decoded again is unchanged (no rewrite ping-pong)."""
        canonical, _ = group.codecs["engineering"].decode(record("jira", description="Ship *now*\n\n* one\n* two"))
        text = canonical.values["description"]
        for member in ("engineering", "sales", "marketing"):
            codec = group.codecs[member]
            encoded, _ = codec.encode({"description": text})
            again, _ = codec.decode(record(codec.tool, description=encoded["description"]))
            assert again.values["description"] == text, member


class TestScope:
    def test_scope_by_label(self, group: Group) -> None:
        """Engineering mirrors only issues labelled launch."""
        codec = group.codecs["engineering"]
        assert codec.in_scope(record("jira", labels=("launch", "api")))
        assert not codec.in_scope(record("jira", labels=("ops",)))
        assert group.codecs["sales"].in_scope(record("trello", labels=()))

    def test_a_mirror_created_in_a_scoped_member_carries_the_scope_label(self, group: Group) -> None:
        """A card born in Trello becomes a Jira issue labelled launch, or it would leave the scope at once."""
        fields, problems = group.codecs["engineering"].encode(
            {"title": "From Sales", "labels": ["urgent"]}, create=True
        )
        assert problems == []
        assert fields["labels"] == ("launch", "urgent")
        fields, _ = group.codecs["engineering"].encode({"title": "From Sales"}, create=True)
        assert fields["labels"] == ("launch",)

    def test_a_label_write_keeps_the_scope_label(self, group: Group) -> None:
        """Writing labels that lack the scope label keeps it; other writes leave labels alone."""
        fields, _ = group.codecs["engineering"].encode({"labels": ["api"]})
        assert fields["labels"] == ("api", "launch")
        fields, _ = group.codecs["engineering"].encode({"title": "Renamed"})
        assert "labels" not in fields
        fields, _ = group.codecs["sales"].encode({"labels": ["api"]}, create=True)
        assert fields["labels"] == ("api",)  # an unscoped member gets nothing added
