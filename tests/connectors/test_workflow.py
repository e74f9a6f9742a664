"""Planning Jira status moves over a learned workflow graph, without any I/O."""

from __future__ import annotations

from connectors.jira.workflow import Transition, Workflow


def _workflow() -> Workflow:
    workflow = Workflow()
    workflow.learn("To Do", [Transition("11", "Start work", "In Progress")])
    workflow.learn(
        "In Progress",
        [Transition("21", "Request review", "In Review"), Transition("41", "Block", "Blocked")],
    )
    workflow.learn(
        "In Review",
        [Transition("31", "Approve", "Done", ("resolution",)), Transition("22", "Request changes", "In Progress")],
    )
    return workflow


class TestWorkflow:
    def test_shortest_path_over_several_transitions(self) -> None:
        """To Do -> Done takes Start work, Request review, Approve: the fewest steps."""
        path = _workflow().path("To Do", "Done")
        assert [step.name for step in path or []] == ["Start work", "Request review", "Approve"]

    def test_already_there_is_an_empty_path(self) -> None:
        """Moving to the current status needs no transition."""
        assert _workflow().path("In Review", "In Review") == []

    def test_unreachable_is_none(self) -> None:
        """Done has no known way out: nothing reaches To Do from it."""
        assert _workflow().path("Done", "To Do") is None

    def test_statuses_never_explored_are_reported(self) -> None:
        """Blocked and Done are targets whose own transitions were never read."""
        assert _workflow().unexplored() == {"Blocked", "Done"}

    def test_requirements_name_what_a_config_must_supply(self) -> None:
        """Reaching Done needs a resolution; no other status needs anything."""
        assert _workflow().requirements() == {"Done": ("resolution",)}

    def test_learning_again_replaces_what_was_known(self) -> None:
        """A workflow edited by an admin is re-learned, not merged with stale edges."""
        workflow = _workflow()
        workflow.learn("To Do", [Transition("12", "Skip ahead", "In Review")])
        assert [step.name for step in workflow.path("To Do", "In Review") or []] == ["Skip ahead"]
