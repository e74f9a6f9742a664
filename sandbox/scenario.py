"""The worked example: people in three departments edit one launch item so that every conflict rule decides once.

``syncd demo`` plays these edits against the sandbox, and the tests play them through the shipped ``config/`` and
``mappings/launch-requests.yaml`` to show each rule's outcome, and a priority (custom field) carried as it is.
The item is the seeded Jira issue
:data:`SUBJECT`, which the first pass mirrors into Trello and Asana. Between the edits the shared clock moves on a
minute, so "latest" has an unambiguous answer. :data:`EXPECTED` is the canonical item once the passes have run and
a lead has taken Sales' date for the held ``due`` conflict (:data:`MANUAL_TAKE`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.org import Sandbox

SUBJECT = "Launch page for the Q1 release"
"""The seeded Jira issue every edit is about (and its mirrors, found by the same title after the first pass)."""

MANUAL_TAKE = "sales"
"""Whose value a lead takes for the ``manual`` conflict (``syncd conflicts resolve ID --take sales``)."""


@dataclass(frozen=True)
class Edit:
    """One person's change to one field in one tool, and the rule it exercises."""

    field: str
    rule: str
    person: str
    tool: str
    what: str
    apply: Callable[[Sandbox, Refs], None]


@dataclass(frozen=True)
class Refs:
    """The subject's id in each tool."""

    jira: str
    trello: str
    asana: str


EXPECTED: dict[str, Any] = {
    "title": "Q1 launch page",
    "status": "done",
    "assignees": ["ben@corp.example"],
    "labels": ["api", "launch", "urgent"],
    "due": "2027-02-01",
    "priority": "medium",
}
"""The canonical values every tool ends with (the description is checked by its two merged edits)."""

DESCRIPTION_EDITS = ("Build the **launch** page for Q1.", "Sales note: Acme wants a preview.")
"""Engineering's edit of the first line and Sales' added paragraph: merge-text keeps both."""


def find(sandbox: Sandbox, title: str = SUBJECT) -> Refs:
    """The subject in each tool, by title (call after the first pass mirrored it)."""
    jira = next(key for key, issue in sandbox.jira.state.issues.items() if issue.summary == title)
    trello = next(card.id for card in sandbox.trello.state.cards.values() if card.name == title)
    asana = next(task.gid for task in sandbox.asana.state.tasks.values() if task.name == title)
    return Refs(jira, trello, asana)


def _trello_desc(sandbox: Sandbox, refs: Refs) -> str:
    return str(sandbox.trello.state.cards[refs.trello].desc)


EDITS: tuple[Edit, ...] = (
    Edit(
        "priority",
        "latest",
        "gus@corp.example",
        "asana",
        "lowers the task's Priority to Medium",
        lambda s, r: s.asana.act_as("gus@corp.example").set_field(r.asana, "Priority", "Medium"),
    ),
    Edit(
        "title",
        "latest",
        "eli@corp.example",
        "trello",
        "renames the card 'Q1 launch page (sales)'",
        lambda s, r: s.trello.act_as("eli@corp.example").update_card(r.trello, name="Q1 launch page (sales)"),
    ),
    Edit(
        "title",
        "latest",
        "gus@corp.example",
        "asana",
        "renames the task 'Q1 launch page', a minute later",
        lambda s, r: s.asana.act_as("gus@corp.example").update_task(r.asana, name="Q1 launch page"),
    ),
    Edit(
        "status",
        "owner:engineering",
        "eli@corp.example",
        "trello",
        "moves the card back to Requests",
        lambda s, r: s.trello.act_as("eli@corp.example").move_card(r.trello, "Requests"),
    ),
    Edit(
        "status",
        "owner:engineering",
        "ana@corp.example",
        "jira",
        "resolves the issue: Done",
        lambda s, r: s.jira.act_as("ana@corp.example").transition(r.jira, "Done", resolution="Done"),
    ),
    Edit(
        "assignees",
        "prefer:engineering,marketing,sales",
        "eli@corp.example",
        "trello",
        "puts himself on the card instead",
        lambda s, r: _replace_members(s, r, "eli@corp.example"),
    ),
    Edit(
        "assignees",
        "prefer:engineering,marketing,sales",
        "ana@corp.example",
        "jira",
        "assigns the issue to Ben",
        lambda s, r: s.jira.act_as("ana@corp.example").update(r.jira, assignee="ben@corp.example"),
    ),
    Edit(
        "labels",
        "union",
        "ana@corp.example",
        "jira",
        "adds the label 'api'",
        lambda s, r: s.jira.act_as("ana@corp.example").update(
            r.jira, labels=[*s.jira.state.issues[r.jira].labels, "api"]
        ),
    ),
    Edit(
        "labels",
        "union",
        "eli@corp.example",
        "trello",
        "adds the label 'urgent'",
        lambda s, r: s.trello.act_as("eli@corp.example").add_label(r.trello, "urgent"),
    ),
    Edit(
        "description",
        "merge-text",
        "ana@corp.example",
        "jira",
        "rewrites the description's first line",
        lambda s, r: s.jira.act_as("ana@corp.example").update(
            r.jira, description="Build the *launch* page for Q1.\n\n* hero section\n* pricing table"
        ),
    ),
    Edit(
        "description",
        "merge-text",
        "eli@corp.example",
        "trello",
        "adds a paragraph to the description",
        lambda s, r: s.trello.act_as("eli@corp.example").update_card(
            r.trello, desc=_trello_desc(s, r).rstrip() + "\n\nSales note: Acme wants a preview."
        ),
    ),
    Edit(
        "due",
        "manual",
        "eli@corp.example",
        "trello",
        "promises the customer 1 February",
        lambda s, r: s.trello.act_as("eli@corp.example").update_card(r.trello, due="2027-02-01T16:00:00.000Z"),
    ),
    Edit(
        "due",
        "manual",
        "gus@corp.example",
        "asana",
        "plans the press release for 3 February",
        lambda s, r: s.asana.act_as("gus@corp.example").update_task(r.asana, due_on="2027-02-03"),
    ),
)
"""The edits in order; the clock moves a minute before each.

The first is contested by no one: it shows a custom field carried as it is (Asana's Priority to Jira's own
priority and Trello's Priority). The others come in pairs on one field, so that each rule decides a conflict.
"""


def _replace_members(sandbox: Sandbox, refs: Refs, email: str) -> None:
    actor = sandbox.trello.act_as(email)
    for member in list(sandbox.trello.state.cards[refs.trello].id_members):
        actor.remove_member(refs.trello, member)
    actor.add_member(refs.trello, email)


def play(sandbox: Sandbox, refs: Refs, *, on_edit: Callable[[Edit], None] | None = None) -> None:
    """Make every edit as its person, a minute apart on the sandbox's clock."""
    for edit in EDITS:
        sandbox.clock.advance(60)
        edit.apply(sandbox, refs)
        if on_edit is not None:
            on_edit(edit)
