"""Group mappings: compiled from YAML, decoding records to canonical values and back, reporting what cannot map."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.factory import CAPABILITIES
from syncd.mapping import UNTITLED, Group, compile_group, shorten, utf16_len
from syncd.merge import Rule
from syncd.model import FieldChange, LabelPart, Person, Placed, Record, custom_change
from syncd.yamlfile import FileError

ROOT = Path(__file__).resolve().parent.parent
TOOLS: dict[str, Any] = {"engineering": "jira", "sales": "trello", "marketing": "asana"}
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def group() -> Group:
    return compile_group(ROOT / "mappings" / "launch-requests.yaml", TOOLS, CAPABILITIES)


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
            compile_group(ROOT / "mappings" / "launch-requests.yaml", {"engineering": "jira"}, CAPABILITIES)

    def test_a_rule_naming_a_stranger_is_an_error_with_a_line(self, tmp_path: Path) -> None:
        """owner: finance, not a member: reported with the file and line."""
        path = tmp_path / "g.yaml"
        path.write_text("members:\n  sales: {}\nfields:\n  title: {rule: {owner: finance}}\n")
        with pytest.raises(FileError, match=r"g.yaml:\d+: .*\['finance'\] are not members"):
            compile_group(path, TOOLS, CAPABILITIES)

    def test_an_unknown_field_is_an_error(self, tmp_path: Path) -> None:
        """Only the canonical fields can be mirrored."""
        path = tmp_path / "g.yaml"
        path.write_text("members:\n  sales: {}\nfields:\n  colour: {}\n")
        with pytest.raises(FileError, match="unknown fields"):
            compile_group(path, TOOLS, CAPABILITIES)


class TestPerMemberFields:
    """A field held by some members only (``members`` or ``except``): the others never read or write it."""

    HEAD = "members:\n  engineering: {}\n  sales: {}\n  marketing: {}\nfields:\n  title: {}\n"

    def compiled(self, tmp_path: Path, labels: str) -> Group:
        path = tmp_path / "g.yaml"
        path.write_text(self.HEAD + f"  labels: {labels}\n")
        return compile_group(path, TOOLS, CAPABILITIES)

    @pytest.mark.parametrize("labels", ["{rule: union, members: [engineering, sales]}", "{except: [marketing]}"])
    def test_members_or_except_name_the_holders(self, tmp_path: Path, labels: str) -> None:
        """Either spelling: the policy knows the holders, and marketing's codec neither decodes nor encodes labels."""
        group = self.compiled(tmp_path, labels)
        assert group.policy.fields["labels"].holders == frozenset({"engineering", "sales"})
        assert group.policy.fields["title"].holders is None
        marketing = group.codecs["marketing"]
        view, problems = marketing.decode(record("asana", title="x", labels=("press",)))
        assert view.values == {"title": "x"}
        assert problems == []
        assert marketing.encode({"title": "x", "labels": ["api"]}, create=True) == ({"title": "x"}, [])
        fields, _ = group.codecs["sales"].encode({"labels": ["api"]})
        assert fields == {"labels": ("api",)}

    def test_a_scoped_member_that_does_not_hold_labels_still_gets_its_scope_label(self, tmp_path: Path) -> None:
        """Its mirrors must stay in scope: the scope label alone, never the item's labels."""
        path = tmp_path / "g.yaml"
        path.write_text(
            "members:\n  engineering: {scope: {labels: [launch]}}\n  sales: {}\n  marketing: {}\n"
            "fields:\n  labels: {except: [engineering]}\n"
        )
        codec = compile_group(path, TOOLS, CAPABILITIES).codecs["engineering"]
        assert codec.encode({"title": "x", "labels": ["api"]}, create=True)[0]["labels"] == ("launch",)

    @pytest.mark.parametrize(
        ("labels", "line", "message"),
        [
            ("{members: [engineering, finance]}", 7, r"\['finance'\] are not members"),
            ("{except: [finanse]}", 7, r"\['finanse'\] are not members"),
            ("{members: [sales], except: [marketing]}", 7, "has both 'members' .* and 'except' .*: keep one"),
            ("{members: [sales]}", 7, r"held by \['sales'\] only.*list at least two members"),
            ("{except: [engineering, sales]}", 7, r"held by \['marketing'\] only"),
            ("{members: []}", 7, "held by no member only"),
            ("{except: [marketing], rule: {owner: marketing}}", 7, r"\['marketing'\] do not hold fields.labels"),
            ("{except: [marketing], rule: {prefer: [sales, marketing]}}", 7, "do not hold fields.labels"),
            ("{except: [marketing], from: [marketing]}", 7, "do not hold fields.labels"),
            ("{except: [marketing], map: {marketing: {a: b}}}", 7, "do not hold fields.labels"),
        ],
    )
    def test_mistakes_are_errors_with_a_line_and_the_fix(
        self, tmp_path: Path, labels: str, line: int, message: str
    ) -> None:
        """Unknown members, both keys, fewer than two holders, a rule or map for a member that does not hold it."""
        with pytest.raises(FileError, match=rf"g.yaml:{line}: .*{message}"):
            self.compiled(tmp_path, labels)

    def test_every_member_holds_the_title(self, tmp_path: Path) -> None:
        """A mirror can be created at any member, and every tool needs a title."""
        path = tmp_path / "g.yaml"
        path.write_text(self.HEAD.replace("title: {}", "title: {except: [marketing]}"))
        with pytest.raises(FileError, match=r"g.yaml:6: .*every member holds the title"):
            compile_group(path, TOOLS, CAPABILITIES)


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


