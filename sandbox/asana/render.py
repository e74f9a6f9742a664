"""What Asana objects look like on the wire: compact and full records, ``opt_fields`` selection, timestamps.

Lists answer compact records ({gid, resource_type, name, ...}); single GETs answer the full record; a request's
``opt_fields`` (comma-separated, dotted paths such as ``memberships.section.name``) replaces either with exactly
the named fields plus ``gid``. Nested resources named without sub-fields come back as {gid, resource_type}.
A renderer answers for one OAuth app (or none, for a personal access token): a task's ``external`` is that app's;
and for one viewer: a user's hidden e-mail is left out for everyone else.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, TypeGuard

from sandbox.asana.model import (
    Attachment,
    CustomField,
    CustomFieldSetting,
    EnumOption,
    Event,
    FieldValue,
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
from sandbox.asana.state import AsanaState

FieldTree = dict[str, "FieldTree"]
"""Parsed ``opt_fields``: each requested field maps to the sub-fields requested of it."""

COMPACT: dict[str, tuple[str, ...]] = {
    "user": ("gid", "resource_type", "name"),
    "workspace": ("gid", "resource_type", "name"),
    "project": ("gid", "resource_type", "name"),
    "section": ("gid", "resource_type", "name"),
    "tag": ("gid", "resource_type", "name"),
    "task": ("gid", "resource_type", "name", "resource_subtype"),
    "story": ("gid", "resource_type", "created_at", "created_by", "resource_subtype", "text"),
    "webhook": ("gid", "resource_type", "active", "resource", "target"),
    "attachment": ("gid", "resource_type", "name", "resource_subtype"),
    # GET /workspaces/{gid}/custom_fields answers CustomFieldCompact: the definition, enum options included.
    "custom_field": (
        "gid", "resource_type", "name", "resource_subtype", "type", "enum_options", "is_formula_field",
        "representation_type", "id_prefix",
    ),
    "custom_field_setting": ("gid", "resource_type", "custom_field", "is_important", "parent", "project"),
    "enum_option": ("gid", "resource_type", "name", "enabled", "color"),
}  # fmt: skip
OPT_IN: dict[str, frozenset[str]] = {
    # completed_by is answered on request only, as by the real service.
    "task": frozenset({"html_notes", "external", "completed_by"}),
    "story": frozenset({"html_text"}),
    "custom_field": frozenset({"description"}),  # CustomFieldBase: "[Opt In]. The description of the custom field."
}
Resource = (
    User | Workspace | Project | Section | Tag | Task | Story | Webhook | Attachment | CustomField | CustomFieldSetting
    | EnumOption | FieldValue
)  # fmt: skip
ASSET_URL = "https://app.asana.com/app/asana/-/get_asset?asset_id="
"""Where ``permanent_url`` points, in the form of the spec's example."""


def parse_opt_fields(raw: str | None) -> FieldTree | None:
    """Parse ``opt_fields`` into a tree (None when the request did not send any)."""
    if raw is None or not raw.strip():
        return None
    tree: FieldTree = {}
    for path in raw.split(","):
        node = tree
        for part in path.strip().split("."):
            if part:
                node = node.setdefault(part, {})
    return tree


def timestamp(value: datetime) -> str:
    """Format a time the way Asana does: UTC, milliseconds, ``Z``."""
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


