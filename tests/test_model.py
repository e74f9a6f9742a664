"""The tool-neutral values: people compare by e-mail, instants are always zoned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from syncd.model import Person, utc


class TestPerson:
    def test_the_same_email_is_the_same_person_across_tools(self) -> None:
        """A Jira accountId and a Trello member id with one e-mail are one person."""
        assert Person("ana@corp.example", account="712020:a", name="Ana") == Person("ana@corp.example", account="5f0c")

    def test_people_sort_by_email_for_stable_assignee_tuples(self) -> None:
        """Assignee tuples sort deterministically, so two reads of the same members compare equal."""
        people = [Person("eli@corp.example"), Person("ana@corp.example")]
        assert [p.email for p in sorted(people)] == ["ana@corp.example", "eli@corp.example"]

    @pytest.mark.parametrize(
        ("person", "label"),
        [
            (Person("ana@corp.example", name="Ana"), "ana@corp.example"),
            (Person(None, account="712020:x", name="Ana Lima"), "Ana Lima"),
            (Person(None, account="712020:x"), "712020:x"),
            (Person(None), "unknown person"),
        ],
    )
    def test_label_prefers_the_email(self, person: Person, label: str) -> None:
        """Messages name a person by e-mail when known, else by name, else by account."""
        assert person.label() == label


class TestUtc:
    def test_converts_an_aware_datetime(self) -> None:
        """An instant in any zone becomes the same instant in UTC."""
        berlin = timezone(timedelta(hours=1))
        assert utc(datetime(2026, 11, 24, 11, 5, tzinfo=berlin)) == datetime(2026, 11, 24, 10, 5, tzinfo=UTC)
        assert utc(datetime(2026, 11, 24, 11, 5, tzinfo=berlin)).tzinfo is UTC

    def test_refuses_a_naive_datetime(self) -> None:
        """A datetime without a zone is an error, never silently read as local or UTC."""
        with pytest.raises(ValueError, match="refuse to guess"):
            utc(datetime(2026, 11, 24, 10, 5))  # noqa: DTZ001 - the naive datetime is the point of the test
