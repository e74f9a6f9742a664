"""The Asana workspace in memory: built from the seed, looked up by gid, and the story/event bookkeeping.

Every change goes through :meth:`AsanaState.story` and :meth:`AsanaState.event`, so comments, system stories,
the ``/events`` streams and webhooks all see the same history with the same author, whether the change came
from the HTTP API or from a Python actor.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from sandbox.asana.model import (
    Attachment,
    CustomField,
    CustomFieldSetting,
    CustomValue,
    EnumOption,
    Event,
    Membership,
    Project,
    Section,
    Story,
    Tag,
    Task,
    User,
    Webhook,
    Workspace,
)
from sandbox.asana.richtext import text_to_html
from sandbox.core import ApiError, Clock, IdSequence
from sandbox.seed import AsanaCustomField, AsanaTask, Seed

FIRST_GID = 1208000000000001
"""Real gids are 16-digit numbers; starting here gives the same realistic gids on every start."""

EventListener = Callable[[Event], None]
T = TypeVar("T")


class AsanaState:
    """All objects of the emulated workspace, their lookups and their history."""

    def __init__(self, seed: Seed, clock: Clock) -> None:
        self.clock = clock
        self._ids = IdSequence(start=FIRST_GID)
        self.users: dict[str, User] = {}
        self.users_by_email: dict[str, User] = {}
        self.projects: dict[str, Project] = {}
        self.sections: dict[str, Section] = {}
        self.tags: dict[str, Tag] = {}
        self.tasks: dict[str, Task] = {}
        self.stories: dict[str, Story] = {}
        self.attachments: dict[str, Attachment] = {}
        self.custom_fields: dict[str, CustomField] = {}
        self.custom_field_settings: dict[str, CustomFieldSetting] = {}
        self.enum_options: dict[str, EnumOption] = {}
        self.webhooks: dict[str, Webhook] = {}
        self.events: list[Event] = []
        self.listeners: list[EventListener] = []
        self.hidden_emails: set[str] = set()
        """People whose e-mail others do not see; see :meth:`email_visible`."""
        self.workspace = Workspace(gid=self.new_gid(), name=seed.asana.workspace)
        for person in seed.people:
            user = User(gid=self.new_gid(), name=person.name, email=person.email)
            self.users[user.gid] = user
            self.users_by_email[user.email.lower()] = user
        self._load_projects(seed)
        # Custom fields take their gids after everything else, so the gids of the other seeded objects stay put.
        self._load_custom_fields(seed)

    def new_gid(self) -> str:
        """Return the next gid (one sequence for all kinds, like Asana's global ids)."""
        return str(self._ids.next_int())

    def now(self) -> datetime:
        """Return the emulated current time."""
        return self.clock.now()

    # ----- seed -------------------------------------------------------------------------------------------

    def _load_projects(self, seed: Seed) -> None:
        for spec in seed.asana.projects:
            members = [self.users_by_email[email.lower()] for email in spec.members]
            now = self.now()
            project = Project(
                gid=self.new_gid(),
                name=spec.name,
                workspace=self.workspace,
                owner=members[0] if members else None,
                created_at=now,
                modified_at=now,
                members=members,
            )
            self.projects[project.gid] = project
            for name in spec.sections:
                self.add_section(project, name)
            tags: dict[str, Tag] = {}
            for name in spec.tags:
                tags[name] = self.find_tag(name) or self.add_tag(name)
            creator = project.owner or next(iter(self.users.values()))
            for item in spec.tasks:
                now = self.now()
                section = next(s for s in project.sections if s.name == item.section)
                assignee = self.users_by_email[item.assignee.lower()] if item.assignee else None
                task = Task(
                    gid=self.new_gid(),
                    name=item.name,
                    workspace=self.workspace,
                    created_at=now,
                    modified_at=now,
                    created_by=creator,
                    notes=item.notes,
                    html_notes=text_to_html(item.notes),
                    assignee=assignee,
                    due_on=item.due_on,
                    due_at=item.due_at.astimezone(UTC) if item.due_at else None,
                    completed=item.completed,
                    completed_at=now if item.completed else None,
                    completed_by=creator if item.completed else None,
                    memberships=[Membership(project, section)],
                    tags=[tags[name] for name in item.tags],
                    followers=[creator] + ([assignee] if assignee and assignee is not creator else []),
                )
                self.tasks[task.gid] = task
                project.task_order.append(task)

    def _load_custom_fields(self, seed: Seed) -> None:
        for spec, project in zip(seed.asana.projects, list(self.projects.values()), strict=True):
            for field_spec in spec.custom_fields:
                custom_field = self.find_custom_field(field_spec.name) or self.add_custom_field(field_spec, project)
                setting = CustomFieldSetting(gid=self.new_gid(), custom_field=custom_field, project=project)
                project.custom_field_settings.append(setting)
                self.custom_field_settings[setting.gid] = setting
            for task, item in zip(project.task_order, spec.tasks, strict=True):
                self._seed_values(task, item)

    def add_custom_field(self, spec: AsanaCustomField, project: Project) -> CustomField:
        """Create a custom field (and its enum options) in the workspace, created by the project's owner."""
        custom_field = CustomField(
            gid=self.new_gid(),
            name=spec.name,
            resource_subtype=spec.type,
            workspace=self.workspace,
            created_by=project.owner,
            description=spec.description,
            precision=spec.precision,
        )
        for name in spec.options:
            option = EnumOption(gid=self.new_gid(), name=name)
            custom_field.enum_options.append(option)
            self.enum_options[option.gid] = option
        self.custom_fields[custom_field.gid] = custom_field
        return custom_field

    def find_custom_field(self, name: str) -> CustomField | None:
        """Return the custom field called ``name``, if there is one."""
        return next((f for f in self.custom_fields.values() if f.name == name), None)

    def _seed_values(self, task: Task, item: AsanaTask) -> None:
        fields = {custom_field.name: custom_field for custom_field in task.custom_fields()}
        for name, raw in item.custom_fields.items():
            custom_field = fields[name]
            kind = custom_field.resource_subtype
            value: CustomValue
            if kind == "enum":
                value = next(o for o in custom_field.enum_options if o.name == raw)
            elif kind == "multi_enum":
                names = raw if isinstance(raw, list) else [str(raw)]
                value = [o for o in custom_field.enum_options if o.name in names]
            elif kind == "people":
                emails = raw if isinstance(raw, list) else [str(raw)]
                value = [self.users_by_email[email.lower()] for email in emails]
            elif kind == "date":
                value = raw if isinstance(raw, date) else date.fromisoformat(str(raw))
            elif kind == "number":
                value = raw if isinstance(raw, int | float) else float(str(raw))
            else:
                value = str(raw)
            task.custom_values[custom_field.gid] = value

    def add_section(self, project: Project, name: str) -> Section:
        """Create a section at the end of ``project``."""
        section = Section(gid=self.new_gid(), name=name, project=project, created_at=self.now())
        project.sections.append(section)
        self.sections[section.gid] = section
        return section

    def add_tag(self, name: str, color: str | None = None, notes: str = "") -> Tag:
        """Create a tag in the workspace."""
        tag = Tag(
            gid=self.new_gid(), name=name, workspace=self.workspace, created_at=self.now(), color=color, notes=notes
        )
        self.tags[tag.gid] = tag
        return tag

    def find_tag(self, name: str) -> Tag | None:
        """Return the tag called ``name``, if there is one."""
        return next((tag for tag in self.tags.values() if tag.name == name), None)

    # ----- lookups ------------------------------------------------------------------------------------------

    @staticmethod
    def _check_gid(gid: str, param: str) -> None:
        if not gid.isdigit():
            raise ApiError(400, f"{param}: Not a recognized ID: {gid}")

    def _get(self, table: dict[str, T], gid: str, param: str) -> T:
        self._check_gid(gid, param)
        found = table.get(gid)
        if found is None:
            raise ApiError(404, f"{param}: Unknown object: {gid}")
        return found

    def email_visible(self, user: User, viewer: User | None) -> bool:
        """Whether ``viewer`` may see ``user``'s e-mail: always their own, others' unless it is hidden.

        The spec's User ``email`` is just "The user's email address."; it names no case where it is withheld. The
        sandbox can still hide chosen people's addresses (``hidden_emails``: people outside the workspace, limited
        access, privacy), as Jira Cloud and Trello do, so a client copes with a user that has no ``email``.
        """
        return user is viewer or user.email.lower() not in {email.lower() for email in self.hidden_emails}

    def user(self, ref: str, me: User, param: str = "user") -> User:
        """Resolve a user reference: a gid, an e-mail or ``me`` (the spec's "me", an email, or the gid of a user).

        A hidden e-mail identifies nobody for anyone but its owner: resolving it would tell the requester whose
        address it is (and the gid answered would show it). Asana does not document the case; refusing it is the
        unfavourable reading, so a client must write such a person by gid (the people directory).
        """
        if ref == "me":
            return me
        if "@" in ref:
            found = self.users_by_email.get(ref.lower())
            if found is None or not self.email_visible(found, me):
                raise ApiError(400, f"{param}: Not a recognized ID or e-mail: {ref}")
            return found
        return self._get(self.users, ref, param)

    def workspace_ref(self, gid: str, param: str = "workspace") -> Workspace:
        """Resolve the workspace gid."""
        self._check_gid(gid, param)
        if gid != self.workspace.gid:
            raise ApiError(404, f"{param}: Unknown object: {gid}")
        return self.workspace

    def project(self, gid: str, param: str = "project") -> Project:
        """Resolve a project gid."""
        return self._get(self.projects, gid, param)

    def section(self, gid: str, param: str = "section") -> Section:
        """Resolve a section gid."""
        return self._get(self.sections, gid, param)

    def tag(self, gid: str, param: str = "tag") -> Tag:
        """Resolve a tag gid."""
        return self._get(self.tags, gid, param)

    def task(self, ref: str, param: str = "task", app: str | None = None) -> Task:
        """Resolve a task gid, or ``external:<gid>`` for a task whose external gid ``app`` set.

        External gids are app-specific and need OAuth (Asana's "Custom external data" page), so without an app
        (a personal access token) or with another app, ``external:<gid>`` is a 404 like any unknown task.
        """
        if ref.startswith("external:"):
            external = ref.removeprefix("external:")
            for task in self.tasks.values():
                if app is not None and task.externals.get(app, {}).get("gid") == external:
                    return task
            raise ApiError(404, f"{param}: Unknown object: {ref}")
        return self._get(self.tasks, ref, param)

    def custom_field(self, gid: str, param: str = "custom_field") -> CustomField:
        """Resolve a custom field gid."""
        return self._get(self.custom_fields, gid, param)

    def attachment(self, gid: str, param: str = "attachment") -> Attachment:
        """Resolve an attachment gid."""
        return self._get(self.attachments, gid, param)

    def story(self, gid: str, param: str = "story") -> Story:
        """Resolve a story gid."""
        return self._get(self.stories, gid, param)

    def webhook(self, gid: str, param: str = "webhook") -> Webhook:
        """Resolve a webhook gid."""
        return self._get(self.webhooks, gid, param)

    def resource(self, gid: str, param: str = "resource") -> Project | Task | Section | Tag | Workspace:
        """Resolve any gid that events and webhooks can watch."""
        self._check_gid(gid, param)
        for table in (self.projects, self.tasks, self.sections, self.tags):
            if gid in table:
                found: Project | Task | Section | Tag = table[gid]
                return found
        if gid == self.workspace.gid:
            return self.workspace
        raise ApiError(404, f"{param}: Unknown object: {gid}")

    # ----- history ------------------------------------------------------------------------------------------

    def add_story(
        self, task: Task, user: User, subtype: str, text: str, *, touch: bool = True, **details: object
    ) -> Story:
        """Record a story on ``task``; it moves the task's ``modified_at`` ("story is created on a task", spec).

        ``touch`` False keeps ``modified_at`` for the story of a move to a new container, which the same description
        says does not change it (see :func:`sandbox.asana.edits.move_to_section`).
        """
        is_comment = subtype == "comment_added"
        story = Story(
            gid=self.new_gid(),
            task=task,
            created_at=self.now(),
            created_by=user,
            resource_subtype=subtype,
            type="comment" if is_comment else "system",
            text=text,
            html_text=str(details.pop("html_text")) if is_comment and "html_text" in details else None,
            details=details,
        )
        self.stories[story.gid] = story
        if touch:
            task.modified_at = story.created_at
        self.event(user, story, "added", parent=task, scopes=self.task_scopes(task))
        return story

    def task_scopes(self, task: Task) -> frozenset[str]:
        """The gids whose streams see a change of ``task``: itself, its projects and the workspace."""
        return frozenset({task.gid, self.workspace.gid, *(project.gid for project in task.projects)})

    def event(
        self,
        user: User,
        resource: object,
        action: str,
        *,
        parent: object = None,
        change: dict[str, Any] | None = None,
        scopes: frozenset[str],
    ) -> Event:
        """Append one event to the history and tell the listeners (webhooks) about it."""
        recorded = Event(
            seq=len(self.events) + 1,
            user=user,
            resource=resource,
            action=action,
            parent=parent,
            created_at=self.now(),
            change=change,
            scopes=scopes,
        )
        self.events.append(recorded)
        for listener in self.listeners:
            listener(recorded)
        return recorded

    def task_changed(self, task: Task, user: User, field: str, new_value: object = None) -> None:
        """Record a field change of ``task`` (``new_value`` only for resources, per the spec)."""
        change: dict[str, Any] = {"field": field, "action": "changed"}
        if new_value is not None or field == "assignee":
            change["new_value"] = new_value
        self.event(user, task, "changed", change=change, scopes=self.task_scopes(task))


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_date(value: object, field: str) -> date | None:
    """Parse a date field (null clears it): exactly ``YYYY-MM-DD``.

    The spec's ``due_on`` / ``start_on`` "takes a date with `YYYY-MM-DD` format"; Python alone would also take
    ``20270201`` or ``2027-W05-1``, which the sandbox refuses (no range is documented, so none is enforced).
    """
    if value is None:
        return None
    text = str(value)
    try:
        if not _DATE.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise ApiError(400, f"{field}: Invalid date value, expected YYYY-MM-DD: {value}") from None


def parse_datetime(value: object, field: str, *, utc_only: bool = False) -> datetime | None:
    """Parse an ISO 8601 date-time field into UTC (null clears it).

    With ``utc_only`` (``due_at``: "an ISO 8601 date string in UTC", spec) a time without a zone or in another zone
    is refused: the unfavourable reading of a rule whose violation the spec does not describe.
    """
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"{field}: Invalid date-time value: {value}") from None
    if utc_only and parsed.utcoffset() != timedelta(0):
        raise ApiError(400, f"{field}: Must be an ISO 8601 date-time in UTC (ending in Z): {value}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
