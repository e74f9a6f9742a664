"""The behaviour every connector owes the engine, written once and run against each tool's emulator.

A connector's test module subclasses :class:`ConnectorContract` and provides three fixtures: ``emulator`` (a
started sandbox emulator), ``connector`` (the connector under test, on the real SDK, pointed at it) and ``human``
(a :class:`Human` that edits items the way a person in that tool would, through the emulator's act-as API).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, Protocol

import pytest

from connectors.base import Connector
from sandbox.core import Emulator, FaultRule
from syncd.errors import ChangedMeanwhile, ConnectorError, OutcomeUnknown
from syncd.model import CUSTOM_CHANGE, ChangeBatch, LabelPart, Person, Placed, custom_change, last_changes
from syncd.uncertain import plain

LOST_ANSWERS = ("applied-then-502", "applied-then-504", "applied-then-dropped", "not-applied-then-502")
"""The ways a write's answer is lost: the service applied it and a gateway answered 502 or 504, or the connection
dropped; or the service never applied it and the gateway answered 502."""
MAX_CREATE_REQUESTS = 12
"""A create with one lost answer: the POST, the look (syncd's id, the search or listing, a candidate read, an
attachment list), a second POST when nothing was found, and the marker attachment where it is a second request."""
MAX_COMMENT_REQUESTS = 4
"""A comment with one lost answer: the POST, the read of the comments, and a second POST when it was not there."""


def lost_answer(fault: str, *, path: str) -> FaultRule:
    """One lost answer on the first POST to ``path``."""
    kinds = {
        "applied-then-502": FaultRule(kind="status_after", status=502),
        "applied-then-504": FaultRule(kind="status_after", status=504),
        "applied-then-dropped": FaultRule(kind="drop_after"),
        "not-applied-then-502": FaultRule(kind="status", status=502),
    }
    rule = kinds[fault]
    rule.method, rule.path, rule.times = "POST", path, 1
    return rule


class Human(Protocol):
    """A person editing in the tool, outside syncd."""

    email: str
    """Who they are, as the department's people directory names them."""

    def rename(self, ref: str, title: str) -> None:
        """Change the item's title."""
        ...

    def delete(self, ref: str) -> None:
        """Delete the item for good."""
        ...

    def move(self, ref: str, status: str) -> None:
        """Move the item to another status (Jira transitions, Trello list, Asana section)."""
        ...

    def set_custom(self, ref: str, name: str, value: Any) -> None:
        """Set the custom field called ``name`` as a person picks it in the tool (None clears it)."""
        ...


def drain(connector: Connector, cursor: dict[str, Any] | None) -> tuple[list[ChangeBatch], dict[str, Any]]:
    """Poll until a batch is empty; return the batches and the last cursor (JSON round-tripped, as stored)."""
    batches = []
    for _ in range(5):
        batch = connector.changes(cursor)
        cursor = json.loads(json.dumps(batch.cursor))
        batches.append(batch)
        if not batch.records and not batch.deleted and not batch.full_scan:
            break
    assert cursor is not None
    return batches, cursor


def refs_in(batches: list[ChangeBatch]) -> set[str]:
    """Every ref any batch reported as changed."""
    return {record.ref for batch in batches for record in batch.records}


def _slug(name: str) -> str:
    """A field name as a marker's part (markers carry no spaces)."""
    return name.lower().replace(" ", "-")


CustomCase = tuple[str, Any, Any, Any]
"""One custom field case: the field's name, a value to write, how a read returns it, and how a person sets it."""


