"""How a task changes: creation, field updates, custom fields, section moves, projects, tags, comments, deletion.

Each edit validates its input the way Asana does (with Asana's 400 messages), applies it, and records the
system stories and events Asana writes for it, authored by whoever made the change. The HTTP handlers and the
Python actor both call these functions, so the two ways of editing cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from sandbox.asana.model import (
    Attachment,
    CustomField,
    CustomValue,
    EnumOption,
    Membership,
    Project,
    Section,
    Story,
    Tag,
    Task,
    User,
)
from sandbox.asana.render import display_value
from sandbox.asana.richtext import html_to_text, text_to_html
from sandbox.asana.state import AsanaState, parse_date, parse_datetime
from sandbox.core import ApiError

CREATE_FIELDS = frozenset(
    {
        "name", "notes", "html_notes", "assignee", "due_on", "due_at", "start_on", "completed", "projects",
        "memberships", "workspace", "tags", "followers", "external", "custom_fields", "resource_subtype", "parent",
    }
)  # fmt: skip
UPDATE_FIELDS = frozenset(
    {"name", "notes", "html_notes", "assignee", "due_on", "due_at", "start_on", "completed", "external",
     "custom_fields", "resource_subtype"}
)  # fmt: skip
SUBTYPES = frozenset({"default_task", "milestone", "approval"})
MAX_PROJECTS = 20
"""The spec's addProject: "A task can have at most 20 projects multi-homed to it"."""
EXTERNAL_CAPS = {"gid": 1024, "data": 32768}
"""Asana's "Custom external data" page caps the gid at 1,024 characters and the data at 32,768 (it also says
32,786 once: the smaller figure is the one enforced)."""


def _only_one(data: dict[str, Any], first: str, second: str) -> None:
    if first in data and second in data:
        raise ApiError(400, f"You may only provide one of {first} or {second}.")


def _text_fields(data: dict[str, Any], text: str, rich: str) -> tuple[str, str] | None:
    """Return (plain, rich) from whichever of the two fields was sent."""
    _only_one(data, text, rich)
    if rich in data:
        value = str(data[rich] or "<body></body>")
        return html_to_text(value, field=rich), value
    if text in data:
        value = str(data[text] or "")
        return value, text_to_html(value)
    return None


def _check_external(value: object) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not set(value) <= {"gid", "data"}:
        raise ApiError(400, "external: Must be an object with gid and/or data")
    external = {key: str(item) for key, item in value.items() if item is not None}
    for key, cap in EXTERNAL_CAPS.items():
        if len(external.get(key, "")) > cap:
            raise ApiError(400, f"external.{key}: Must be at most {cap} characters")
    return external


def _set_external(task: Task, value: object, app: str | None) -> bool:
    """Store ``external`` as ``app``'s own data on the task; return whether anything was stored.

    Asana documents the field as "OAuth Required" and app-specific, but not what a personal access token's write
    does (``app`` None): it is dropped without an error, the unfavourable reading for a client relying on it.
    """
    if app is None:
        return False
    external = _check_external(value)
    if external is None:
        task.externals.pop(app, None)
    else:
        task.externals[app] = external
    return True


def _day(value: date) -> str:
    return f"{value:%b} {value.day}"


def _due_text(task: Task) -> str:
    if task.due_at is not None:
        return f"changed the due date to {_day(task.due_at.date())} at {task.due_at:%H:%M} UTC"
    if task.due_on is not None:
        return f"changed the due date to {_day(task.due_on)}"
    return "removed the due date"


def _dates(start_on: date | None, due_on: date | None, due_at: datetime | None) -> dict[str, Any]:
    return {
        "start_on": start_on.isoformat() if start_on else None,
        "due_on": due_on.isoformat() if due_on else None,
        "due_at": due_at.isoformat().replace("+00:00", "Z") if due_at else None,
    }