class Renderer:
    """Turn model objects into Asana JSON for one emulator's state, as seen by ``app`` (None: a PAT)."""

    def __init__(self, state: AsanaState, app: str | None = None, viewer: User | None = None) -> None:
        self.state = state
        self.app = app
        self.viewer = viewer

    def for_request(self, app: str | None, viewer: User | None) -> Renderer:
        """The renderer of the same state for a request by ``viewer`` with ``app``'s OAuth token (None: a PAT).

        The viewer decides whose e-mails show (:meth:`AsanaState.email_visible`).
        """
        if app == self.app and viewer is self.viewer:
            return self
        return Renderer(self.state, app, viewer)

    def compact(self, obj: Resource, tree: FieldTree | None = None) -> dict[str, Any]:
        """Return the compact record (what lists answer), or the ``opt_fields`` selection."""
        if tree is not None:
            return self.select(obj, tree)
        values = self.values(obj)
        return {key: self.plain(values[key]) for key in COMPACT[obj.resource_type] if key in values}

    def full(self, obj: Resource, tree: FieldTree | None = None) -> dict[str, Any]:
        """Return the full record (what single GETs answer), or the ``opt_fields`` selection."""
        if tree is not None:
            return self.select(obj, tree)
        values = self.values(obj)
        hidden = OPT_IN.get(obj.resource_type, frozenset())
        if isinstance(obj, Task) and self.app in obj.externals:
            hidden = hidden - {"external"}
        return {key: self.plain(value) for key, value in values.items() if key not in hidden}

    def select(self, obj: object, tree: FieldTree) -> dict[str, Any]:
        """Return exactly the requested fields (and ``gid``) of ``obj``; unknown names are left out."""
        values = self.values(obj) if _is_resource(obj) else self._container(obj)  # type: ignore[arg-type]  # _is_resource narrows
        picked: dict[str, Any] = {"gid": values["gid"]} if "gid" in values else {}
        for key, sub in tree.items():
            if key in values:
                picked[key] = self._nested(values[key], sub)
        return picked

    def _nested(self, value: object, sub: FieldTree) -> object:
        if type(value) in _SCALARS:  # most fields: answered as they are, without the checks below
            return value
        if isinstance(value, list):
            return [self._nested(item, sub) for item in value]
        if _is_resource(value):
            return self.select(value, sub) if sub else {"gid": value.gid, "resource_type": value.resource_type}
        if isinstance(value, (Membership, dict)):
            return self.select(value, sub) if sub else self.plain(value)
        return self.plain(value)

    def _container(self, obj: Membership | dict[str, Any]) -> dict[str, Any]:
        if isinstance(obj, Membership):
            return {"project": obj.project, "section": obj.section}
        return obj

    def plain(self, value: object) -> object:  # noqa: PLR0911 - one return per JSON kind reads clearest
        """Return the JSON form of a field value, nested resources compact."""
        if type(value) in _SCALARS:
            return value
        if isinstance(value, datetime):
            return timestamp(value)
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, list):
            return [self.plain(item) for item in value]
        if isinstance(value, Membership):
            return {"project": self.compact(value.project), "section": self.compact(value.section)}
        if isinstance(value, dict):
            return {key: self.plain(item) for key, item in value.items()}
        if isinstance(value, FieldValue):  # a task's custom_fields hold the whole value record, not a compact one
            return {key: self.plain(item) for key, item in self.values(value).items()}
        if _is_resource(value):
            return self.compact(value)
        return value

    def values(self, obj: Resource) -> dict[str, Any]:  # noqa: PLR0911 - one return per resource type
        """Every field ``obj`` can answer with (opt-in ones included), nested values still objects."""
        base: dict[str, Any] = {"gid": obj.gid, "resource_type": obj.resource_type}
        if isinstance(obj, Task):
            return base | self._task(obj)
        if isinstance(obj, Story):
            return base | self._story(obj)
        if isinstance(obj, User):
            user: dict[str, Any] = {"name": obj.name, "photo": None, "workspaces": [self.state.workspace]}
            if self.state.email_visible(obj, self.viewer):  # a hidden e-mail is left out, even when asked for
                user["email"] = obj.email
            return base | user
        if isinstance(obj, Workspace):
            return base | {"name": obj.name, "email_domains": [obj.name], "is_organization": True}
        if isinstance(obj, Project):
            return base | self._project(obj)
        if isinstance(obj, Section):
            return base | {
                "name": obj.name,
                "created_at": obj.created_at,
                "project": obj.project,
                "projects": [obj.project],
            }
        if isinstance(obj, Tag):
            return base | {
                "name": obj.name, "color": obj.color, "notes": obj.notes, "created_at": obj.created_at,
                "followers": [], "workspace": obj.workspace, "permalink_url": f"https://app.asana.com/0/{obj.gid}/list",
            }  # fmt: skip
        if isinstance(obj, Attachment):
            return base | self._attachment(obj)
        if isinstance(obj, (FieldValue, CustomField, CustomFieldSetting, EnumOption)):
            return base | self._custom(obj)
        return base | self._webhook(obj)

    def _custom(self, obj: FieldValue | CustomField | CustomFieldSetting | EnumOption) -> dict[str, Any]:
        """A custom field's definition, setting, option, or a task's value of it."""
        if isinstance(obj, FieldValue):
            return self._definition(obj.field) | _field_value(obj)
        if isinstance(obj, CustomField):
            return self._definition(obj) | {"description": obj.description}
        if isinstance(obj, CustomFieldSetting):
            return {
                "custom_field": obj.custom_field, "is_important": obj.is_important, "parent": obj.project,
                "project": obj.project,
            }  # fmt: skip
        return {"name": obj.name, "enabled": obj.enabled, "color": obj.color}

    def _task(self, task: Task) -> dict[str, Any]:
        first_project = task.projects[0].gid if task.projects else "0"
        values: dict[str, Any] = {
            "name": task.name, "resource_subtype": task.resource_subtype, "notes": task.notes,
            "html_notes": task.html_notes, "completed": task.completed, "completed_at": task.completed_at,
            "completed_by": task.completed_by, "assignee": task.assignee, "due_on": task.due_on,
            "due_at": task.due_at, "start_on": task.start_on, "start_at": None, "memberships": task.memberships,
            "projects": task.projects, "tags": task.tags, "created_at": task.created_at,
            "custom_fields": [FieldValue(f, task.custom_values.get(f.gid)) for f in task.custom_fields()],
            "created_by": task.created_by, "modified_at": task.modified_at,
            "permalink_url": f"https://app.asana.com/0/{first_project}/{task.gid}", "workspace": task.workspace,
            "followers": task.followers, "num_subtasks": 0, "parent": None, "liked": False, "likes": [],
            "num_likes": 0,
        }  # fmt: skip
        if self.app is not None:  # OAuth only: a PAT never sees the field, even when it asks for it
            values["external"] = task.externals.get(self.app)
        return values

    def _story(self, story: Story) -> dict[str, Any]:
        values: dict[str, Any] = {
            "created_at": story.created_at, "created_by": story.created_by, "resource_subtype": story.resource_subtype,
            "type": story.type, "text": story.text, "is_editable": story.type == "comment",
            "is_edited": story.is_edited, "target": story.task, "source": "api",
        }  # fmt: skip
        if story.type == "comment":
            values |= {"html_text": story.html_text, "is_pinned": story.is_pinned, "liked": False, "num_likes": 0}
        return values | story.details

    def _project(self, project: Project) -> dict[str, Any]:
        return {
            "name": project.name, "archived": False, "color": None, "created_at": project.created_at,
            "modified_at": project.modified_at, "current_status": None,
            "custom_field_settings": project.custom_field_settings,
            "default_view": "board", "due_on": None, "start_on": None, "members": project.members,
            "followers": project.members, "notes": "", "html_notes": "<body></body>", "owner": project.owner,
            "public": True, "privacy_setting": "public_to_workspace", "completed": False, "completed_at": None,
            "completed_by": None, "workspace": project.workspace,
            "permalink_url": f"https://app.asana.com/0/{project.gid}/list",
        }  # fmt: skip

    @staticmethod
    def _definition(custom_field: CustomField) -> dict[str, Any]:
        """What a custom field is (spec: CustomFieldBase/CustomFieldResponse), conditional keys by type.

        ``enum_options`` only for enum and multi_enum, ``precision``/``format`` only for numbers ("Only relevant
        for custom fields of type Number"): a client must not expect a key its field's type does not have.
        """
        kind = custom_field.resource_subtype
        values: dict[str, Any] = {
            "name": custom_field.name, "resource_subtype": kind, "type": kind, "representation_type": kind,
            "id_prefix": None, "is_formula_field": False, "is_value_read_only": False, "enabled": True,
            "is_global_to_workspace": False, "has_notifications_enabled": True, "asana_created_field": None,
            "created_by": custom_field.created_by, "privacy_setting": "public_with_guests",
            "default_access_level": "user",
        }  # fmt: skip
        if kind in ("enum", "multi_enum"):
            values["enum_options"] = custom_field.enum_options
        if kind == "number":
            values |= {"precision": custom_field.precision, "format": "none", "currency_code": None}
        return values

    @staticmethod
    def _attachment(attachment: Attachment) -> dict[str, Any]:
        """An external attachment; the spec does not say what its URLs are.

        ``view_url`` is the attached URL ("where the attachment can be viewed"); ``download_url`` is null, the
        unfavourable reading (Asana holds no content of a link), so a client must read the URL from ``view_url``.
        ``size`` is absent (only for ``asana`` uploads) and ``connected_to_app`` false (no app is installed).
        """
        return {
            "name": attachment.name, "resource_subtype": attachment.resource_subtype,
            "created_at": attachment.created_at, "host": "external", "view_url": attachment.url, "download_url": None,
            "permanent_url": ASSET_URL + attachment.gid, "parent": attachment.parent, "connected_to_app": False,
        }  # fmt: skip

    def _webhook(self, hook: Webhook) -> dict[str, Any]:
        failures = [(at, d) for at, d in hook.deliveries if d.status is not None and not 200 <= d.status < 300]
        successes = [at for at, d in hook.deliveries if d.status is not None and 200 <= d.status < 300]
        last_success = max([*successes, *([hook.last_success_at] if hook.last_success_at else [])], default=None)
        last_failure = failures[-1] if failures else None
        return {
            "active": hook.active, "resource": hook.resource, "target": hook.target, "created_at": hook.created_at,
            "last_success_at": last_success, "last_failure_at": last_failure[0] if last_failure else None,
            "last_failure_content": f"{last_failure[1].status}" if last_failure else "",
            "delivery_retry_count": 0, "filters": hook.filters,
        }  # fmt: skip

    def event(self, event: Event, *, skinny: bool) -> dict[str, Any]:
        """Return an event: compact references for ``/events``, bare {gid, resource_type} for webhooks."""

        def ref(obj: object) -> dict[str, Any] | None:
            if not _is_resource(obj):
                return None
            named = {"gid": obj.gid, "resource_type": obj.resource_type}
            if not skinny and hasattr(obj, "name"):
                named["name"] = obj.name
            if hasattr(obj, "resource_subtype"):
                named["resource_subtype"] = obj.resource_subtype
            return named

        body: dict[str, Any] = {
            "user": ref(event.user), "created_at": timestamp(event.created_at), "action": event.action,
            "resource": ref(event.resource), "parent": ref(event.parent), "type": event.resource.resource_type,
        }  # fmt: skip
        if event.change is not None:
            body["change"] = {key: ref(v) if _is_resource(v) else v for key, v in event.change.items()}
        return body


