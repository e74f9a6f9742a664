"""``syncd check --online``: whether every department's tool matches what the configuration and mappings say.

The offline check proves the files are well formed; only the tools can say whether the credentials work, the
workspace exists, every mapped status / list / section is there, the Jira workflow can move an item between every
pair of mapped statuses with the fields its screens require, and every person named is known. Finding that out
here, before a pass, turns a pass that would strike or quarantine item after item into one list of fixes.

Pure apart from the connectors it is handed: the caller (the CLI, the composition root) passes the factory and
each tool's :class:`~syncd.connector.Capabilities` in, so this module never imports ``connectors/`` nor names a
tool. Messages never carry a credential: they name where a credential comes from (the environment variable or
file), and every message passes :func:`syncd.redact.redact` (which knows every credential a connector resolved) in
case a tool echoed one back.
"""

from __future__ import annotations

import difflib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from syncd.config import Config, Department, JiraConnection, Secret, TrelloConnection
from syncd.connector import Capabilities, StatusMechanism
from syncd.errors import (
    AuthFailed,
    PermissionDenied,
    RetriableError,
    SkippableError,
    SyncdError,
    ToolConfigError,
)
from syncd.mapping import FieldSpec, Group, field_type
from syncd.model import Schema
from syncd.placing import FITS, OPTION_TYPES
from syncd.redact import redact
from syncd.yamlfile import line_of


class Describer(Protocol):
    """All the checks need of a connector (:class:`syncd.connector.Connector` has it): what its tool offers."""

    def describe(self) -> Schema:
        """Statuses, transitions, people, labels and transition requirements of the department's workspace."""
        ...


ConnectorFactory = Callable[[Department], Describer]
"""Builds a department's connector, credentials resolved (``connectors.factory.connector_for``)."""


def online_problems(
    config: Config,
    groups: Sequence[Group],
    connector_for: ConnectorFactory,
    capabilities: Mapping[str, Capabilities],
) -> list[str]:
    """Every problem the departments' tools reveal, one line each, department first; [] when all is well.

    ``capabilities`` gives each tool kind's facts (``connectors.factory.CAPABILITIES``): names, nouns, who is
    assignable, whether statuses move along a workflow.

    A department whose tool cannot be described (missing credential, refused credential, no such workspace, no
    answer) gets one line saying so, and its mapping checks are skipped: they would only repeat that line.
    """
    problems: list[str] = []
    for name, department in config.departments.items():
        found: list[str] = []
        tool = capabilities[department.connection.tool]
        try:
            schema = connector_for(department).describe()
        except SyncdError as error:
            found.append(_not_described(department, tool, error))
        else:
            found += _people_problems(department, tool, schema, department.people, source=None)
            for group in groups:
                if name in group.codecs:
                    found += _group_problems(name, department, tool, schema, group)
        problems += [redact(f"{name}: {problem}") for problem in dict.fromkeys(found)]
    return problems


# ----- the workspace and its credentials -------------------------------------------------------------------------


def _workspace(department: Department, tool: Capabilities) -> str:
    """How messages name the department's workspace: its tool and the id the department file gives."""
    connection = department.connection
    workspace_id = connection.board if isinstance(connection, TrelloConnection) else connection.project
    return f"{tool.name} {tool.workspace} {workspace_id}"


def _credential_sources(department: Department) -> str:
    """Where the department's credentials come from (variable names or file paths, never values)."""
    connection = department.connection
    names = [
        secret.env or str(secret.file)
        for field in ("key", "token")
        if isinstance(secret := getattr(connection, field, None), Secret)
    ]
    return " and ".join(names)


def _not_described(department: Department, capabilities: Capabilities, error: SyncdError) -> str:
    """One line for a tool that could not be described, saying what to fix."""
    connection = department.connection
    tool, workspace = capabilities.name, _workspace(department, capabilities)
    if isinstance(error, AuthFailed):
        account = f"the user {connection.user} and " if isinstance(connection, JiraConnection) else ""
        return f"credentials refused by {tool} (HTTP 401): check {account}{_credential_sources(department)}"
    if isinstance(error, PermissionDenied):
        return f"the account may not read the {workspace}: {error.message}"
    if isinstance(error, ToolConfigError | SkippableError):
        if error.status == 404:
            return f"the {workspace} does not exist or the account cannot see it ({error.message})"
        return f"cannot use the {workspace}: {error.message}"
    if isinstance(error, RetriableError):
        return f"{tool} at {redact(connection.base_url)} did not answer ({error.message}): check base_url"
    return str(error)  # a credential that cannot be read: the message names the variable or file