class TestToolLimits:
    """Values a tool would refuse: fitted where a person would accept it, left out otherwise, always reported."""

    def test_a_1004_character_title_is_shortened_for_jira_and_whole_for_trello(self, group: Group) -> None:
        """Jira holds 255 characters: the title is cut with an ellipsis and reported; Trello takes all 1,004."""
        title = "Launch plan " + "x" * 992
        jira, problems = group.codecs["engineering"].encode({"title": title})
        assert len(jira["title"]) == 255
        assert jira["title"] == title[:254] + "\u2026"
        (problem,) = problems
        assert (problem.endpoint, problem.field) == ("engineering", "title")
        assert "at most 255" in problem.message
        assert "1004" in problem.message
        trello, problems = group.codecs["sales"].encode({"title": title})
        assert trello["title"] == title
        assert problems == []

    def test_shortening_counts_as_java_does_and_never_splits_a_character(self) -> None:
        """An emoji counts two (UTF-16), and an accent, skin tone or flag half is never cut from its character."""
        assert utf16_len("a\U0001f44d") == 3
        assert shorten("ab" + "e\u0301" * 3, 4) == "ab\u2026"
        assert shorten("a\U0001f44d\U0001f3fdb", 4) == "a\u2026"
        assert shorten("\U0001f1e9\U0001f1ea\U0001f1eb\U0001f1f7", 6) == "\U0001f1e9\U0001f1ea\u2026"
        title = "\U0001f680" * 200  # 400 UTF-16 code units
        written = shorten(title, 255)
        assert utf16_len(written) <= 255
        assert written == "\U0001f680" * 127 + "\u2026"

    def test_a_blank_title_is_written_untitled_where_a_title_is_required(self, group: Group) -> None:
        """A title of only spaces is refused by Jira and Trello: "(untitled)" is written there and reported."""
        for member in ("engineering", "sales"):
            fields, problems = group.codecs[member].encode({"title": "   "}, create=True)
            assert fields["title"] == UNTITLED, member
            assert [(p.field, p.value) for p in problems] == [("title", "   ")], member
            assert "requires a title" in problems[0].message
        fields, problems = group.codecs["marketing"].encode({"title": "   "})
        assert (fields["title"], problems) == ("   ", [])

    def test_a_title_with_line_breaks_is_one_line_in_jira(self, group: Group) -> None:
        """Jira refuses a summary with a line break: the lines are joined with spaces, and that is reported."""
        fields, problems = group.codecs["engineering"].encode({"title": "Ship it\r\n  today"})
        assert fields["title"] == "Ship it today"
        assert "one line" in problems[0].message
        fields, problems = group.codecs["sales"].encode({"title": "Ship it\ntoday"})
        assert (fields["title"], problems) == ("Ship it\ntoday", [])

    def test_a_label_with_a_space_is_left_out_of_jira_and_reported(self, group: Group) -> None:
        """Jira refuses 'needs review': it is not written there (nor rewritten); the other labels are."""
        fields, problems = group.codecs["engineering"].encode({"labels": ["launch", "needs review", "web"]})
        assert fields["labels"] == ("launch", "web")
        (problem,) = problems
        assert (problem.endpoint, problem.field, problem.value) == ("engineering", "labels", "needs review")
        assert "fields.labels.map.engineering" in problem.message
        fields, problems = group.codecs["sales"].encode({"labels": ["needs review"]})
        assert (fields["labels"], problems) == (("needs review",), [])

    def test_a_label_mapped_to_one_without_spaces_reaches_jira(self, tmp_path: Path) -> None:
        """The fix the report names: a value map gives the Jira label for the canonical one."""
        path = tmp_path / "g.yaml"
        path.write_text(
            "members:\n  engineering: {}\n  sales: {}\n"
            "fields:\n  labels: {map: {engineering: {needs-review: needs review}}}\n"
        )
        group = compile_group(path, TOOLS, CAPABILITIES)
        fields, problems = group.codecs["engineering"].encode({"labels": ["needs review"]})
        assert (fields["labels"], problems) == (("needs-review",), [])

    def test_year_1_from_jira_is_not_written_to_trello(self, group: Group) -> None:
        """Jira's 0001-01-01 reads as such, and Trello is given no due date (never a malformed one), reported."""
        view, problems = group.codecs["engineering"].decode(record("jira", due=date(1, 1, 1)))
        assert (view.values["due"], problems) == ("0001-01-01", [])
        fields, problems = group.codecs["sales"].encode({"due": "0001-01-01", "title": "Old"})
        assert fields == {"due": None, "title": "Old"}
        (problem,) = problems
        assert (problem.endpoint, problem.field, problem.value) == ("sales", "due", "0001-01-01")
        assert "1583-01-01 to 9999-12-31" in problem.message

    def test_year_1_from_trello_is_not_written_to_jira(self, group: Group) -> None:
        """Trello's instant in year 1 reads as 0001-01-01 (in Berlin), and Jira is given no due date, reported."""
        view, problems = group.codecs["sales"].decode(record("trello", due=datetime(1, 1, 1, tzinfo=UTC)))
        assert (view.values["due"], problems) == ("0001-01-01", [])
        fields, problems = group.codecs["engineering"].encode({"due": "0001-01-01"})
        assert fields == {"due": None}
        assert [(p.field, p.value) for p in problems] == [("due", "0001-01-01")]

    def test_the_first_and_last_days_held_are_written(self, group: Group) -> None:
        """1583-01-01 and 9999-12-31 are written; the day before the range is not."""
        for member in ("engineering", "sales"):
            codec = group.codecs[member]
            assert codec.encode({"due": "1583-01-01"}) == ({"due": date(1583, 1, 1)}, []), member
            assert codec.encode({"due": "9999-12-31"}) == ({"due": date(9999, 12, 31)}, []), member
            assert codec.encode({"due": "1582-12-31"})[0] == {"due": None}, member

    def test_a_year_1_instant_west_of_utc_is_reported_not_raised(self, tmp_path: Path) -> None:
        """Midnight UTC on 1 January of year 1 is still year 0 in New York: reported, never an OverflowError."""
        path = tmp_path / "g.yaml"
        path.write_text(
            "members:\n  engineering: {}\n  sales: {}\nfields:\n  due: {as_date: true, zone: America/New_York}\n"
        )
        group = compile_group(path, TOOLS, CAPABILITIES)
        view, problems = group.codecs["sales"].decode(record("trello", due=datetime(1, 1, 1, tzinfo=UTC)))
        assert "due" not in view.values
        assert [p.field for p in problems] == ["due"]
        fields, problems = group.codecs["sales"].encode({"due": "0001-01-01T00:00:00Z"})
        assert fields == {"due": None}
        assert [p.field for p in problems] == ["due"]

    def test_what_a_tool_holds_of_a_refused_value_reads_as_that_value(self, group: Group) -> None:
        """What encoding wrote is read back as the base value: no echo, no flapping, no label removed."""
        base = {
            "title": "x" * 300,
            "labels": ["launch", "needs review"],
            "due": "0001-01-01",
            "assignees": [],
        }
        codec = group.codecs["engineering"]
        written, _ = codec.encode(base)
        view, _ = codec.decode(record("jira", title=written["title"], labels=written["labels"], due=written["due"]))
        aligned = codec.align(view, base)
        assert {name: aligned.values[name] for name in ("title", "labels", "due")} == {
            "title": base["title"],
            "labels": base["labels"],
            "due": base["due"],
        }
        # A label added in Jira is still an addition, and the label Jira cannot hold is not taken as removed.
        edited, _ = codec.decode(record("jira", labels=("api", "launch")))
        assert codec.align(edited, base).values["labels"] == ["api", "launch", "needs review"]
        # A person's own title or date is a change.
        renamed, _ = codec.decode(record("jira", title="Renamed", due=date(2027, 1, 15)))
        assert codec.align(renamed, base).values == {"title": "Renamed", "due": "2027-01-15"}
        blank = {"title": "  "}
        untitled, _ = group.codecs["sales"].decode(record("trello", title=UNTITLED))
        assert group.codecs["sales"].align(untitled, blank).values["title"] == "  "