def create_task(state: AsanaState, user: User, data: dict[str, Any], *, app: str | None = None) -> Task:
    """Create a task from a POST /tasks body; ``app`` is the OAuth app writing (None: a personal access token)."""
    unknown = sorted(set(data) - CREATE_FIELDS)
    if unknown:
        raise ApiError(400, f"{unknown[0]}: Unknown property")
    _only_one(data, "due_on", "due_at")
    if data.get("parent") is not None:
        raise ApiError(400, "parent: Subtasks are not supported by this workspace's sandbox")
    if app is not None:
        _check_external(data.get("external"))
    placements = _placements(state, data)
    if "workspace" in data:
        state.workspace_ref(str(data["workspace"]))
    elif not placements:
        raise ApiError(400, "workspace: Missing input")
    now = state.now()
    task = Task(
        gid=state.new_gid(), name=str(data.get("name") or ""), workspace=state.workspace, created_at=now,
        modified_at=now, created_by=user, followers=[user],
    )  # fmt: skip
    texts = _text_fields(data, "notes", "html_notes")
    if texts is not None:
        task.notes, task.html_notes = texts
    _set_dates(task, data)
    task.resource_subtype = _subtype(data.get("resource_subtype", "default_task"))
    _set_external(task, data.get("external"), app)
    fields = [s.custom_field for project, _ in placements for s in project.custom_field_settings]
    custom = _custom_values(state, user, fields, data.get("custom_fields"))
    if data.get("assignee") is not None:
        task.assignee = state.user(str(data["assignee"]), user, "assignee")
        _follow(task, task.assignee)
    for ref in data.get("followers") or []:
        _follow(task, state.user(str(ref), user, "followers"))
    if data.get("completed"):
        task.completed, task.completed_at, task.completed_by = True, now, user
    state.tasks[task.gid] = task
    for project, section in placements:
        task.memberships.append(Membership(project, section))
        project.task_order.append(task)
    scopes = state.task_scopes(task)
    state.event(user, task, "added", parent=state.workspace, scopes=scopes)
    for project, section in placements:
        state.event(user, task, "added", parent=project, scopes=scopes)
        state.event(user, task, "added", parent=section, scopes=scopes)
    for ref in data.get("tags") or []:
        add_tag(state, user, task, state.tag(str(ref), "tags"))
    task.custom_values.update(custom)  # set with the task: Asana writes no change story for a creation's values
    return task


def _placements(state: AsanaState, data: dict[str, Any]) -> list[tuple[Project, Section]]:
    placements: list[tuple[Project, Section]] = []
    for ref in data.get("projects") or []:
        project = state.project(str(ref), "projects")
        placements.append((project, _default_section(project)))
    for entry in data.get("memberships") or []:
        if not isinstance(entry, dict) or "project" not in entry:
            raise ApiError(400, "memberships: Each membership needs a project")
        project = state.project(str(entry["project"]), "memberships.project")
        section = _default_section(project)
        if entry.get("section") is not None:
            section = state.section(str(entry["section"]), "memberships.section")
            if section.project is not project:
                raise ApiError(400, "memberships.section: Section is not in the given project")
        placements = [p for p in placements if p[0] is not project] + [(project, section)]
    if len(placements) > MAX_PROJECTS:
        raise ApiError(400, f"projects: A task can have at most {MAX_PROJECTS} projects, got {len(placements)}")
    return placements


def _default_section(project: Project) -> Section:
    if not project.sections:
        raise ApiError(400, f"project: {project.name} has no section to put the task in")
    return project.sections[0]


def _subtype(value: object) -> str:
    if value not in SUBTYPES:
        raise ApiError(400, f"resource_subtype: Invalid value: {value}")
    return str(value)


