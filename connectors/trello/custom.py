"""Trello custom fields (the Custom Fields power-up): the board's definitions, a card's items, items to write.

The definitions are read once per connector (``GET /boards/{id}/customFields``, with list options); a card's
items come with the card read itself (``customFieldItems=true``). Trello writes one field per request
(``PUT /cards/{id}/customField/{field id}/item``), so each custom field written costs one request.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from syncd.errors import InvalidItem
from syncd.model import CustomField, Unreadable, read_or_keep

TOOL = "trello"

KINDS = {"list": "enum", "text": "text", "number": "number", "date": "date", "checkbox": "checkbox"}
"""Trello's custom field type -> syncd's kind (CustomField.type)."""

Definition = tuple[CustomField, dict[str, str]]
"""A field's definition and its options (text -> option id)."""


def definitions(fields: list[Mapping[str, Any]]) -> dict[str, Definition]:
    """Field name -> (its definition, option text -> option id), from the board's custom fields."""
    found: dict[str, Definition] = {}
    for field in fields:
        kind = KINDS.get(str(field.get("type")))
        if kind is None:
            continue
        options = {str(o["value"]["text"]): str(o["id"]) for o in field.get("options") or []}
        found[str(field["name"])] = (CustomField(str(field["name"]), str(field["id"]), kind, tuple(options)), options)
    return found


def card_values(card: Mapping[str, Any], known: Mapping[str, Definition]) -> dict[str, Any]:
    """A card's custom field values by name, every board field present (None: blank; an unticked box: False)."""
    items = {str(item.get("idCustomField")): item for item in card.get("customFieldItems") or []}
    values: dict[str, Any] = {}
    for name, (field, options) in known.items():
        item = items.get(field.id)
        values[name] = False if field.type == "checkbox" else None
        if item is None:
            continue
        raw = item.get("value") or {}
        if field.type == "enum":
            texts = {option_id: text for text, option_id in options.items()}
            option = str(item.get("idValue"))
            values[name] = texts.get(option, Unreadable(f"unknown option {option}"))
        elif field.type == "number":
            values[name] = read_or_keep(str(raw.get("number")), _number)
        elif field.type == "date":
            values[name] = read_or_keep(str(raw.get("date")), _day)
        elif field.type == "checkbox":
            values[name] = str(raw.get("checked")).lower() == "true"
        else:
            values[name] = raw.get("text") or None
    return values


def item_body(definition: Definition, value: Any, *, field: str, ref: str | None) -> dict[str, Any]:  # noqa: ANN401
    """The body of the item PUT for ``value`` (None, False or blank clears); an unknown option is refused here."""
    custom, options = definition
    if value is None or value in ("", ()) or (custom.type == "checkbox" and not value):
        return {"idValue": ""} if custom.type == "enum" else {"value": ""}
    if custom.type == "enum":
        if value not in options:
            raise InvalidItem(
                TOOL,
                f"{custom.name!r} has no option {value!r} on the board (it has {', '.join(options)})",
                ref=ref,
                field=field,
            )
        return {"idValue": options[value]}
    if custom.type == "date":
        day = value.date() if isinstance(value, datetime) else value
        if not isinstance(day, date):
            raise InvalidItem(TOOL, f"{value!r} is not a date", ref=ref, field=field)
        # Noon UTC: the same calendar day wherever the people who read the card are.
        return {"value": {"date": datetime(day.year, day.month, day.day, 12, tzinfo=UTC).isoformat()}}
    if custom.type == "checkbox":
        return {"value": {"checked": "true"}}
    if custom.type == "number":
        return {"value": {"number": str(value)}}
    return {"value": {"text": str(value)}}


def _number(text: str) -> int | float:
    number = float(text)
    return int(number) if number.is_integer() else number


def _day(text: str) -> date:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).date()
