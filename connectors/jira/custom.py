"""Jira custom fields and priority: the site's field list, an issue's values as record values, values to write.

``GET /field`` (one request per connector) names every custom field's id (``customfield_10001``) and kind; reads
then ask for those ids beside the system fields, in the same search or GET. Options are written by their value
(``{"value": "SMB"}``), which Jira accepts on Cloud and Server alike, so a write needs no option ids; the options
themselves (for ``syncd check``) come from one issue's ``editmeta``, which both deployments have.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from syncd.errors import InvalidItem
from syncd.model import CustomField, Person, read_or_keep

TOOL = "jira"
TYPE_PREFIX = "com.atlassian.jira.plugin.system.customfieldtypes:"
KINDS = {
    "select": "enum",
    "radiobuttons": "enum",
    "multiselect": "multi",
    "multicheckboxes": "multi",
    "labels": "multi",
    "textfield": "text",
    "textarea": "text",
    "float": "number",
    "datepicker": "date",
    "userpicker": "person",
    "multiuserpicker": "people",
}
"""Jira's custom field type (after the plug-in prefix) -> syncd's kind (CustomField.type)."""


def definitions(fields: list[Mapping[str, Any]]) -> dict[str, CustomField]:
    """Field name -> definition of every custom field syncd can carry (options not known yet: see editmeta)."""
    found: dict[str, CustomField] = {}
    for field in fields:
        if not field.get("custom"):
            continue
        jira_kind = str((field.get("schema") or {}).get("custom", "")).removeprefix(TYPE_PREFIX)
        kind = KINDS.get(jira_kind)
        if kind is not None:
            found[str(field["name"])] = CustomField(
                str(field["name"]), str(field["id"]), kind, open=jira_kind == "labels"
            )
    return found


def issue_values(
    fields: Mapping[str, Any], known: Mapping[str, CustomField], person: Callable[[Any], Person]
) -> dict[str, Any]:
    """An issue's custom field values by name (None: blank), for the fields the read asked for."""
    values: dict[str, Any] = {}
    for name, custom in known.items():
        if custom.id not in fields:
            continue
        raw = fields[custom.id]
        if raw in (None, [], ""):
            values[name] = () if custom.type in ("multi", "people") else None
        elif custom.type == "enum":
            values[name] = raw.get("value") if isinstance(raw, dict) else str(raw)
        elif custom.type == "multi":
            values[name] = tuple(sorted(item.get("value") if isinstance(item, dict) else str(item) for item in raw))
        elif custom.type == "date":
            values[name] = read_or_keep(str(raw), date.fromisoformat)
        elif custom.type == "person":
            values[name] = person(raw)
        elif custom.type == "people":
            values[name] = tuple(sorted((person(user) for user in raw), key=Person.label))
        else:
            values[name] = raw
    return values


def to_write(  # noqa: PLR0911 - one return per kind
    custom: CustomField,
    value: Any,  # noqa: ANN401 - a record value of the field's kind
    user_ref: Callable[[Person], dict[str, str]],
    *,
    field: str,
) -> Any:  # noqa: ANN401 - the JSON Jira takes
    """The value of ``custom`` in an edit's ``fields`` (None or an empty list clears it)."""
    if value is None or value == ():
        return [] if custom.type in ("multi", "people") else None
    if custom.type == "enum":
        return {"value": str(value)}
    if custom.type == "multi":
        return sorted(value) if custom.open else [{"value": str(item)} for item in sorted(value)]
    if custom.type == "date":
        if not isinstance(value, date):
            raise InvalidItem(TOOL, f"{value!r} is not a date", field=field)
        return value.isoformat()
    if custom.type == "person":
        return user_ref(value)
    if custom.type == "people":
        return [user_ref(person) for person in value]
    return value


def with_options(known: Mapping[str, CustomField], editmeta: Mapping[str, Any]) -> tuple[CustomField, ...]:
    """The definitions with the options one issue's ``editmeta`` lists (select and multi-select fields)."""
    meta = editmeta.get("fields") or {}
    found = []
    for custom in known.values():
        allowed = (meta.get(custom.id) or {}).get("allowedValues") or []
        options = tuple(str(option.get("value")) for option in allowed if isinstance(option, dict))
        found.append(CustomField(custom.name, custom.id, custom.type, options, custom.open))
    return tuple(found)


def priorities(editmeta: Mapping[str, Any]) -> tuple[str, ...]:
    """The priorities one issue's ``editmeta`` offers."""
    allowed = ((editmeta.get("fields") or {}).get("priority") or {}).get("allowedValues") or []
    return tuple(str(option.get("name")) for option in allowed if isinstance(option, dict))