class TestPlacedFields:
    HEAD = (
        "members:\n  engineering: {}\n  sales: {}\n  marketing: {}\n"
        "fields:\n  title: {}\n  status: {map: {engineering: {Done: done}, sales: {Done: done}}}\n"
    )

    def compiled(self, tmp_path: Path, added: str) -> Group:
        path = tmp_path / "g.yaml"
        path.write_text(self.HEAD + added)
        return compile_group(path, TOOLS, CAPABILITIES)

    @pytest.mark.parametrize(
        ("added", "line", "message"),
        [
            ("  size: {at: {sales: {custom: Size}}}\n", 8, "fields.size needs a 'type'"),
            ("  size: {type: number, at: {sales: {custom: Size}}}\n", 8, r"does not say where \['engineering', 'm"),
            ("  size: {type: number}\n", 8, "unknown fields"),
            ("  due: {type: date}\n", 8, "'type' is for custom fields"),
            ("  priority: {}\n", 8, "fields.priority needs 'at'"),
            ("  due: {at: {sales: {custom: Due}}}\n", 8, "only .* and custom fields take 'at'"),
            ("  size: {type: text, members: [sales, engineering], at: {sales: {field: priority}, "
             "engineering: {custom: S}}}\n", 8, "only fields.priority can be kept in"),
            ("  size: {type: number, members: [sales, engineering], map: {sales: {a: b}}, "
             "at: {sales: {custom: S}, engineering: {custom: S}}}\n", 8, "a number field has no options to map"),
            ("  size: {type: numbr, members: [sales, engineering], at: {sales: {custom: S}}}\n", 8, "type"),
            ("  priority: {at: {engineering: {field: priority}, sales: {field: priority}, marketing: {custom: P}}}\n",
             8, r"Trello has no priority field of its own, so sales cannot keep fields.priority in \{field: "
             r"priority\}: keep it in a custom field .* or in labels"),
            ("  priority: {at: {sales: {custom: P},\n"
             "    engineering: {field: priority}, marketing: {field: priority}}}\n", 9, "Asana has no priority field"),
            ("  size: {type: enum, members: [sales, engineering], at: {sales: {labels: [S]}, "
             "engineering: {custom: S}}}\n", 8, r"only fields.priority can be kept in \{labels"),
            ("  priority: {members: [sales, engineering], at: {sales: {labels: []}, engineering: {field: priority}}}\n",
             8, "at least one"),
            ("  priority: {members: [sales, engineering], at: {sales: {labels: [P1, P1]}, "
             "engineering: {field: priority}}}\n", 8, "each label .* once"),
            ("  priority: {members: [sales, engineering], at: {sales: {labels: [P1], custom: P}, "
             "engineering: {field: priority}}}\n", 8, r"a place is \{custom"),
            ("  priority:\n    members: [sales, engineering]\n"
             "    at: {sales: {labels: [P1, P2]}, engineering: {field: priority}}\n"
             "    map: {sales: {P1: high, P3: low}}\n", 11, r"\['P3'\] are not among the labels that carry"),
        ],
    )  # fmt: skip
    def test_mistakes_are_errors_with_a_line_and_the_fix(
        self, tmp_path: Path, added: str, line: int, message: str
    ) -> None:
        """A custom field needs a type and a place at every holder; only status and priority of syncd's own take one."""
        with pytest.raises(FileError, match=rf"g.yaml:{line}: .*{message}"):
            self.compiled(tmp_path, added)

    def test_a_status_in_an_asana_enum_and_a_multi_field(self, tmp_path: Path) -> None:
        """Marketing's status lives in its Status enum; a multi field maps option by option; unmapped is reported."""
        path = tmp_path / "g.yaml"
        path.write_text(
            "members:\n  engineering: {}\n  marketing: {}\nfields:\n  title: {}\n"
            "  status:\n    at: {marketing: {custom: Status}}\n"
            "    map: {engineering: {To Do: todo, Done: done}, marketing: {Not started: todo, Done: done}}\n"
            "  regions:\n    type: multi\n    at: {engineering: {custom: Regions}, marketing: {custom: Channels}}\n"
            "    map: {marketing: {Web: EMEA, Email: APAC}}\n"
        )
        marketing = compile_group(path, TOOLS, CAPABILITIES).codecs["marketing"]
        task = record("asana", title="t", status="Backlog", custom={"Status": "Done", "Channels": ("Email", "Web")})
        view, problems = marketing.decode(task)
        assert view.values == {"title": "t", "status": "done", "regions": ["APAC", "EMEA"]}
        assert problems == []
        fields, problems = marketing.encode({"status": "todo", "regions": ["EMEA", "Americas"]})
        assert fields == {"status": Placed("Not started", custom="Status")}
        assert [(p.field, p.message) for p in problems] == [
            ("regions", "canonical 'Americas' maps to no option here: add it to fields.regions.map.marketing")
        ]
        view, problems = marketing.decode(record("asana", title="t", custom={"Status": "At risk", "Channels": ()}))
        assert "status" not in view.values
        assert [p.message for p in problems] == [
            "'At risk' has no canonical value: add it to fields.status.map.marketing"
        ]
        view, problems = marketing.decode(record("asana", title="t", custom={}))
        assert [p.message for p in problems] == [
            "asana has no custom field 'Status' here: fix fields.status.at.marketing",
            "asana has no custom field 'Channels' here: fix fields.regions.at.marketing",
        ]

    def test_history_is_named_by_the_canonical_fields_read_from_where_it_changed(self, tmp_path: Path) -> None:
        """Marketing keeps status in its Status enum: that field's change is a status change there and a section
        move is none; Jira's own priority and each tool's custom fields are named as the mapping names them, and a
        custom field the mapping does not use names nothing."""
        path = tmp_path / "g.yaml"
        path.write_text(
            "members:\n  engineering: {}\n  sales: {}\n  marketing: {}\nfields:\n  title: {}\n"
            "  status:\n    at: {marketing: {custom: Status}}\n"
            "    map: {engineering: {Done: done}, sales: {Done: done}, marketing: {Done: done}}\n"
            "  priority:\n    at: {engineering: {field: priority}, sales: {custom: Priority}, "
            "marketing: {custom: Priority}}\n"
            "  deal_size: {type: number, members: [engineering, sales], "
            "at: {engineering: {custom: Deal size}, sales: {custom: Deal size}}}\n"
        )
        group = compile_group(path, TOOLS, CAPABILITIES)
        changed = [
            FieldChange(name, T0, False, "gus@corp.example")
            for name in ("title", "status", "priority", custom_change("Priority"), custom_change("Status"))
        ] + [FieldChange(custom_change("Deal size"), T0, True), FieldChange(custom_change("Budget"), T0, False)]
        named = {m: [c.field for c in codec.history(changed)] for m, codec in group.codecs.items()}
        assert named == {
            "engineering": ["title", "status", "priority", "deal_size"],
            "sales": ["title", "status", "priority", "deal_size"],
            "marketing": ["title", "priority", "status"],
        }
        assert group.codecs["marketing"].history(changed)[2] == FieldChange("status", T0, False, "gus@corp.example")
        assert group.codecs["sales"].history(changed)[3] == FieldChange("deal_size", T0, True)


