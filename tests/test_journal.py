"""The journal's typed steps: what the executor notes is what recovery reads, and older entries still read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from syncd import journal
from syncd.journal import JournalStep
from syncd.model import Record
from syncd.plan import Archive, Create, Unlink, Write

T0 = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def record() -> Record:
    return Record(tool="jira", ref="ENG-1", version="7", modified=T0, fields={})


class TestJournalSteps:
    @pytest.mark.parametrize(
        "step",
        [
            Write("engineering", "ENG-1", {"title": "Launch"}, "title from sales"),
            Create("sales", {"title": "Launch"}, "new in engineering"),
            Archive("marketing", "t1", "archived in sales"),
            Unlink("sales", "c1", "left the board's scope"),
        ],
        ids=lambda step: step.kind,
    )
    def test_a_planned_step_survives_the_store_s_json(self, step: Write | Create | Archive | Unlink) -> None:
        """Each kind of step, with the record it was planned from, reads back as it was written."""
        kept = journal.planned(step, record())
        again = JournalStep.from_json(kept.to_json())
        assert again == kept
        assert again.kind == step.kind
        assert again.seen_version == "7"
        assert again.seen_at == T0
        assert not again.started
        assert not again.done

    def test_a_step_keeps_whose_changes_its_values_carry(self) -> None:
        """Origins, the people the plan knew and the origin's read time, for its own fields only; an entry written
        before they were kept reads with none."""
        step = Write("marketing", "t1", {"title": "Launch", "due": "2027-02-01"}, "from sales and engineering")
        kept = journal.planned(
            step,
            None,
            origins={"title": "sales", "due": "engineering", "status": "engineering"},
            people={"title": "eli@corp.example", "status": "ana@corp.example"},
            read={"sales": Record(tool="trello", ref="c1", version="3", modified=T0, fields={}), "marketing": record()},
        )
        again = JournalStep.from_json(kept.to_json())
        assert again.origins == {"title": "sales", "due": "engineering"}
        assert again.people == {"title": "eli@corp.example"}
        assert again.origin_read == {"sales": T0}
        data = kept.to_json()
        for key in ("origins", "people", "origin_read"):
            del data[key]
        old = JournalStep.from_json(data)
        assert (old.origins, old.people, old.origin_read) == ({}, {}, {})

    def test_progress_notes_merge_into_the_step_as_the_store_does(self) -> None:
        """started, done, uncertain and committed, merged key by key as ``Tx.journal_step`` merges them."""
        data = journal.planned(Write("engineering", "ENG-1", {"status": "done"}, "status from sales"), None).to_json()
        data |= journal.started(T0)
        step = JournalStep.from_json(data)
        assert step.started
        assert step.sent_at(datetime(2000, 1, 1, tzinfo=UTC)) == T0
        assert not step.done
        data |= journal.done("8") | journal.uncertain("502 from the gateway") | journal.committed()
        step = JournalStep.from_json(data)
        assert (step.done, step.done_version, step.uncertain, step.committed) == (
            True,
            "8",
            "502 from the gateway",
            True,
        )
        assert step.cut_short() == "and left unfinished (502 from the gateway)"

    def test_a_write_done_with_no_version_is_still_done(self) -> None:
        """A tool may answer a write without a version: the step is done all the same (recovery must not redo it)."""
        data = journal.planned(Archive("marketing", "t1", "archived"), None).to_json() | journal.done(None)
        assert JournalStep.from_json(data).done

    def test_an_entry_written_by_an_older_syncd_reads(self) -> None:
        """Entries journaled before the steps were typed (kind by class name, no progress keys) still recover."""
        old = {
            "kind": "Create",
            "endpoint": "sales",
            "values": {"title": "Launch"},
            "reason": "new in engineering",
            "seen_version": None,
            "seen_at": None,
            "started": True,
        }
        step = JournalStep.from_json(old)
        assert step.kind == "create"
        assert step.started
        assert step.started_at is None
        assert step.sent_at(T0) == T0
        assert step.cut_short() == "before a crash"

    def test_an_unknown_kind_is_refused_not_guessed(self) -> None:
        """A step whose kind syncd does not know cannot be recovered safely: it is an error, said plainly."""
        with pytest.raises(ValueError, match="unknown kind 'Move'"):
            JournalStep.from_json({"kind": "Move", "endpoint": "sales"})