# ----- people ----------------------------------------------------------------------------------------------------


def _people_problems(
    department: Department, tool: Capabilities, schema: Schema, people: Mapping[str, str], *, source: str | None
) -> list[str]:
    """E-mails the tool does not know, by its people or by the account the directory gives them."""
    emails = {person.email.lower() for person in schema.people if person.email}
    accounts = {person.account for person in schema.people if person.account}
    place = tool.assignable.format(workspace=_workspace(department, tool))
    where = f"{source}: " if source else ""
    return [
        f"{where}{email} is not {place} (add them, or fix the people directory)"
        for email, account in people.items()
        if email.lower() not in emails and account not in accounts
    ]


# ----- what a mapping names --------------------------------------------------------------------------------------


def _group_problems(member: str, department: Department, tool: Capabilities, schema: Schema, group: Group) -> list[str]:
    """Statuses, transitions, transition screens and people one group's mapping names at this department."""
    codec = group.codecs[member]
    source = str(group.source) if group.source else group.name
    problems: list[str] = []
    problems += _placed_problems(member, department, tool, schema, group)
    status = codec.specs.get("status")
    if status is not None and member in status.at:
        status = None  # kept in a custom field: its options are checked with the other placed fields
    named: dict[str, str] = {}  # tool status -> where the mapping names it (first place)
    if status is not None:
        for raw in status.map.get(member, {}):
            named.setdefault(raw, f"fields.status.map.{member}")
        for raw in status.write.get(member, {}).values():
            named.setdefault(raw, f"fields.status.write.{member}")
    for raw in codec.scope.statuses:
        named.setdefault(raw, f"members.{member}.scope.statuses")
    noun = tool.status_noun
    offered = ", ".join(repr(each) for each in schema.statuses)
    for raw, where in named.items():
        if raw not in schema.statuses:
            problems.append(
                f"{source}: {where} names {raw!r}, which is not a {noun} of the {_workspace(department, tool)} "
                f"(it has {offered}): fix the name, or add the {noun} in {tool.name}"
            )
    if status is not None and tool.status is StatusMechanism.WORKFLOW:  # elsewhere any status is one move away
        mapped = list(dict.fromkeys([*status.map.get(member, {}), *status.write.get(member, {}).values()]))
        mapped = [raw for raw in mapped if raw in schema.statuses]  # an unknown one is reported above
        problems += _workflow_problems(department, tool, schema, mapped, source)
    assignees = codec.specs.get("assignees")
    if assignees is not None:
        emails = [value for pair in assignees.map.get(member, {}).items() for value in pair if "@" in value]
        problems += _people_problems(department, tool, schema, dict.fromkeys(emails, ""), source=source)
    return problems


def _placed_problems(
    member: str, department: Department, tool: Capabilities, schema: Schema, group: Group
) -> list[str]:
    """Custom fields and options (and priorities) the mapping names at this member that the tool lacks."""
    problems: list[str] = []
    workspace = _workspace(department, tool)
    for name, spec in group.codecs[member].specs.items():
        place = spec.at.get(member)
        if place is None:
            continue
        where = _where(group, ("fields", name, "at", member))
        if place.labels is not None:
            continue  # labels: every tool makes a label (a Trello board label, an Asana tag) when one is written
        if place.field is not None:
            problems += _option_problems(
                group, name, spec, member, offered=schema.priorities, what=f"priority in {workspace}"
            )
            continue
        fields = {field.name: field for field in schema.custom_fields}
        found = fields.get(str(place.custom))
        if found is None:
            problems.append(
                f"{where}: fields.{name}.at.{member} names custom field {place.custom!r}, which the {workspace} "
                f"does not have{_closest(str(place.custom), fields)}: fix the name, or add the field in {tool.name}"
            )
            continue
        kind = field_type(name, spec)
        if found.type not in FITS[kind]:
            problems.append(
                f"{where}: fields.{name} is a {kind} field, but {place.label()} of the {workspace} holds "
                f"{found.type} values: place it in a {' or '.join(sorted(FITS[kind]))} field, or change its type"
            )
        elif kind in OPTION_TYPES and not found.open:
            problems += _option_problems(
                group, name, spec, member, offered=found.options, what=f"{place.label()} of {workspace}"
            )
    return problems