def _custom_values(state: AsanaState, user: User, fields: list[CustomField], value: object) -> dict[str, CustomValue]:
    """Resolve a ``custom_fields`` body (field gid -> value) into values, refusing it whole on any bad entry.

    Spec: TaskRequestBase ``custom_fields`` is "An object where each key is the GID of a custom field and its
    corresponding value is either an enum GID, string, number, object, or array (depending on the custom field
    type)"; only the fields of the task's projects can hold a value (custom fields guide: a custom field setting
    on a project gives each task in it the field). Where the spec is loose the sandbox takes one form per type,
    the unfavourable reading: enum an option gid (a string), multi_enum a list of option gids, number a JSON
    number (not a numeric string), text a string, date ``{"date": "YYYY-MM-DD"}`` (the guide's object; a bare
    string or ``date_time`` is refused), people a list of users (gids, e-mails, "me"); null (and [] for lists)
    clears. A disabled option is refused (EnumOption: "will no longer be selectable").
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, "custom_fields: Must be an object mapping custom field gids to values")
    by_gid = {custom_field.gid: custom_field for custom_field in fields}
    resolved: dict[str, CustomValue] = {}
    for gid, raw in value.items():
        custom_field = by_gid.get(str(gid))
        if custom_field is None:
            raise ApiError(400, f"custom_fields: Custom field with ID {gid} is not on given object")
        resolved[custom_field.gid] = _custom_value(state, user, custom_field, raw)
    return resolved


def _custom_value(state: AsanaState, user: User, custom_field: CustomField, raw: object) -> CustomValue:  # noqa: PLR0911
    kind, gid = custom_field.resource_subtype, custom_field.gid
    where = f"custom_fields: {custom_field.name} ({gid})"
    if raw is None:
        return [] if kind in ("multi_enum", "people") else None
    if kind == "enum":
        return _option(custom_field, raw, where)
    if kind == "multi_enum":
        if not isinstance(raw, list):
            raise ApiError(400, f"{where}: A multi_enum value must be a list of enum option gids")
        return _dedupe([_option(custom_field, item, where) for item in raw])
    if kind == "people":
        # Spec: CustomFieldRequest ``people_value`` (asana.oas.yaml) is an "array of user GIDs, emails, or the
        # string "me"", each "A string identifying a user. This can either be the string "me", an email, or the
        # gid of a user." An e-mail nobody in the workspace has is a 400 (BadRequest, a malformed parameter).
        if not isinstance(raw, list) or not all(isinstance(item, str) and item for item in raw):
            raise ApiError(400, f'{where}: A people value must be a list of user gids, e-mails or "me"')
        unknown = [item for item in raw if item != "me" and "@" not in item and item not in state.users]
        if unknown:
            raise ApiError(400, f"{where}: Not a recognized user: {unknown[0]}")
        return _dedupe([state.user(item, user, where) for item in raw])
    if kind == "number":
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ApiError(400, f"{where}: A number value must be a number, got {raw!r}")
        return raw
    if kind == "text":
        if not isinstance(raw, str):
            raise ApiError(400, f"{where}: A text value must be a string, got {raw!r}")
        return raw or None
    if not isinstance(raw, dict) or set(raw) != {"date"}:
        raise ApiError(400, f'{where}: A date value must be an object {{"date": "YYYY-MM-DD"}}, got {raw!r}')
    return parse_date(raw["date"], where)


def _option(custom_field: CustomField, raw: object, where: str) -> EnumOption:
    option = custom_field.option(raw) if isinstance(raw, str) else None
    if option is None:
        raise ApiError(400, f"{where}: {raw!r} is not an enum option of this custom field")
    if not option.enabled:
        raise ApiError(400, f"{where}: The enum option {option.name} ({option.gid}) is disabled")
    return option


def _dedupe(items: list[Any]) -> list[Any]:
    return [item for index, item in enumerate(items) if all(item is not other for other in items[:index])]


STORY_VALUE_KEYS = {
    "enum": "enum_value", "multi_enum": "multi_enum_values", "number": "number_value", "text": "text_value",
    "date": "date_value", "people": "people_value",
}  # fmt: skip
"""The StoryResponse ``old_*``/``new_*`` key of each type."""


def _story_value(value: CustomValue) -> object:
    if isinstance(value, date):
        return {"date": value.isoformat()}
    return value


def set_custom_value(state: AsanaState, user: User, task: Task, custom_field: CustomField, value: CustomValue) -> None:
    """Change one custom field value of ``task``, with its story and event (no-op when it is unchanged).

    Stories: ``<type>_custom_field_changed`` with ``custom_field`` and the spec's conditional ``old_<type>_value``
    / ``new_<type>_value`` keys; a key the spec does not let be null (``new_enum_value``, the text and number ones)
    is left out when the value is blank. Event: a ``changed`` task whose change names the field
    (``{"field": "custom_fields", "new_value": <the custom field>}``) but not the value: read the task for it.
    """
    old = task.custom_values.get(custom_field.gid)
    blank: CustomValue = [] if custom_field.resource_subtype in ("multi_enum", "people") else None
    if _same(old if old is not None else blank, value):
        return
    task.custom_values[custom_field.gid] = value
    kind = custom_field.resource_subtype
    shown = display_value(custom_field, value)
    text = f'changed {custom_field.name} to "{shown}"' if shown is not None else f"cleared {custom_field.name}"
    key = STORY_VALUE_KEYS[kind]
    details: dict[str, Any] = {"custom_field": custom_field}
    for prefix, item in (("old_", old), ("new_", value)):
        if kind in ("multi_enum", "people"):
            details[prefix + key] = item or []
        elif item is not None:
            details[prefix + key] = _story_value(item)
        elif prefix == "old_" and kind == "number":  # the one scalar the spec lets be null
            details[prefix + key] = None
    state.add_story(task, user, f"{kind}_custom_field_changed", text, **details)
    state.task_changed(task, user, "custom_fields", custom_field)


def _same(old: object, new: object) -> bool:
    if isinstance(old, list) and isinstance(new, list):
        return len(old) == len(new) and all(a is b for a, b in zip(old, new, strict=True))
    if isinstance(old, EnumOption | User) or isinstance(new, EnumOption | User):
        return old is new
    return old == new


def _follow(task: Task, user: User) -> None:
    if all(follower is not user for follower in task.followers):
        task.followers.append(user)


def _set_dates(task: Task, data: dict[str, Any]) -> bool:
    """Apply due_on / due_at / start_on; setting one due field clears the other. Return whether anything moved."""
    _only_one(data, "due_on", "due_at")
    before = (task.start_on, task.due_on, task.due_at)
    if "due_on" in data:
        task.due_on, task.due_at = parse_date(data["due_on"], "due_on"), None
    if "due_at" in data:
        task.due_at, task.due_on = parse_datetime(data["due_at"], "due_at", utc_only=True), None
    if "start_on" in data:
        if "due_on" not in data and "due_at" not in data:
            raise ApiError(400, "start_on: due_on or due_at must be present when setting or unsetting start_on")
        task.start_on = parse_date(data["start_on"], "start_on")
    if task.start_on is not None and task.due_on is not None and task.start_on > task.due_on:
        raise ApiError(400, "start_on: The start date must be on or before the due date")
    return (task.start_on, task.due_on, task.due_at) != before


def update_task(state: AsanaState, user: User, task: Task, data: dict[str, Any], *, app: str | None = None) -> Task:
    """Apply a PUT /tasks/{gid} body, writing a story and an event per changed field (``app`` as in create)."""
    for key in sorted(data):
        if key not in UPDATE_FIELDS:
            message = "Cannot write this property" if key in CREATE_FIELDS else "Unknown property"
            raise ApiError(400, f"{key}: {message}")
    custom = _custom_values(state, user, task.custom_fields(), data.get("custom_fields"))
    if app is not None and "external" in data:
        _check_external(data["external"])
    texts = _text_fields(data, "notes", "html_notes")
    # A refused value refuses the whole request, so every reference is resolved before anything changes. Sources:
    # Asana's errors page says of a 400 "check the documentation and the syntax of your request and try again" (a
    # retry of the corrected request, not of its rest), and RFC 9110 section 15.5.1: the server "cannot or will not
    # process the request". The dates above are restored on a refusal for the same reason.
    assignee = state.user(str(data["assignee"]), user, "assignee") if data.get("assignee") is not None else None
    old_dates = _dates(task.start_on, task.due_on, task.due_at)
    snapshot = (task.start_on, task.due_on, task.due_at)
    try:
        dates_moved = _set_dates(task, data)
    except ApiError:
        task.start_on, task.due_on, task.due_at = snapshot
        raise
    now = state.now()
    if "name" in data and str(data["name"]) != task.name:
        old, task.name = task.name, str(data["name"])
        state.add_story(
            task, user, "name_changed", f'changed the name to "{task.name}"', old_name=old, new_name=task.name
        )
        state.task_changed(task, user, "name")
    if texts is not None and texts[1] != task.html_notes:
        task.notes, task.html_notes = texts
        state.add_story(task, user, "notes_changed", "changed the description")
        state.task_changed(task, user, "notes")
    if "assignee" in data:
        _reassign(state, user, task, assignee)
    if dates_moved:
        new_dates = _dates(task.start_on, task.due_on, task.due_at)
        state.add_story(task, user, "due_date_changed", _due_text(task), old_dates=old_dates, new_dates=new_dates)
        state.task_changed(task, user, "due_at" if "due_at" in data else "due_on")
    if "completed" in data and bool(data["completed"]) != task.completed:
        complete(state, user, task, done=bool(data["completed"]))
    if "resource_subtype" in data and data["resource_subtype"] != task.resource_subtype:
        task.resource_subtype = _subtype(data["resource_subtype"])
        state.task_changed(task, user, "resource_subtype")
    if "external" in data and _set_external(task, data["external"], app):
        task.modified_at = now
    by_gid = {custom_field.gid: custom_field for custom_field in task.custom_fields()}
    for gid, value in custom.items():
        set_custom_value(state, user, task, by_gid[gid], value)
    return task


def _reassign(state: AsanaState, user: User, task: Task, new: User | None) -> None:
    if new is task.assignee:
        return
    old, task.assignee = task.assignee, new
    if new is not None:
        _follow(task, new)
        state.add_story(task, user, "assigned", f"assigned to {new.name}", assignee=new)
    elif old is not None:
        state.add_story(task, user, "unassigned", f"unassigned from {old.name}", assignee=old)
    state.task_changed(task, user, "assignee", new)


def complete(state: AsanaState, user: User, task: Task, *, done: bool) -> None:
    """Mark ``task`` complete or incomplete (no-op if it already is)."""
    if task.completed == done:
        return
    task.completed = done
    task.completed_at = state.now() if done else None
    task.completed_by = user if done else None
    subtype, text = (
        ("marked_complete", "marked this task complete") if done else ("marked_incomplete", "marked incomplete")
    )
    state.add_story(task, user, subtype, text)
    state.task_changed(task, user, "completed")


def _place(project: Project, task: Task, before: Task | None, after: Task | None) -> None:
    """Put ``task`` in ``project``'s order, next to ``before``/``after`` or at the end."""
    if task in project.task_order:
        project.task_order.remove(task)
    if before is not None:
        project.task_order.insert(project.task_order.index(before), task)
    elif after is not None:
        project.task_order.insert(project.task_order.index(after) + 1, task)
    else:
        project.task_order.append(task)


