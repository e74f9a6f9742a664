"""Custom fields: their ``/field`` entries, contexts and options, issue values, edits and changelog items.

Sources (``../shared/specs/jira-cloud.v3.json``): GET /rest/api/3/field (``FieldDetails`` with ``JsonTypeBean``
``schema: {type, items, custom, customId}``), GET /rest/api/3/field/{fieldId}/context (``CustomFieldContext``) and
.../context/{contextId}/option (``CustomFieldContextOption``: id, value, disabled), GET
/rest/api/3/issue/{issueIdOrKey}/editmeta (``FieldMetadata`` with ``allowedValues``), and Edit issue (PUT
/rest/api/3/issue/{issueIdOrKey}, ``fields``) for values. The type keys are Jira's own
(``com.atlassian.jira.plugin.system.customfieldtypes:<kind>``). Value shapes, as Jira returns them: select
``{"self", "value", "id"}``, multiselect a list of those, textfield a string, float a number, datepicker
``"yyyy-MM-dd"``, userpicker a user, labels a list of strings; an empty field is null.

Writes take only those shapes (an option by ``{"id"}`` or ``{"value"}``; a number as a JSON number, not a string:
the strict reading). A bad value is a 400 ``{"errorMessages": [], "errors": {"customfield_NNNNN": "..."}}``, the
whole edit refused. A disabled option cannot be chosen. A change writes a changelog item with ``field`` = the
field's name, ``fieldtype`` ``custom`` and ``fieldId`` = its id. Only the ``set`` operation of ``update`` is
emulated for custom fields, plus ``add``/``remove`` on labels fields.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sandbox.core import JSON
from sandbox.jira.model import ChangeItem, CustomField, FieldOption, JiraState

TYPE_PREFIX = "com.atlassian.jira.plugin.system.customfieldtypes:"
SCHEMAS: dict[str, tuple[str, str | None]] = {
    "select": ("option", None),
    "multiselect": ("array", "option"),
    "textfield": ("string", None),
    "float": ("number", None),
    "datepicker": ("date", None),
    "userpicker": ("user", None),
    "labels": ("array", "string"),
}
"""Each kind's ``schema.type`` and ``schema.items``."""
TEXT_MAX = 255
NOT_AN_OPTION = "Could not find valid 'id' or 'value' in the Parent Option object."


def schema(custom: CustomField) -> dict[str, JSON]:
    """The field's ``schema`` as /field, editmeta and ``expand=schema`` give it."""
    kind, items = SCHEMAS[custom.kind]
    body: dict[str, JSON] = {"type": kind}
    if items is not None:
        body["items"] = items
    return body | {"custom": TYPE_PREFIX + custom.kind, "customId": custom.number}


def field_details(custom: CustomField) -> dict[str, JSON]:
    """A custom field's entry in GET /field."""
    return {
        "id": custom.id,
        "key": custom.id,
        "name": custom.name,
        "custom": True,
        "orderable": True,
        "navigable": True,
        "searchable": True,
        "clauseNames": [f"cf[{custom.number}]", custom.name],
        "schema": schema(custom),
    }


def option_json(api: str, option: FieldOption) -> dict[str, JSON]:
    """An option as an issue's select value shows it."""
    return {"self": f"{api}/customFieldOption/{option.id}", "value": option.value, "id": option.id}


def render(  # noqa: PLR0911 - one return per kind
    custom: CustomField,
    value: Any,  # noqa: ANN401 - the value's type is the field's
    api: str,
    user: Callable[[str], JSON],
) -> JSON:
    """The wire value of a custom field on an issue (null when empty)."""
    if value is None or value == []:
        return None
    if custom.kind == "select":
        return option_json(api, value)
    if custom.kind == "multiselect":
        return [option_json(api, option) for option in value]
    if custom.kind == "datepicker":
        return str(value.isoformat())
    if custom.kind == "userpicker":
        return user(value)
    if custom.kind == "labels":
        return list(value)
    return value  # text or number, as stored


