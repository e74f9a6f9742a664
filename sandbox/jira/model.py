"""The Jira site's state: people, projects and workflows from the seed, and the issues people work on.

Everything is plain data. Ids are deterministic (the same seed gives the same ids, keys and accountIds on every
start); people are referred to by e-mail internally and rendered as accountId (Cloud) or name/key (Server) only at
the edge, so one state serves both deployments.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sandbox.core import JSON
from sandbox.jira.richtext import wiki_to_adf
from sandbox.seed import SERVICE_ACCOUNT, Seed

ACCOUNT_PREFIX = "712020:"
"""Jira Cloud accountIds of Atlassian accounts look like ``712020:<uuid>``."""

STATUS_CATEGORIES: dict[str, tuple[int, str, str]] = {
    "new": (2, "To Do", "blue-gray"),
    "indeterminate": (4, "In Progress", "yellow"),
    "done": (3, "Done", "green"),
}
"""Jira's fixed status categories: key -> (id, name, colorName)."""

RESOLUTIONS: tuple[tuple[str, str, str], ...] = (
    ("10000", "Done", "Work has been completed on this issue."),
    ("10001", "Won't Do", "This issue won't be actioned."),
    ("10002", "Duplicate", "The problem is a duplicate of an existing issue."),
    ("10003", "Cannot Reproduce", "All attempts at reproducing this issue failed."),
)
"""A fresh Jira site's resolutions: (id, name, description)."""


@dataclass
class User:
    """A Jira user: one seeded person, known by accountId on Cloud and by name/key on Server."""

    email: str
    display_name: str
    username: str
    key: str
    account_id: str
    timezone: str


@dataclass(frozen=True)
class Status:
    """A workflow status (statuses are global in Jira, shared by every project that uses the name)."""

    id: str
    name: str
    category: str


@dataclass(frozen=True)
class Transition:
    """A workflow transition; ``sources`` empty means it is global (available from every status)."""

    id: str
    name: str
    sources: tuple[str, ...]
    to: str
    requires: tuple[str, ...]


@dataclass
class Project:
    """A project, its workflow and its next issue number."""

    id: str
    key: str
    name: str
    lead: str
    statuses: list[str]
    transitions: list[Transition]
    next_number: int = 1


@dataclass
class ChangeItem:
    """One field change inside a changelog history entry (values already rendered as Jira stores them)."""

    field: str
    field_id: str
    from_value: str | None
    from_string: str | None
    to_value: str | None
    to_string: str | None
    fieldtype: str = "jira"


@dataclass
class History:
    """One changelog entry: who changed what, when."""

    id: str
    author: str
    created: datetime
    items: list[ChangeItem]


@dataclass
class Comment:
    """An issue comment; the body is kept as an Atlassian Document (the canonical rich-text form)."""

    id: str
    author: str
    body: JSON
    created: datetime
    updated: datetime
    update_author: str


@dataclass(frozen=True)
class FieldOption:
    """An option of a select or multiselect custom field (in its one, global context)."""

    id: str
    value: str
    disabled: bool = False


@dataclass
class CustomField:
    """A custom field: ``kind`` is the last part of its type key (``select``, ``float``, ...)."""

    id: str
    name: str
    kind: str
    context_id: str
    options: list[FieldOption] = field(default_factory=list)

    @property
    def number(self) -> int:
        """The numeric part of the id (the schema's ``customId``, JQL's ``cf[10001]``)."""
        return int(self.id.removeprefix("customfield_"))


@dataclass
class Issue:
    """An issue with its fields, comments, changelog and entity properties."""

    id: str
    key: str
    project: str
    issuetype: str
    summary: str
    description: JSON
    status: str
    priority: str
    reporter: str | None
    creator: str
    assignee: str | None
    labels: list[str]
    duedate: date | None
    created: datetime
    updated: datetime
    resolution: str | None = None
    resolutiondate: datetime | None = None
    comments: list[Comment] = field(default_factory=list)
    histories: list[History] = field(default_factory=list)
    properties: dict[str, JSON] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)
    """Custom field values by field id (options, text, number, date, e-mail, label list); absent means empty."""
    parent: str | None = None
    """The key of the issue this one is a subtask of (made by ``act_as(email).create_subtask``)."""