def _anchor(state: AsanaState, data: dict[str, Any], key: str, section: Section, app: str | None) -> Task | None:
    if data.get(key) is None:
        return None
    anchor = state.task(str(data[key]), key, app)
    membership = anchor.membership(section.project)
    if membership is None or membership.section is not section:
        raise ApiError(400, f"{key}: The task {anchor.gid} is not in section {section.gid}")
    return anchor


def move_to_section(
    state: AsanaState, user: User, task: Task, section: Section, data: dict[str, Any], *, app: str | None = None
) -> None:
    """POST /sections/{gid}/addTask: put the task in ``section`` (adding it to the project if need be).

    The move leaves ``modified_at`` alone: the spec's Task ``modified_at`` lists "moving to a new container
    (project, portfolio, etc)" among what does *not* change it. The same list says a created story does, and a move
    writes one (``section_changed``, ``added_to_project``); the unfavourable reading for a client is that the move
    rule wins, so a ``modified_since`` listing misses moved tasks and only the events (removed from the old section,
    added to the new one) name them.
    """
    _only_one(data, "insert_before", "insert_after")
    before = _anchor(state, data, "insert_before", section, app)
    after = _anchor(state, data, "insert_after", section, app)
    project = section.project
    membership = task.membership(project)
    if membership is None:
        _join_project(state, user, task, section)
    elif membership.section is not section:
        old, membership.section = membership.section, section
        text = f'moved this task from "{old.name}" to "{section.name}" in {project.name}'
        state.add_story(
            task, user, "section_changed", text, touch=False, old_section=old, new_section=section, project=project
        )
        scopes = state.task_scopes(task)
        state.event(user, task, "removed", parent=old, scopes=scopes)
        state.event(user, task, "added", parent=section, scopes=scopes)
    _place(project, task, before, after)