def display_value(custom_field: CustomField, value: object) -> str | None:
    """The spec's ``display_value``: "A string representation for the value", null when the value is blank.

    Options by name and people by name, joined with ", "; numbers rounded to the field's precision.
    """
    if value is None or value in ([], ""):
        return None
    if isinstance(value, list):
        return ", ".join(item.name for item in value)
    if isinstance(value, EnumOption):
        return value.name
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float) and custom_field.resource_subtype == "number":
        return f"{value:.{custom_field.precision}f}"
    return str(value)


def _field_value(entry: FieldValue) -> dict[str, Any]:
    """A task's value of one field: only the key of the field's type ("*Conditional*" in CustomFieldCompact)."""
    kind, value = entry.field.resource_subtype, entry.value
    values: dict[str, Any] = {"display_value": display_value(entry.field, value)}
    if kind == "enum":
        values["enum_value"] = value
    elif kind == "multi_enum":
        values["multi_enum_values"] = value or []
    elif kind == "people":
        values["people_value"] = value or []
    elif kind == "number":
        values["number_value"] = value
    elif kind == "text":
        values["text_value"] = value
    elif kind == "date":  # no ``date_time``: the spec's says null without a time but types it a non-null string
        values["date_value"] = {"date": value.isoformat()} if isinstance(value, date) else None
    return values


_SCALARS = frozenset({str, int, float, bool, type(None)})
"""Types whose values are their own JSON form."""

_RESOURCES = (
    User, Workspace, Project, Section, Tag, Task, Story, Webhook, Attachment, CustomField, CustomFieldSetting,
    EnumOption, FieldValue,
)  # fmt: skip
"""Built once: a union spelled inside the check would be built again on every call of this hot path."""


def _is_resource(value: object) -> TypeGuard[Resource]:
    return isinstance(value, _RESOURCES)