def _option_problems(
    group: Group, name: str, spec: FieldSpec, member: str, *, offered: Sequence[str], what: str
) -> list[str]:
    """Options a value map names for ``member`` that the tool does not offer (where it lists them)."""
    if not offered:
        return []  # the tool did not say (an empty project's editmeta): only a certain gap is reported
    named = dict.fromkeys([*spec.map.get(member, {}), *spec.write.get(member, {}).values()])
    return [
        f"{_where(group, ('fields', name, 'map', member, option))}: fields.{name}.map.{member} names {option!r}, "
        f"which is not an option of {what}{_closest(option, offered)}: fix the name, or add the option"
        for option in named
        if option not in offered
    ]


def _where(group: Group, loc: tuple[str, ...]) -> str:
    """``file:line`` of a setting in the group's file (the file alone when the line cannot be told)."""
    if group.source is None:
        return group.name
    line = line_of(Path(group.source), loc)
    return f"{group.source}:{line}" if line else str(group.source)


def _closest(name: str, offered: Iterable[str]) -> str:
    """`` (closest: 'A', 'B')`` naming what the tool has that is nearest to ``name``, or all of it when few."""
    choices = list(offered)
    near = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    if near:
        return f" (closest: {', '.join(repr(each) for each in near)})"
    if choices and len(choices) <= 8:
        return f" (it has {', '.join(repr(each) for each in choices)})"
    return ""


def _workflow_problems(
    department: Department, tool: Capabilities, schema: Schema, mapped: Sequence[str], source: str
) -> list[str]:
    """Mapped statuses no chain of transitions connects, and transition screens the config does not fill.

    A status listed without transitions (Jira shows them only for an issue in that status, and none is) is taken
    to lead anywhere: only a certain dead end is reported, never a guess.
    """
    problems: list[str] = []
    workspace = _workspace(department, tool)
    for start in mapped:
        cut_off = [goal for goal in mapped if goal != start and _path(schema, start, goal, optimistic=True) is None]
        if cut_off:
            targets = ", ".join(repr(goal) for goal in cut_off[:-1])
            targets = f"{targets} or {cut_off[-1]!r}" if targets else repr(cut_off[-1])
            problems.append(
                f"{source}: no chain of transitions in {workspace} leads from {start!r} to {targets}: "
                "add a transition to the workflow, or map these statuses differently"
            )
    entered = {status for start in mapped for goal in mapped for status in _path(schema, start, goal) or ()}
    connection = department.connection
    supplied = connection.transition_fields if isinstance(connection, JiraConnection) else {}
    for status in sorted(entered):
        missing = [name for name in schema.requirements.get(status, ()) if name not in supplied.get(status, {})]
        if missing:
            them = "them" if len(missing) > 1 else "it"
            problems.append(
                f"moving an item to {status!r} in {workspace} requires {', '.join(missing)}: "
                f"add {them} to transition_fields for {status!r} in the department's file"
            )
    return problems


def _path(schema: Schema, start: str, goal: str, *, optimistic: bool = False) -> list[str] | None:
    """The statuses entered on the fewest transitions from start to goal (as the Jira connector walks them).

    ``optimistic``: a status without known transitions leads to every status (unknown is not a dead end).
    """
    if start == goal:
        return []
    previous: dict[str, str] = {}
    queue, seen = deque([start]), {start}
    while queue:
        status = queue.popleft()
        if status in schema.transitions:
            targets = sorted(schema.transitions[status])
        else:
            targets = sorted(schema.statuses) if optimistic else []
        for target in targets:
            if target in seen:
                continue
            seen.add(target)
            previous[target] = status
            if target == goal:
                steps = [goal]
                while previous[steps[-1]] != start:
                    steps.append(previous[steps[-1]])
                return steps[::-1]
            queue.append(target)
    return None