def _join_project(state: AsanaState, user: User, task: Task, section: Section) -> None:
    project = section.project
    if len(task.memberships) >= MAX_PROJECTS:
        raise ApiError(400, f"project: A task can have at most {MAX_PROJECTS} projects")
    task.memberships.append(Membership(project, section))
    project.task_order.append(task)
    state.add_story(task, user, "added_to_project", f"added to {project.name}", touch=False, project=project)
    scopes = state.task_scopes(task)
    state.event(user, task, "added", parent=project, scopes=scopes)
    state.event(user, task, "added", parent=section, scopes=scopes)


def add_project(
    state: AsanaState, user: User, task: Task, project: Project, data: dict[str, Any], *, app: str | None = None
) -> None:
    """POST /tasks/{gid}/addProject: add the task to a project (in a section), or move it within one."""
    section = _default_section(project)
    if data.get("section") is not None:
        section = state.section(str(data["section"]), "section")
        if section.project is not project:
            raise ApiError(400, "section: Section is not in the given project")
    if task.membership(project) is None or data.get("section") is not None:
        move_to_section(state, user, task, section, data, app=app)
    else:
        before = _anchor(state, data, "insert_before", section, app)
        _place(project, task, before, _anchor(state, data, "insert_after", section, app))


def remove_project(state: AsanaState, user: User, task: Task, project: Project) -> None:
    """POST /tasks/{gid}/removeProject: take the task out of a project (no-op if it is not in it)."""
    membership = task.membership(project)
    if membership is None:
        return
    scopes = state.task_scopes(task)
    task.memberships.remove(membership)
    project.task_order.remove(task)
    state.add_story(task, user, "removed_from_project", f"removed from {project.name}", project=project)
    state.event(user, task, "removed", parent=project, scopes=scopes)