class TestPriorityInLabels:
    """A member's priority kept as labels (``at: {sales: {labels: [...]}}``): one label per level, apart from labels."""

    FILE = (
        "members:\n  engineering: {}\n  sales: {}\nfields:\n  title: {}\n  labels: {rule: union}\n"
        "  priority:\n    at: {engineering: {field: priority}, sales: {labels: [P1, P2, P3]}}\n"
        "    map: {engineering: {High: high, Medium: medium, Low: low}, sales: {P1: high, P2: medium, P3: low}}\n"
    )
    LEVELS = frozenset({"P1", "P2", "P3"})

    def compiled(self, tmp_path: Path, text: str | None = None) -> Group:
        path = tmp_path / "g.yaml"
        path.write_text(text or self.FILE)
        return compile_group(path, TOOLS, CAPABILITIES)

    def test_a_label_change_is_no_priority_change_in_the_history(self, tmp_path: Path) -> None:
        """The history says that labels changed, not which: at Sales it is a labels change only, never a person
        setting the priority (which a `latest` rule would weigh against another member's real change)."""
        group = self.compiled(tmp_path)
        changed = [FieldChange("labels", T0, False, "eli@corp.example"), FieldChange("priority", T0, False, "ana@x")]
        assert [c.field for c in group.codecs["sales"].history(changed)] == ["labels"]
        assert [c.field for c in group.codecs["engineering"].history(changed)] == ["labels", "priority"]

    def test_reading_one_label_none_or_several(self, tmp_path: Path) -> None:
        """One priority label is the priority, none is empty, several are reported and left out; none is a label."""
        sales = self.compiled(tmp_path).codecs["sales"]
        view, problems = sales.decode(record("trello", title="t", labels=("P2", "launch")))
        assert view.values == {"title": "t", "labels": ["launch"], "priority": "medium"}
        assert problems == []
        view, problems = sales.decode(record("trello", title="t", labels=("launch",)))
        assert view.values == {"title": "t", "labels": ["launch"], "priority": None}
        view, problems = sales.decode(record("trello", title="t", labels=("P1", "P3", "launch")))
        assert view.values == {"title": "t", "labels": ["launch"]}
        assert [(p.field, p.value, p.message) for p in problems] == [
            (
                "priority",
                "P1, P3",
                "the item has 2 of the labels that carry fields.priority here (P1, P3): keep one of them on the item",
            )
        ]

    def test_writing_the_priority_leaves_other_labels_and_labels_leave_the_priority(self, tmp_path: Path) -> None:
        """Each is written as a part of the labels; both together are the whole; a priority label is no label here."""
        group = self.compiled(tmp_path)
        sales = group.codecs["sales"]
        assert sales.encode({"priority": "low"}) == ({"labels": LabelPart(("P3",), among=self.LEVELS)}, [])
        assert sales.encode({"priority": None}) == ({"labels": LabelPart((), among=self.LEVELS)}, [])
        fields, problems = sales.encode({"labels": ["P1", "launch"]})
        assert fields == {"labels": LabelPart(("launch",), besides=self.LEVELS)}
        assert [(p.field, p.value) for p in problems] == [("labels", "P1")]
        assert "'P1' carries the priority at sales, so it is not written there as a label" in problems[0].message
        fields, _ = sales.encode({"labels": ["launch"], "priority": "high"}, create=True)
        assert fields == {"labels": ("P1", "launch")}
        # Jira keeps priority in its own field: P1 is an ordinary Jira label.
        assert group.codecs["engineering"].encode({"labels": ["P1"]}) == ({"labels": ("P1",)}, [])
        # A Jira label that is a priority label at sales is not taken as removed there.
        view, _ = sales.decode(record("trello", title="t", labels=("P2", "launch")))
        aligned = sales.align(view, {"labels": ["P1", "launch"], "priority": "medium"})
        assert aligned.values["labels"] == ["P1", "launch"]

    def test_a_scope_label_or_a_mapped_label_cannot_carry_the_priority(self, tmp_path: Path) -> None:
        """The member's scope label, or a label fields.labels maps, as a priority label: refused with file:line."""
        scoped = self.FILE.replace("  sales: {}", "  sales: {scope: {labels: [P2]}}")
        with pytest.raises(FileError, match=r"g.yaml:8: .*\['P2'\] scope sales's items"):
            self.compiled(tmp_path, scoped)
        mapped = self.FILE.replace("labels: {rule: union}", "labels: {rule: union, map: {sales: {P3: low}}}")
        with pytest.raises(FileError, match=r"g.yaml:6: .*\['P3'\] carry the priority at sales"):
            self.compiled(tmp_path, mapped)
