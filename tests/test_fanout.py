"""The fan-out that sends an item's requests to different tools at once (syncd.fanout)."""

from __future__ import annotations

import functools
import threading

from syncd.errors import OutcomeUnknown
from syncd.fanout import each
from syncd.uncertain import LANDED, recording, send_once


def test_the_calls_run_at_the_same_time() -> None:
    """Three calls that each wait for the other two: run one after another, the barrier would break."""
    barrier = threading.Barrier(3, timeout=5)

    def meet(name: str) -> str:
        barrier.wait()
        return name

    assert each({name: functools.partial(meet, name) for name in ("jira", "trello", "asana")}) == {
        "jira": "jira",
        "trello": "trello",
        "asana": "asana",
    }


def test_a_failing_call_is_handed_back_and_the_others_finish() -> None:
    def refuse() -> str:
        raise ValueError("refused")

    outcomes = each({"jira": lambda: "written", "trello": refuse, "asana": lambda: "written"})
    assert outcomes["jira"] == outcomes["asana"] == "written"
    assert isinstance(outcomes["trello"], ValueError)
    assert list(outcomes) == ["jira", "trello", "asana"]  # in the order asked


def test_a_lost_answer_found_in_another_thread_reaches_the_callers_audit() -> None:
    """An uncertain write resolved inside a fanned-out call is collected by the block that sent it."""

    def lost() -> str:
        raise OutcomeUnknown("trello", "502 Bad Gateway")

    def write() -> str:
        return send_once(lost, lambda: "found", tool="trello", what="create")

    with recording() as uncertain:
        outcomes = each({"trello": write, "asana": lambda: "written"})
    assert outcomes == {"trello": "found", "asana": "written"}
    assert [(event.tool, event.outcome) for event in uncertain] == [("trello", LANDED)]


def test_a_call_that_fans_out_again_runs_its_calls_in_turn() -> None:
    """A call on the shared pool never waits for the pool itself: its own calls run in its thread."""
    outer = threading.get_ident()

    def inner() -> dict[str, int | Exception]:
        return each({"a": threading.get_ident, "b": threading.get_ident})

    outcomes = each({"x": inner, "y": inner})
    nested = outcomes["x"]
    assert isinstance(nested, dict)
    assert nested["a"] == nested["b"] != outer  # both in the pool thread that ran "x"