def _option(custom: CustomField, value: JSON, errors: dict[str, str]) -> FieldOption | None:
    if not isinstance(value, dict) or ("id" not in value and "value" not in value):
        errors[custom.id] = NOT_AN_OPTION
        return None
    if "id" in value:
        found = next((o for o in custom.options if o.id == str(value["id"])), None)
        problem = f"Option id '{value['id']}' is not valid"
    else:
        found = next((o for o in custom.options if o.value == value["value"]), None)
        problem = f"Option value '{value['value']}' is not valid"
    if found is None or found.disabled:
        errors[custom.id] = problem
        return None
    return found


def parse(  # noqa: PLR0911 - one branch per kind
    custom: CustomField, value: JSON, errors: dict[str, str], person: Callable[[str, JSON, dict[str, str]], str | None]
) -> Any:  # noqa: ANN401
    """Read a written value into the internal form, recording Jira's message in ``errors`` on a bad one."""
    if value is None:
        return [] if custom.kind in ("multiselect", "labels") else None
    if custom.kind == "select":
        return _option(custom, value, errors)
    if custom.kind == "multiselect":
        if not isinstance(value, list):
            errors[custom.id] = "data was not an array"
            return []
        chosen = [_option(custom, item, errors) for item in value]
        return list(dict.fromkeys(option for option in chosen if option is not None))
    if custom.kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors[custom.id] = "Operation value must be a number"
            return None
        return float(value)
    if custom.kind == "userpicker":
        return person(custom.id, value, errors)
    if custom.kind == "labels":
        return _labels(custom, value, errors)
    if not isinstance(value, str):
        errors[custom.id] = "Operation value must be a string"
        return None
    if custom.kind == "datepicker":
        return _date(custom, value, errors)
    if len(value.encode("utf-16-le")) // 2 > TEXT_MAX:
        errors[custom.id] = f"The entered text is too long. It exceeds the allowed limit of {TEXT_MAX} characters."
    return value or None


def _labels(custom: CustomField, value: JSON, errors: dict[str, str]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors[custom.id] = "Operation value must be a list of strings"
        return []
    for label in value:
        if not label or any(c.isspace() for c in label):
            errors[custom.id] = f"The label '{label}' contains spaces which is invalid."
    return list(dict.fromkeys(value))


def _date(custom: CustomField, value: str, errors: dict[str, str]) -> date | None:
    if not value:
        return None
    try:
        if len(value) != len("yyyy-MM-dd"):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        errors[custom.id] = f"Error parsing date string: {value}"
        return None


def change_item(state: JiraState, cloud: bool, custom: CustomField, old: Any, new: Any) -> ChangeItem:  # noqa: ANN401
    """The changelog item of a custom field change: ``field`` is its name, ``fieldtype`` ``custom``."""

    def ids_and_text(value: Any) -> tuple[str | None, str | None]:  # noqa: ANN401, PLR0911 - one per kind
        if value is None or value == []:
            return None, None
        if custom.kind == "select":
            return value.id, value.value
        if custom.kind == "multiselect":
            return "[" + ", ".join(o.id for o in value) + "]", ",".join(o.value for o in value)
        if custom.kind == "labels":
            return None, " ".join(value)
        if custom.kind == "datepicker":
            return value.isoformat(), value.isoformat()
        if custom.kind == "userpicker":
            user = state.users[value]
            return (user.account_id if cloud else user.username), user.display_name
        if custom.kind == "float":
            return None, f"{value:g}"
        return None, str(value)

    from_id, from_text = ids_and_text(old)
    to_id, to_text = ids_and_text(new)
    return ChangeItem(custom.name, custom.id, from_id, from_text, to_id, to_text, fieldtype="custom")


def empty(custom: CustomField) -> Any:  # noqa: ANN401
    """The internal empty value of a field."""
    return [] if custom.kind in ("multiselect", "labels") else None