def add_tag(state: AsanaState, user: User, task: Task, tag: Tag) -> None:
    """POST /tasks/{gid}/addTag."""
    if tag in task.tags:
        return
    task.tags.append(tag)
    state.add_story(task, user, "added_to_tag", f"added to {tag.name}", tag=tag)
    change = {"field": "tags", "action": "added", "added_value": tag}
    state.event(user, task, "changed", change=change, scopes=state.task_scopes(task) | {tag.gid})


def remove_tag(state: AsanaState, user: User, task: Task, tag: Tag) -> None:
    """POST /tasks/{gid}/removeTag."""
    if tag not in task.tags:
        return
    task.tags.remove(tag)
    state.add_story(task, user, "removed_from_tag", f"removed from {tag.name}", tag=tag)
    change = {"field": "tags", "action": "removed", "removed_value": tag}
    state.event(user, task, "changed", change=change, scopes=state.task_scopes(task) | {tag.gid})


def comment(state: AsanaState, user: User, task: Task, data: dict[str, Any]) -> Story:
    """POST /tasks/{gid}/stories: add a comment from ``text`` or ``html_text``."""
    texts = _text_fields(data, "text", "html_text")
    if texts is None or not texts[0].strip():
        raise ApiError(400, "text: Missing input")
    story = state.add_story(task, user, "comment_added", texts[0], html_text=texts[1])
    story.is_pinned = bool(data.get("is_pinned", False))
    return story


