"""Asana custom fields: the project's definitions, a task's values as record values, and values to write.

The project's custom field settings are read once per connector (one request, with the enum options), so names
resolve to gids without a request per write; a task's values come with the task read itself (``opt_fields``
names the value sub-fields: ``custom_fields`` alone answers only ``{gid, resource_type}``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from syncd.errors import InvalidItem
from syncd.model import CustomField, Person, Unreadable, read_or_keep

TOOL = "asana"

VALUE_FIELDS = [
    f"custom_fields.{name}"
    for name in (
        "name",
        "resource_subtype",
        "enum_value.name",
        "multi_enum_values.name",
        "text_value",
        "number_value",
        "date_value.date",
        "people_value.email",
        "people_value.name",
    )
]
"""What a task read asks of its custom fields (their values, by the field's name)."""

SETTING_FIELDS = "custom_field.name,custom_field.resource_subtype,custom_field.enum_options.name"

KINDS = {"enum": "enum", "multi_enum": "multi", "text": "text", "number": "number", "date": "date", "people": "people"}
"""Asana's custom field subtype -> syncd's kind (CustomField.type)."""


def definitions(settings: list[Mapping[str, Any]]) -> dict[str, tuple[CustomField, dict[str, str]]]:
    """Field name -> (its definition, option name -> option gid), from the project's custom field settings."""
    found: dict[str, tuple[CustomField, dict[str, str]]] = {}
    for setting in settings:
        field = setting.get("custom_field") or {}
        kind = KINDS.get(str(field.get("resource_subtype")))
        if kind is None:
            continue  # a formula or another kind syncd does not write
        options = {str(o["name"]): str(o["gid"]) for o in field.get("enum_options") or []}
        found[str(field["name"])] = (CustomField(str(field["name"]), str(field["gid"]), kind, tuple(options)), options)
    return found


def task_values(task: Mapping[str, Any], person: Callable[[Mapping[str, Any]], Person]) -> dict[str, Any]:
    """A task's custom field values by field name, as record values (None: blank)."""
    values: dict[str, Any] = {}
    for entry in task.get("custom_fields") or []:
        kind = KINDS.get(str(entry.get("resource_subtype")))
        if kind is None:
            continue
        value: Any = None
        if kind == "enum":
            value = (entry.get("enum_value") or {}).get("name")
        elif kind == "multi":
            value = tuple(sorted(str(o["name"]) for o in entry.get("multi_enum_values") or []))
        elif kind == "people":
            value = tuple(sorted((person(user) for user in entry.get("people_value") or []), key=Person.label))
        elif kind == "date":
            day = (entry.get("date_value") or {}).get("date")
            value = read_or_keep(str(day), date.fromisoformat) if day else None
        elif kind == "number":
            value = entry.get("number_value")
        else:
            value = entry.get("text_value") or None
        values[str(entry["name"])] = value
    return values


def to_write(
    definition: tuple[CustomField, dict[str, str]],
    value: Any,  # noqa: ANN401 - a record value of the field's kind
    user_ref: Callable[[Person], str],
    *,
    field: str,
    ref: str | None,
) -> Any:  # noqa: ANN401 - the JSON Asana takes
    """The value to send in a task's ``custom_fields`` (None clears); an option Asana lacks is refused here."""
    custom, options = definition
    kind = custom.type
    if value is None or value == ():
        return [] if kind in ("multi", "people") else None
    if kind in ("enum", "multi"):
        wanted = (value,) if kind == "enum" else tuple(value)
        missing = [str(option) for option in wanted if option not in options]
        if missing:
            raise InvalidItem(
                TOOL,
                f"{custom.name!r} has no option {missing[0]!r} in Asana (it has {', '.join(options)})",
                ref=ref,
                field=field,
            )
        gids = [options[str(option)] for option in wanted]
        return gids[0] if kind == "enum" else gids
    if kind == "people":
        people = value if isinstance(value, tuple | list) else (value,)
        return [user_ref(person) for person in people]
    if kind == "date":
        return {"date": value.isoformat()} if isinstance(value, date) else None
    if isinstance(value, Unreadable):
        return None
    return value
