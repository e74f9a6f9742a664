"""The subject item in each tool, read from the emulators, and how it differs from what the scenario expects.

Read straight from the emulators' state (cheap, and no API request to disturb the daemon or the rate limits): the
live view shows these values and the run's convergence check compares them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC
from zoneinfo import ZoneInfo

from sandbox import scenario
from sandbox.asana.model import EnumOption, Task
from sandbox.jira.richtext import adf_to_wiki
from sandbox.org import Sandbox
from sandbox.trello.model import Card

TOOLS = ("jira", "trello", "asana")
TOOL_NAMES = {"jira": "Jira", "trello": "Trello", "asana": "Asana"}
EXPECTED_STATUS = {"jira": "Done", "trello": "Done", "asana": "Shipped"}
"""``scenario.EXPECTED['status']`` (done) as each tool names it under the shipped mapping's status map."""
EXPECTED_PRIORITY = {"jira": "Medium", "trello": "Medium", "asana": "Medium"}
"""``scenario.EXPECTED['priority']`` (medium) as each tool names it: Jira's own priority, the Priority custom fields."""
PRIORITY = "Priority"
"""The custom field holding the priority in Trello and Asana (the shipped mapping's ``at``)."""
DUE_ZONE = ZoneInfo("Europe/Berlin")
"""The shipped mapping reads Trello's due datetime as a date in this zone."""


def joined(values: Iterable[str]) -> str:
    """Several values as one cell, in an order that does not depend on the tool's."""
    return ", ".join(sorted(values))


def first_line(text: str) -> str:
    """The first non-blank line: a description compared and shown by its opening line."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def subject_values(sandbox: Sandbox, refs: scenario.Refs) -> dict[str, dict[str, str]]:
    """The subject's raw values per tool and field, as each tool holds them (read under each emulator's lock)."""
    with sandbox.jira.lock:
        issue = sandbox.jira.state.issues[refs.jira]
        jira = {
            "title": issue.summary,
            "status": issue.status,
            "assignees": issue.assignee or "",
            "labels": joined(issue.labels),
            "due": str(issue.duedate or ""),
            "priority": issue.priority,
            "description": first_line(adf_to_wiki(issue.description)),
        }
    with sandbox.trello.lock:
        board = sandbox.trello.state
        card = board.cards[refs.trello]
        trello = {
            "title": card.name,
            "status": board.lists[card.id_list].name,
            "assignees": joined(board.members[member].email for member in card.id_members),
            "labels": joined(board.labels[label].name for label in card.id_labels),
            "due": card.due.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if card.due else "",
            "priority": _trello_priority(sandbox, card),
            "description": first_line(card.desc),
        }
    with sandbox.asana.lock:
        task = sandbox.asana.state.tasks[refs.asana]
        asana = {
            "title": task.name,
            "status": task.memberships[0].section.name if task.memberships else "",
            "assignees": task.assignee.email if task.assignee else "",
            "labels": joined(tag.name for tag in task.tags),
            "due": str(task.due_on or task.due_at or ""),
            "priority": _asana_priority(task),
            "description": first_line(task.notes),
        }
    return {"jira": jira, "trello": trello, "asana": asana}


def _trello_priority(sandbox: Sandbox, card: Card) -> str:
    """The option picked in the card's Priority list field ('' when it holds none)."""
    state = sandbox.trello.state
    field = next(f for f in state.board_custom_fields(state.boards[card.id_board]) if f.name == PRIORITY)
    picked = next((item.id_value for item in card.custom_items if item.id_custom_field == field.id), None)
    return next((option.text for option in field.options if option.id == picked), "")


def _asana_priority(task: Task) -> str:
    """The option picked in the task's Priority enum field ('' when it holds none)."""
    field = next(f for f in task.custom_fields() if f.name == PRIORITY)
    value = task.custom_values.get(field.gid)
    return value.name if isinstance(value, EnumOption) else ""


def mismatches(sandbox: Sandbox, refs: scenario.Refs) -> list[str]:
    """How the subject differs from ``scenario.EXPECTED`` in each tool (empty: it matches everywhere)."""
    values = subject_values(sandbox, refs)
    expected = scenario.EXPECTED
    wanted: dict[str, dict[str, str]] = {
        "title": dict.fromkeys(TOOLS, expected["title"]),
        "status": EXPECTED_STATUS,
        "assignees": dict.fromkeys(TOOLS, joined(expected["assignees"])),
        "labels": dict.fromkeys(TOOLS, joined(expected["labels"])),
        "due": {"jira": expected["due"], "asana": expected["due"]},
        "priority": EXPECTED_PRIORITY,
    }
    found = [
        f"{TOOL_NAMES[tool]} {name} is {values[tool][name]!r}, expected {value!r}"
        for name, per_tool in wanted.items()
        for tool, value in per_tool.items()
        if values[tool][name] != value
    ]
    with sandbox.trello.lock:
        card = sandbox.trello.state.cards[refs.trello]
        due = card.due.astimezone(DUE_ZONE).date().isoformat() if card.due else ""
        description = card.desc
    if due != expected["due"]:
        found.append(f"Trello due is {due or 'empty'} in {DUE_ZONE.key}, expected {expected['due']}")
    found += [f"Trello description lacks {line!r}" for line in scenario.DESCRIPTION_EDITS if line not in description]
    return found