class ConnectorContract:
    """Subclass me with ``emulator``, ``connector``, ``fresh_connector``, ``human``, ``statuses``, ``someone``."""

    custom_cases: ClassVar[tuple[CustomCase, ...]] = ()
    """One case per custom field type the tool offers (the sandbox's seeded fields)."""
    custom_blank: ClassVar[dict[str, Any]] = {}
    """How a read returns a cleared field, where not None (a multi's ``()``, a checkbox's None)."""

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """One test per custom field type (``custom_case``), so a failing type hides none of the others."""
        if "custom_case" in metafunc.fixturenames:
            cases = self.custom_cases
            metafunc.parametrize("custom_case", cases, ids=[case[0] for case in cases])

    def test_custom_field_written_in_a_create_reads_back(self, connector: Connector, custom_case: CustomCase) -> None:
        """A custom field written by name in a create is in the create's answer and in a later read."""
        name, value, read, _ = custom_case
        created = connector.create(
            {"title": f"Contract: create {name}", f"c:{name}": Placed(value, custom=name)},
            marker=f"sync-custom-create-{_slug(name)}",
        )
        (fetched,) = connector.fetch([created.ref])
        assert created.fields["custom"][name] == read
        assert fetched.fields["custom"][name] == read

    def test_custom_field_written_in_an_update_then_cleared(
        self, connector: Connector, custom_case: CustomCase
    ) -> None:
        """A custom field written by name in an update reads back; cleared (None), it reads as the type's blank."""
        name, value, read, _ = custom_case
        created = connector.create({"title": f"Contract: update {name}"}, marker=f"sync-custom-update-{_slug(name)}")
        written = connector.update(created.ref, {f"c:{name}": Placed(value, custom=name)})
        (fetched,) = connector.fetch([created.ref])
        assert written.fields["custom"][name] == read
        assert fetched.fields["custom"][name] == read
        cleared = connector.update(created.ref, {f"c:{name}": Placed(None, custom=name)})
        (fetched,) = connector.fetch([created.ref])
        assert cleared.fields["custom"][name] == self.custom_blank.get(name)
        assert fetched.fields["custom"][name] == self.custom_blank.get(name)

    def test_a_persons_custom_field_edit_comes_through_the_feed(
        self, connector: Connector, human: Human, custom_case: CustomCase
    ) -> None:
        """A person setting a custom field is in the next batch, with the value read by the field's name."""
        name, _, read, picked = custom_case
        created = connector.create({"title": f"Contract: feed {name}"}, marker=f"sync-custom-feed-{_slug(name)}")
        _, cursor = drain(connector, None)
        human.set_custom(created.ref, name, picked)
        changed = {record.ref: record for record in connector.changes(cursor).records}
        assert changed[created.ref].fields["custom"][name] == read

    def test_part_of_the_labels_is_written_and_the_rest_left_alone(self, connector: Connector) -> None:
        """A LabelPart sets the labels it covers (a set, or all but a set) and leaves the item's others as they are."""
        levels = frozenset({"p-high", "p-low"})
        created = connector.create(
            {"title": "Contract: label part", "labels": LabelPart(("p-high",), among=levels)}, marker="sync-part-1"
        )
        assert created.fields["labels"] == ("p-high",)
        connector.update(created.ref, {"labels": ("contract", "p-high")})
        edits = (
            (LabelPart(("p-low",), among=levels), ("contract", "p-low")),
            (LabelPart(("launch",), besides=levels), ("launch", "p-low")),
            (LabelPart((), among=levels), ("launch",)),
        )
        for part, expected in edits:
            written = connector.update(created.ref, {"labels": part})
            (fetched,) = connector.fetch([created.ref])
            assert written.fields["labels"] == expected, part
            assert fetched.fields["labels"] == expected, part

    def test_deleting_an_item_already_gone_counts_as_deleted(self, connector: Connector, human: Human) -> None:
        """delete() of an item deleted before (by a person, or by syncd's own lost-answer delete) returns quietly."""
        created = connector.create({"title": "Contract: deleted twice"}, marker="sync-delete-twice-1")
        human.delete(created.ref)
        connector.delete(created.ref)
        mine = connector.create({"title": "Contract: deleted by syncd twice"}, marker="sync-delete-twice-2")
        connector.delete(mine.ref)
        connector.delete(mine.ref)
        batch = connector.changes(None)
        assert not {created.ref, mine.ref} & {record.ref for record in batch.records}

    due_instants: ClassVar[bool] = True
    counts_unknown: ClassVar[bool] = False
    """Whether an update's answer lacks the comment count (Asana has none; Jira and Trello give it)."""
    """Whether the tool's due field holds an instant (Trello, Asana) and not only a date (Jira)."""
    create_path: ClassVar[str]
    """A regular expression matching the path of the tool's create request (for fault injection)."""
    comment_path: ClassVar[str]
    """A regular expression matching the path of the tool's comment request (for fault injection)."""
    marker_in_reads: ClassVar[bool] = True
    """Whether every read carries the marker (Asana's is an attachment, read only when a create is looked up)."""

    def test_create_then_read_back_every_field(
        self, connector: Connector, statuses: tuple[str, str], someone: Person
    ) -> None:
        """A created item reads back with the values written and the marker it was given."""
        fields = {
            "title": "Contract: create",
            "status": statuses[1],
            "assignees": (someone,),
            "due": date(2027, 3, 1),
            "labels": ("contract", "launch"),
        }
        created = connector.create(fields, marker="sync-create-1")
        (fetched,) = connector.fetch([created.ref])
        for record in (created, fetched):
            assert record.fields["title"] == "Contract: create"
            assert record.fields["status"] == statuses[1]
            assert [p.email for p in record.fields["assignees"]] == [someone.email]
            assert record.fields["due"] == self.expected_due(date(2027, 3, 1))
            assert set(record.fields["labels"]) >= {"contract", "launch"}
        assert created.marker == "sync-create-1"
        assert fetched.marker == ("sync-create-1" if self.marker_in_reads else None)
        if self.marker_in_reads:
            # Asana's marker attachment, added after the create's answer, moves modified_at (Asana lists adding an
            # attachment among what does): the next pass reads the task once more and finds nothing new.
            assert fetched.version == created.version

    def test_find_by_marker(self, connector: Connector, human: Human, statuses: tuple[str, str]) -> None:
        """An item syncd made is found by its marker after a person's edits; an unknown marker finds nothing."""
        sent = datetime.now(UTC)
        created = connector.create({"title": "Contract: marker"}, marker="sync-marker-1")
        human.rename(created.ref, "Contract: renamed by a person")
        human.move(created.ref, statuses[1])
        found = connector.find_by_marker("sync-marker-1", sent)
        assert found is not None
        assert found.ref == created.ref
        assert found.marker == "sync-marker-1"
        assert connector.find_by_marker("sync-never-made", sent) is None

    def test_update_each_field(self, connector: Connector, statuses: tuple[str, str], someone: Person) -> None:
        """Each field written on its own is what a read returns afterwards, and the version moves each time."""
        record = connector.create({"title": "Contract: update", "status": statuses[0]}, marker="sync-update-1")
        versions = {record.version}
        moment = datetime(2027, 4, 2, 15, 30, tzinfo=UTC)
        edits: tuple[dict[str, Any], ...] = (
            {"title": "Contract: renamed"},
            {"status": statuses[1]},
            {"assignees": (someone,)},
            {"due": date(2027, 4, 1)},
            {"due": moment},
            {"due": None},
            {"labels": ("contract",)},
            {"labels": ()},
            {"assignees": ()},
        )
        for fields in edits:
            if isinstance(fields.get("due"), datetime) and not self.due_instants:
                continue
            record = connector.update(record.ref, fields)
            (fetched,) = connector.fetch([record.ref])
            for name, value in fields.items():
                if name == "assignees":
                    assert [p.email for p in fetched.fields[name]] == [p.email for p in value]
                elif name == "labels":
                    assert tuple(sorted(fetched.fields[name])) == value
                elif name == "due":
                    assert fetched.fields[name] == self.expected_due(value), name
                else:
                    assert fetched.fields[name] == value, name
            versions.add(record.version)
        assert len(versions) > 1

    def test_first_poll_is_a_full_scan_then_idle(self, connector: Connector, emulator: Emulator) -> None:
        """No cursor: every item in scope; then, with nothing changed, an empty batch."""
        first = connector.changes(None)
        assert first.full_scan
        assert len(first.records) >= 5
        cursor = json.loads(json.dumps(first.cursor))
        idle = connector.changes(cursor)
        assert idle.records == ()
        assert idle.deleted == ()

    def test_a_persons_edit_comes_through_the_feed(self, connector: Connector, human: Human) -> None:
        """An edit made by a person in the tool is in the next batch, with the new value."""
        created = connector.create({"title": "Contract: feed"}, marker="sync-feed-1")
        _, cursor = drain(connector, None)
        human.rename(created.ref, "Renamed by a person")
        batch = connector.changes(cursor)
        changed = {record.ref: record for record in batch.records}
        assert changed[created.ref].fields["title"] == "Renamed by a person"

    def test_a_persons_status_move_comes_through_the_feed(
        self, connector: Connector, human: Human, statuses: tuple[str, str]
    ) -> None:
        """A person moving an item to another status is in the next batch with that status."""
        created = connector.create({"title": "Contract: moved", "status": statuses[0]}, marker="sync-moved-1")
        _, cursor = drain(connector, None)
        human.move(created.ref, statuses[1])
        changed = {record.ref: record for record in connector.changes(cursor).records}
        assert changed[created.ref].fields["status"] == statuses[1]

    own_writes_in_feed: ClassVar[bool] = True
    """Whether the feed reports the connector's own writes (Asana's leaves out the events syncd's account caused)."""

    def test_own_write_comes_back_with_the_version_it_returned(self, connector: Connector) -> None:
        """The feed reports the connector's own write with the version the write returned (so it is not echoed),
        or, where it can tell syncd's own events, not at all.
        """
        created = connector.create({"title": "Contract: echo"}, marker="sync-echo-1")
        _, cursor = drain(connector, None)
        written = connector.update(created.ref, {"title": "Contract: echo 2"})
        batch = connector.changes(cursor)
        seen = {record.ref: record for record in batch.records}
        if self.own_writes_in_feed:
            assert seen[created.ref].version == written.version
        else:
            assert created.ref not in seen

    def test_a_write_planned_before_a_persons_edit_is_refused(self, connector: Connector, human: Human) -> None:
        """With the version the plan was read at, a person's edit made since is never overwritten (re-planned)."""
        created = connector.create({"title": "Contract: read"}, marker="sync-meanwhile-1")
        human.rename(created.ref, "Renamed by a person meanwhile")
        with pytest.raises(ChangedMeanwhile):
            connector.update(created.ref, {"title": "syncd's older plan"}, expected_version=created.version)
        assert connector.fetch([created.ref])[0].fields["title"] == "Renamed by a person meanwhile"

    def test_a_write_from_the_current_version_goes_through(self, connector: Connector, human: Human) -> None:
        """The check refuses only a changed item: planned from the version it still has, the write is made."""
        created = connector.create({"title": "Contract: current"}, marker="sync-current-1")
        human.rename(created.ref, "Renamed by a person first")
        current = connector.fetch([created.ref])[0]
        written = connector.update(created.ref, {"title": "syncd's plan"}, expected_version=current.version)
        assert written.fields["title"] == "syncd's plan"

    def test_history_tells_which_field_changed_when_and_by_whom(
        self, connector: Connector, human: Human, emulator: Emulator, statuses: tuple[str, str]
    ) -> None:
        """From the tool's history: a rename, then a move an hour later, each at its own time (for ``latest``)."""
        created = connector.create({"title": "Contract: history", "status": statuses[0]}, marker="sync-history-1")
        emulator.clock.advance(60)
        human.rename(created.ref, "Renamed an hour in")
        emulator.clock.advance(3600)
        human.move(created.ref, statuses[1])
        moved = connector.fetch([created.ref])[0]
        history = connector.history(created.ref)
        times = last_changes(history)
        assert times["status"] - times["title"] >= timedelta(minutes=59)
        assert abs(times["status"] - moved.modified) < timedelta(seconds=5)
        assert times["title"] > created.modified
        # The person's changes are theirs; syncd's own (creating the item) are its own.
        people = {change.field for change in history if not change.by_self}
        assert {"title", "status"} <= people
        assert all(change.by_self for change in history if change.at <= created.modified)

    def test_history_names_the_person_of_each_change(
        self, connector: Connector, human: Human, emulator: Emulator, statuses: tuple[str, str]
    ) -> None:
        """A person's change of a field reads back with that person's e-mail (the audit log's attribution)."""
        created = connector.create({"title": "Contract: who", "status": statuses[0]}, marker="sync-history-2")
        emulator.clock.advance(60)
        human.rename(created.ref, "Renamed by a person")
        history = connector.history(created.ref)
        renames = [change for change in history if change.field == "title" and not change.by_self]
        assert renames
        assert {change.person for change in renames} == {human.email}

    def test_history_names_the_person_and_time_of_each_custom_field_edit(
        self, connector: Connector, human: Human, emulator: Emulator
    ) -> None:
        """A person's edit of each custom field, a minute apart: in the history by the field's name, at its own
        time and with the person's e-mail (what ``latest`` weighs and the audit names, once the mapping names it)."""
        if not self.custom_cases:
            pytest.skip("the tool has no custom fields")
        created = connector.create({"title": "Contract: custom history"}, marker="sync-custom-history-1")
        edited: dict[str, datetime] = {}
        for name, _, _, picked in self.custom_cases:
            emulator.clock.advance(60)
            human.set_custom(created.ref, name, picked)
            edited[custom_change(name)] = emulator.clock.now()
        history = connector.history(created.ref)
        theirs = [change for change in history if not change.by_self and change.field.startswith(CUSTOM_CHANGE)]
        times = last_changes(theirs)
        assert set(times) == set(edited)
        for field, at in edited.items():
            assert abs(times[field] - at) < timedelta(seconds=5), field
        assert {change.person for change in theirs} == {human.email}

    def test_a_writes_answer_counts_the_comments_or_says_it_cannot(self, connector: Connector) -> None:
        """What a write returns tells how many comments the record has, or None: then the engine must read them.

        A comment posted during syncd's write is inside the version syncd keeps as its own; the count is how the
        engine notices it without reading every record's comments after every write.
        """
        created = connector.create({"title": "Contract: count"}, marker="sync-count-1")
        assert created.comments in (0, None)
        connector.add_comment(created.ref, self.rich_text("One"))
        connector.add_comment(created.ref, self.rich_text("Two"))
        written = connector.update(created.ref, {"title": "Contract: counted"})
        assert written.comments in (2, None)
        assert (written.comments is None) == self.counts_unknown

    def test_cursor_survives_a_restart(self, connector: Connector, human: Human, fresh_connector: Connector) -> None:
        """A cursor stored as JSON and handed to a new connector instance resumes where the old one stopped."""
        created = connector.create({"title": "Contract: resume"}, marker="sync-resume-1")
        _, cursor = drain(connector, None)
        human.rename(created.ref, "Renamed while syncd was down")
        batch = fresh_connector.changes(cursor)
        assert created.ref in {record.ref for record in batch.records}

    def test_a_deletion_is_reported(self, connector: Connector, human: Human) -> None:
        """An item a person deletes is reported as deleted (or no longer fetchable), never silently forgotten."""
        created = connector.create({"title": "Contract: delete"}, marker="sync-delete-1")
        _, cursor = drain(connector, None)
        human.delete(created.ref)
        batch = connector.changes(cursor)
        assert created.ref in batch.deleted
        assert connector.fetch([created.ref]) == []

    def test_archive_takes_the_item_out_of_active_work(self, connector: Connector) -> None:
        """Archiving is reversible and visible: the record says archived."""
        created = connector.create({"title": "Contract: archive"}, marker="sync-archive-1")
        archived = connector.archive(created.ref)
        assert archived.archived

    def test_restore_brings_an_archived_item_back(self, connector: Connector) -> None:
        """Restoring undoes the archive through the tool's own API (a rejected mass archive): active again, and
        restoring an item that is not archived changes nothing."""
        created = connector.create({"title": "Contract: restore"}, marker="sync-restore-1")
        connector.archive(created.ref)
        restored = connector.restore(created.ref)
        assert not restored.archived
        (fetched,) = connector.fetch([created.ref])
        assert not fetched.archived
        assert fetched.fields["title"] == "Contract: restore"
        assert not connector.restore(created.ref).archived

    @pytest.mark.parametrize("fault", LOST_ANSWERS)
    def test_an_archive_whose_answer_is_lost_archives_once(
        self, connector: Connector, emulator: Emulator, fault: str
    ) -> None:
        """Every write of an archive losing its first answer (Asana's is a POST): archived, and no error."""
        created = connector.create({"title": f"Contract: lost archive {fault}"}, marker=f"sync-lost-archive-{fault}")
        rule = lost_answer(fault, path=".")
        rule.method, rule.writes = None, True
        emulator.faults.add(rule)
        assert connector.archive(created.ref).archived
        (fetched,) = connector.fetch([created.ref])
        assert fetched.archived

    def test_comments_round_trip(self, connector: Connector) -> None:
        """A comment added is listed, with its author and body, oldest first."""
        created = connector.create({"title": "Contract: comments"}, marker="sync-comments-1")
        first = connector.add_comment(created.ref, self.rich_text("First"))
        connector.add_comment(created.ref, self.rich_text("Second"))
        comments = connector.comments(created.ref)
        assert [c.id for c in comments][:1] == [first.id]
        assert len(comments) == 2
        assert "Second" in comments[1].body

    def test_describe_lists_statuses_and_people(
        self, connector: Connector, statuses: tuple[str, str], someone: Person
    ) -> None:
        """The schema names the statuses the mapping may use and the people it may assign."""
        schema = connector.describe()
        assert set(statuses) <= set(schema.statuses)
        assert someone.email in {p.email for p in schema.people}

    @staticmethod
    def expected_due(value: date | datetime | None) -> date | datetime | None:
        """How a written due value reads back (a tool with only datetimes reads a date back as an instant)."""
        return value

    @staticmethod
    def rich_text(text: str) -> str:
        """The tool's native rich text for a plain sentence (overridden per tool)."""
        return text

    # ----- faults: what the network and the service do to a connector ----------------------------------------

    def test_a_rate_limit_is_waited_out(self, connector: Connector, emulator: Emulator) -> None:
        """A 429 asking for 1 s is honoured: the call succeeds, and not before a second has passed."""
        created = connector.create({"title": "Contract: 429"}, marker="sync-429-1")
        emulator.faults.add(FaultRule(kind="status", status=429, times=1, retry_after="1"))
        started = time.monotonic()
        assert [record.ref for record in connector.fetch([created.ref])] == [created.ref]
        assert time.monotonic() - started >= 1.0

    def test_a_burst_of_server_errors_is_retried(self, connector: Connector, emulator: Emulator) -> None:
        """Two 503s in a row, then success: the caller sees only the success."""
        created = connector.create({"title": "Contract: 503"}, marker="sync-503-1")
        emulator.faults.add(FaultRule(kind="status", status=503, times=2))
        assert [record.ref for record in connector.fetch([created.ref])] == [created.ref]

    @pytest.mark.parametrize("fault", LOST_ANSWERS)
    def test_a_create_whose_answer_is_lost_makes_exactly_one_item(
        self, connector: Connector, emulator: Emulator, fault: str
    ) -> None:
        """Applied then 502, 504 or dropped, or refused with a 502: one item exists, looked up in a few requests."""
        title, marker = f"Contract: lost create {fault}", f"sync-lost-{fault}"
        sent = datetime.now(UTC)
        emulator.faults.add(lost_answer(fault, path=self.create_path))
        before = emulator.request_count()
        record = connector.create({"title": title}, marker=marker)
        made = emulator.request_count() - before
        assert made <= MAX_CREATE_REQUESTS, f"{made} requests for one create with a lost answer"
        assert [r.ref for r in connector.changes(None).records if r.fields["title"] == title] == [record.ref]
        found = connector.find_by_marker(marker, sent)
        assert found is not None
        assert found.ref == record.ref

    def test_a_create_that_timed_out_makes_exactly_one_item(
        self, impatient_connector: Connector, emulator: Emulator
    ) -> None:
        """The service applied the create but answered after the client gave up: one item, found by its marker."""
        title = "Contract: slow create"
        emulator.faults.add(FaultRule(kind="delay_after", delay_ms=1500, method="POST", path=self.create_path, times=1))
        record = impatient_connector.create({"title": title}, marker="sync-slow-1")
        listed = [r.ref for r in impatient_connector.changes(None).records if r.fields["title"] == title]
        assert listed == [record.ref]

    def test_a_create_is_never_sent_blind(self, connector: Connector, emulator: Emulator) -> None:
        """Every create answer lost: at most the policy's attempts, each after a look that found nothing sent."""
        emulator.faults.add(FaultRule(kind="status", status=502, method="POST", path=self.create_path))
        with pytest.raises(OutcomeUnknown):
            connector.create({"title": "Contract: never answered"}, marker="sync-never-1")
        titles = [r.fields["title"] for r in connector.changes(None).records]
        assert "Contract: never answered" not in titles

    def test_a_create_refused_outright_says_nothing_was_written(self, connector: Connector, emulator: Emulator) -> None:
        """A clear refusal of the create itself: the error says no item exists, so the writer need not look for one.

        (Looking costs Jira a wait for its search index: a tool refusing every create would stall each pass.)
        """
        emulator.faults.add(FaultRule(kind="status", status=400, method="POST", path=self.create_path, times=1))
        with pytest.raises(ConnectorError) as refused:
            connector.create({"title": "Contract: refused"}, marker="sync-refused-1")
        assert refused.value.nothing_written
        assert not isinstance(refused.value, OutcomeUnknown)
        titles = [r.fields["title"] for r in connector.changes(None).records]
        assert "Contract: refused" not in titles

    @pytest.mark.parametrize("fault", LOST_ANSWERS)
    def test_a_comment_whose_answer_is_lost_is_posted_once(
        self, connector: Connector, emulator: Emulator, fault: str
    ) -> None:
        """A comment applied (or refused) and its answer lost is found by its text; never posted twice."""
        created = connector.create({"title": f"Contract: lost comment {fault}"}, marker=f"sync-comment-{fault}")
        body = self.rich_text(f"mirrored once ({fault})\n\n_mirrored by syncd · sales/{fault}_")
        emulator.faults.add(lost_answer(fault, path=self.comment_path))
        before = emulator.request_count()
        connector.add_comment(created.ref, body)
        assert emulator.request_count() - before <= MAX_COMMENT_REQUESTS
        texts = [plain(c.body) for c in connector.comments(created.ref)]
        assert texts.count(plain(body)) == 1
