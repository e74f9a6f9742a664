"""The Asana objects the emulator keeps: users, workspace, projects, sections, tags, custom fields, tasks, stories.

Plain mutable records (webhooks and events too); :mod:`.state` owns how they change and :mod:`.render` how they
look on the wire. Nested references are the objects themselves (a task's assignee is a :class:`User`), so renaming
a section shows up in every task's memberships at once, as it does in Asana.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sandbox.core import Delivery


@dataclass(eq=False)
class User:
    """A person (or the service account) of the workspace."""

    gid: str
    name: str
    email: str
    resource_type: str = "user"


@dataclass(eq=False)
class Workspace:
    """The one workspace (an organisation in Asana terms) the seed describes."""

    gid: str
    name: str
    resource_type: str = "workspace"


@dataclass(eq=False)
class Section:
    """A column of a board project; a task's section per project is its status there."""

    gid: str
    name: str
    project: Project
    created_at: datetime
    resource_type: str = "section"


@dataclass(eq=False)
class EnumOption:
    """One choice of an ``enum``/``multi_enum`` custom field (spec: EnumOption); never deleted, only disabled."""

    gid: str
    name: str
    color: str = "none"
    enabled: bool = True
    resource_type: str = "enum_option"


CUSTOM_FIELD_TYPES = ("enum", "multi_enum", "text", "number", "date", "people")
"""The spec's CustomFieldResponse ``resource_subtype`` values the sandbox emulates (``reference`` is not)."""


@dataclass(eq=False)
class CustomField:
    """A custom field definition (spec: CustomFieldResponse); its values live on the tasks."""

    gid: str
    name: str
    resource_subtype: str
    workspace: Workspace
    created_by: User | None
    description: str = ""
    enum_options: list[EnumOption] = field(default_factory=list)
    precision: int = 0
    resource_type: str = "custom_field"

    def option(self, gid: str) -> EnumOption | None:
        """The enum option with this gid, if the field has it."""
        return next((option for option in self.enum_options if option.gid == gid), None)


@dataclass(eq=False)
class CustomFieldSetting:
    """A custom field added to a project: every task of the project can hold a value of it."""

    gid: str
    custom_field: CustomField
    project: Project
    is_important: bool = True
    resource_type: str = "custom_field_setting"


CustomValue = EnumOption | list[EnumOption] | str | int | float | date | list[User] | None
"""A task's value of one custom field, by type: option, options, text, number, date, people (None: blank)."""


@dataclass(eq=False)
class FieldValue:
    """One entry of a task's ``custom_fields``: the field and the task's value (``gid`` is the field's, per spec)."""

    field: CustomField
    value: CustomValue

    @property
    def gid(self) -> str:
        """The custom field's gid, as the spec's TaskResponse says a value's gid is."""
        return self.field.gid

    @property
    def resource_type(self) -> str:
        """Values are ``custom_field`` resources on the wire."""
        return "custom_field"


@dataclass(eq=False)
class Project:
    """A project with its ordered sections, members and task order."""

    gid: str
    name: str
    workspace: Workspace
    owner: User | None
    created_at: datetime
    modified_at: datetime
    members: list[User] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    task_order: list[Task] = field(default_factory=list)
    custom_field_settings: list[CustomFieldSetting] = field(default_factory=list)
    resource_type: str = "project"


@dataclass(eq=False)
class Tag:
    """A workspace-wide label."""

    gid: str
    name: str
    workspace: Workspace
    created_at: datetime
    color: str | None = None
    notes: str = ""
    resource_type: str = "tag"


@dataclass(eq=False)
class Membership:
    """A task's place in one project: the project and the section it sits in."""

    project: Project
    section: Section


@dataclass(eq=False)
class Task:
    """A task; ``html_notes`` is the stored rich text and ``notes`` its plain-text reading."""

    gid: str
    name: str
    workspace: Workspace
    created_at: datetime
    modified_at: datetime
    created_by: User
    html_notes: str = "<body></body>"
    notes: str = ""
    assignee: User | None = None
    due_on: date | None = None
    due_at: datetime | None = None
    start_on: date | None = None
    completed: bool = False
    completed_at: datetime | None = None
    completed_by: User | None = None
    memberships: list[Membership] = field(default_factory=list)
    tags: list[Tag] = field(default_factory=list)
    followers: list[User] = field(default_factory=list)
    externals: dict[str, dict[str, str]] = field(default_factory=dict)
    """Custom external data per OAuth app id: each app sees and sets only its own (see :mod:`.edits`)."""
    custom_values: dict[str, CustomValue] = field(default_factory=dict)
    """Custom field values by field gid; only the fields of the task's projects show (see :meth:`custom_fields`)."""
    resource_subtype: str = "default_task"
    resource_type: str = "task"

    @property
    def projects(self) -> list[Project]:
        """The projects the task is in, in the order it was added to them."""
        return [membership.project for membership in self.memberships]

    def membership(self, project: Project) -> Membership | None:
        """The task's membership in ``project``, if it is in it."""
        return next((m for m in self.memberships if m.project is project), None)

    def custom_fields(self) -> list[CustomField]:
        """The fields the task can hold: those of its projects, in project then setting order, each once."""
        fields: list[CustomField] = []
        for project in self.projects:
            for setting in project.custom_field_settings:
                if setting.custom_field not in fields:
                    fields.append(setting.custom_field)
        return fields


@dataclass(eq=False)
class Story:
    """A comment or a system story on a task; ``details`` holds the subtype's conditional fields."""

    gid: str
    task: Task
    created_at: datetime
    created_by: User
    resource_subtype: str
    type: str
    text: str
    html_text: str | None = None
    is_edited: bool = False
    is_pinned: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    resource_type: str = "story"


@dataclass(eq=False)
class Attachment:
    """A link attached to a task (``resource_subtype`` ``external``; file uploads are not emulated)."""

    gid: str
    name: str
    url: str
    parent: Task
    created_at: datetime
    resource_subtype: str = "external"
    resource_type: str = "attachment"


@dataclass(eq=False)
class Event:
    """One change, kept in order; ``scopes`` are the gids whose event streams and webhooks see it."""

    seq: int
    user: User
    resource: Any
    action: str
    parent: Any
    created_at: datetime
    change: dict[str, Any] | None
    scopes: frozenset[str]


@dataclass(eq=False)
class Webhook:
    """An established webhook: its resource, target, shared secret and filters."""

    gid: str
    resource: Any
    target: str
    secret: str
    created_at: datetime
    filters: list[dict[str, Any]] = field(default_factory=list)
    active: bool = True
    last_success_at: datetime | None = None
    deliveries: list[tuple[datetime, Delivery]] = field(default_factory=list)
    resource_type: str = "webhook"