@dataclass
class Webhook:
    """An admin webhook registration."""

    id: int
    name: str
    url: str
    events: list[str]
    jql: str
    secret: str | None
    enabled: bool
    exclude_body: bool
    updated_by: str
    updated: datetime


def _seed_value(custom: CustomField, raw: object) -> Any:  # noqa: ANN401 - the value's type is the field's
    """A seeded value in the internal form: options, text, float, date, e-mail, labels."""
    if custom.kind == "select":
        return next(o for o in custom.options if o.value == raw)
    if custom.kind == "multiselect":
        names = raw if isinstance(raw, list) else [raw]
        return [o for o in custom.options if o.value in names]
    if custom.kind == "labels":
        return list(raw) if isinstance(raw, list) else [str(raw)]
    if custom.kind == "float":
        return float(str(raw))
    if custom.kind == "datepicker":
        return raw if isinstance(raw, date) else date.fromisoformat(str(raw))
    return str(raw)


def account_id_for(email: str) -> str:
    """Return the deterministic Cloud accountId of a person."""
    return ACCOUNT_PREFIX + str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailto:{email}"))


@dataclass
class JiraState:
    """The whole site, built deterministically from a seed."""

    seed: Seed
    users: dict[str, User] = field(default_factory=dict)
    statuses: dict[str, Status] = field(default_factory=dict)
    priorities: list[tuple[str, str]] = field(default_factory=list)
    issuetypes: list[tuple[str, str]] = field(default_factory=list)
    projects: dict[str, Project] = field(default_factory=dict)
    issues: dict[str, Issue] = field(default_factory=dict)
    webhooks: dict[int, Webhook] = field(default_factory=dict)
    custom_fields: dict[str, CustomField] = field(default_factory=dict)
    next_issue_id: int = 10000
    next_comment_id: int = 10000
    next_history_id: int = 10000
    next_webhook_id: int = 1

    @classmethod
    def from_seed(cls, seed: Seed, now: datetime) -> JiraState:
        """Build the site: users, statuses, priorities, issue types, projects and their issues."""
        state = cls(seed=seed)
        for index, person in enumerate(seed.people):
            timezone = seed.jira.timezone if person.email == SERVICE_ACCOUNT else person.timezone
            state.users[person.email] = User(
                email=person.email,
                display_name=person.name,
                username=person.username,
                key=f"JIRAUSER{10000 + index}",
                account_id=account_id_for(person.email),
                timezone=timezone,
            )
        state.priorities = [(str(index + 1), name) for index, name in enumerate(seed.jira.priorities)]
        state.issuetypes = [(str(10001 + index), name) for index, name in enumerate(seed.jira.issuetypes)]
        for project_index, spec in enumerate(seed.jira.projects):
            for status in spec.workflow.statuses:
                if status.name not in state.statuses:
                    status_id = str(10000 + len(state.statuses))
                    state.statuses[status.name] = Status(status_id, status.name, status.category)
            transitions = [
                Transition(str(11 + 10 * index), t.name, tuple(t.sources), t.to, tuple(t.requires))
                for index, t in enumerate(spec.workflow.transitions)
            ]
            state.projects[spec.key] = Project(
                id=str(10000 + project_index),
                key=spec.key,
                name=spec.name,
                lead=spec.lead,
                statuses=[s.name for s in spec.workflow.statuses],
                transitions=transitions,
            )
        for spec in seed.jira.projects:
            project = state.projects[spec.key]
            for item in spec.issues:
                issue = state.new_issue(project, item.summary, creator=item.reporter or state.service_email, now=now)
                issue.description = wiki_to_adf(item.description) if item.description else None
                issue.status = item.status or project.statuses[0]
                issue.assignee = item.assignee
                issue.reporter = item.reporter or state.service_email
                issue.priority = item.priority
                issue.labels = list(item.labels)
                issue.duedate = item.duedate
                issue.issuetype = item.issuetype
                if state.statuses[issue.status].category == "done":
                    issue.resolution = RESOLUTIONS[0][1]
                    issue.resolutiondate = now
        state._seed_custom_fields(seed)
        return state

    def _seed_custom_fields(self, seed: Seed) -> None:
        """Custom fields ``customfield_10001``..., options from 10100, contexts from 10200 (as a fresh site)."""
        option_ids = iter(range(10100, 10200))
        for index, spec in enumerate(seed.jira.custom_fields):
            options = [FieldOption(str(next(option_ids)), name) for name in spec.options]
            custom = CustomField(f"customfield_{10001 + index}", spec.name, spec.type, str(10200 + index), options)
            self.custom_fields[custom.id] = custom
        by_name = {custom.name: custom for custom in self.custom_fields.values()}
        for project in seed.jira.projects:
            issues = [i for i in self.issues.values() if i.project == project.key]
            for issue, item in zip(issues, project.issues, strict=True):
                for name, raw in item.custom_fields.items():
                    issue.custom[by_name[name].id] = _seed_value(by_name[name], raw)

    def custom_field_by_name(self, name: str) -> CustomField | None:
        """The custom field called ``name``, if the site has one."""
        return next((f for f in self.custom_fields.values() if f.name == name), None)

    @property
    def service_email(self) -> str:
        """The e-mail of the service account syncd uses."""
        return SERVICE_ACCOUNT

    def new_issue(self, project: Project, summary: str, *, creator: str, now: datetime) -> Issue:
        """Allocate an id and key and register a fresh issue in the project's first status."""
        issue = Issue(
            id=str(self.next_issue_id),
            key=f"{project.key}-{project.next_number}",
            project=project.key,
            issuetype=self.issuetypes[0][1],
            summary=summary,
            description=None,
            status=project.statuses[0],
            priority="Medium" if any(name == "Medium" for _, name in self.priorities) else self.priorities[0][1],
            reporter=creator,
            creator=creator,
            assignee=None,
            labels=[],
            duedate=None,
            created=now,
            updated=now,
        )
        self.next_issue_id += 1
        project.next_number += 1
        self.issues[issue.key] = issue
        return issue

    def find_issue(self, id_or_key: str) -> Issue | None:
        """Return the issue with this key or numeric id (keys match case-insensitively, as in Jira)."""
        issue = self.issues.get(id_or_key.upper())
        if issue is not None:
            return issue
        return next((i for i in self.issues.values() if i.id == id_or_key), None)

    def find_project(self, id_or_key: str) -> Project | None:
        """Return the project with this key or id."""
        project = self.projects.get(id_or_key.upper())
        if project is not None:
            return project
        return next((p for p in self.projects.values() if p.id == id_or_key), None)

    def priority_id(self, name: str) -> str:
        """Return the id of a priority name."""
        return next(pid for pid, pname in self.priorities if pname == name)

    def issuetype_id(self, name: str) -> str:
        """Return the id of an issue type name."""
        return next(tid for tid, tname in self.issuetypes if tname == name)

    def user_by_account_id(self, account_id: str) -> User | None:
        """Return the user with this Cloud accountId."""
        return next((u for u in self.users.values() if u.account_id == account_id), None)

    def user_by_name(self, name: str) -> User | None:
        """Return the user with this Server name (or key)."""
        lowered = name.lower()
        return next((u for u in self.users.values() if lowered in (u.username.lower(), u.key.lower())), None)

    def next_history(self) -> str:
        """Allocate a changelog history id."""
        self.next_history_id += 1
        return str(self.next_history_id - 1)

    def next_comment(self) -> str:
        """Allocate a comment id."""
        self.next_comment_id += 1
        return str(self.next_comment_id - 1)