def edit_comment(state: AsanaState, user: User, story: Story, data: dict[str, Any]) -> Story:
    """PUT /stories/{gid}: only comments are editable, and only by their author."""
    if story.type != "comment":
        raise ApiError(403, "story: Only comments can be edited")
    if story.created_by is not user:
        raise ApiError(403, "story: You can only edit your own comments")
    texts = _text_fields(data, "text", "html_text")
    if texts is not None:
        story.text, story.html_text = texts
        story.is_edited = True
    if "is_pinned" in data:
        story.is_pinned = bool(data["is_pinned"])
    state.event(user, story, "changed", parent=story.task, scopes=state.task_scopes(story.task))
    return story


def delete_comment(state: AsanaState, user: User, story: Story) -> None:
    """DELETE /stories/{gid}: a user can only delete comments they wrote."""
    if story.type != "comment" or story.created_by is not user:
        raise ApiError(403, "story: You can only delete comments you created")
    del state.stories[story.gid]
    story.task.modified_at = state.now()
    state.event(user, story, "deleted", parent=story.task, scopes=state.task_scopes(story.task))


def delete_task(state: AsanaState, user: User, task: Task) -> None:
    """DELETE /tasks/{gid}: the task goes to the trash and is gone from the API."""
    scopes = state.task_scopes(task)
    for project in task.projects:
        project.task_order.remove(task)
    del state.tasks[task.gid]
    for gid in [gid for gid, story in state.stories.items() if story.task is task]:
        del state.stories[gid]
    for gid in [gid for gid, attachment in state.attachments.items() if attachment.parent is task]:
        del state.attachments[gid]
    task.modified_at = state.now()
    state.event(user, task, "deleted", scopes=scopes)


def attach(state: AsanaState, user: User, task: Task, form: Mapping[str, str]) -> Attachment:
    """POST /attachments: attach a link (``external``) to a task; file uploads (``asana``) are not emulated.

    The spec's Task ``modified_at`` moves when the "attachments" field is updated and when a story is created;
    Asana writes an attachment story (PUT /stories says "attachment stories can be pinned"), here subtype
    ``attachment_added``, which moves it.
    """
    subtype = form.get("resource_subtype") or "asana"  # AttachmentRequest: "asana" when not specified
    if subtype == "asana":
        if not form.get("file"):
            raise ApiError(400, "file: Missing input")
        raise ApiError(400, "file: File uploads are not emulated by the sandbox; attach a link (external)")
    if subtype != "external":
        raise ApiError(400, f"resource_subtype: Invalid value: {subtype}")
    url, name = form.get("url") or "", form.get("name") or ""
    for key, value in (("url", url), ("name", name)):
        if not value.strip():
            raise ApiError(400, f"{key}: Missing input")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError(400, f"url: Not a valid URL: {url}")
    if form.get("connect_to_app", "false").lower() not in ("false", "0", ""):
        # Needs an OAuth app installed on a project of the task; the sandbox installs none.
        raise ApiError(400, "connect_to_app: The app is not installed on a project of this task")
    attachment = Attachment(gid=state.new_gid(), name=name, url=url, parent=task, created_at=state.now())
    state.attachments[attachment.gid] = attachment
    state.add_story(task, user, "attachment_added", f"attached {name}")
    return attachment


def delete_attachment(state: AsanaState, attachment: Attachment) -> None:
    """DELETE /attachments/{gid}: "attachment is trashed on a task" moves the task's ``modified_at`` (spec)."""
    del state.attachments[attachment.gid]
    attachment.parent.modified_at = state.now()
