"""The Custom Fields power-up: board field definitions, card items, and the ``updateCustomFieldItem`` action.

Sources (``../shared/specs/trello.v3.json``): GET /boards/{id}/customFields (schema ``CustomField``), GET
/customFields/{id}, GET /cards/{id}/customFieldItems (schema ``CustomFieldItems``), PUT
/cards/{idCard}/customField/{idCustomField}/item (body ``{"value": {"text"|"checked"|"date"|"number": ...}}`` or
``{"idValue": <option id>}``), and ``customFieldItems=true`` on card reads. The spec's ``CustomField`` schema nests
``name``, ``pos`` and ``options`` inside ``display``; Trello answers them at the top level (py-trello's
``CustomFieldDefinition.from_json`` reads ``json["name"]`` and ``json["options"][i]["value"]["text"]``), so they
are top level here, with ``display: {"cardFront": ...}``.

Values on the wire are strings, as the spec's ``CustomFieldItems`` example (``"checked": "true"``) and Trello's
custom fields guide show (``{"number": "2"}``); a write may give a number or a boolean as JSON or as that string.
Where the spec says nothing the sandbox takes the strict reading: a key other than the field's type key (or
``idValue`` for a non-list field, ``value`` for a list one), an unknown option, a non-numeric number or an
unparseable date is a 400 ``Invalid custom field item value.``; ``{"value": ""}`` / ``{"idValue": ""}`` clear the
field, and so does ``{"checked": "false"}`` (an unchecked checkbox has no item: read a missing item as false).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sandbox.core import JSON, ApiError
from sandbox.trello.model import Action, Board, Card, CustomField, CustomFieldItem, CustomFieldOption, Member, iso
from sandbox.trello.state import POS_STEP, TrelloState, board_ref, card_ref

INVALID_VALUE = "Invalid custom field item value."
VALUE_KEYS = {"checkbox": "checked", "number": "number", "text": "text", "date": "date"}
"""The ``value`` key of each type; ``list`` fields take ``idValue`` instead."""
OPTION_COLORS = ("none", "green", "yellow", "orange", "red", "purple", "blue", "sky", "lime", "pink", "black")


def add_field(state: TrelloState, board: Board, name: str, kind: str, options: list[tuple[str, str]]) -> CustomField:
    """Define a custom field on ``board`` (options: (text, colour) for a list field); used by the seed."""
    moment = state.now()
    pos = max((f.pos for f in state.board_custom_fields(board)), default=0.0) + POS_STEP
    custom_field = CustomField(id=state.ids.new(moment), id_board=board.id, name=name, type=kind, pos=pos)
    for index, (text, color) in enumerate(options, start=1):
        if color not in OPTION_COLORS:
            raise ApiError(400, "invalid value for color")
        option = CustomFieldOption(state.ids.new(moment), custom_field.id, text, color, index * POS_STEP / 4)
        custom_field.options.append(option)
    state.custom_fields[custom_field.id] = custom_field
    return custom_field


def field_json(custom_field: CustomField) -> dict[str, Any]:
    """A definition as GET /boards/{id}/customFields lists it (``options`` only on list fields)."""
    body: dict[str, Any] = {
        "id": custom_field.id,
        "idModel": custom_field.id_board,
        "modelType": "board",
        "fieldGroup": custom_field.id,
        "display": {"cardFront": custom_field.card_front},
        "name": custom_field.name,
        "pos": custom_field.pos,
        "type": custom_field.type,
        "isSuggestedField": False,
    }
    if custom_field.type == "list":
        body["options"] = [
            {"id": o.id, "idCustomField": o.id_custom_field, "value": {"text": o.text}, "color": o.color, "pos": o.pos}
            for o in custom_field.options
        ]
    return body


def item_json(item: CustomFieldItem) -> dict[str, Any]:
    """A card's item: ``idValue`` for a list field, ``value`` for the others."""
    body: dict[str, Any] = {"id": item.id}
    if item.id_value is not None:
        body["idValue"] = item.id_value
    else:
        body["value"] = dict(item.value or {})
    return body | {"idCustomField": item.id_custom_field, "idModel": item.id_card, "modelType": "card"}


def _number(raw: JSON) -> str:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ApiError(400, INVALID_VALUE)
    try:
        number = float(raw)
    except ValueError:
        raise ApiError(400, INVALID_VALUE) from None
    if not math.isfinite(number):
        raise ApiError(400, INVALID_VALUE)
    if isinstance(raw, str):
        return raw.strip()
    return str(int(number)) if number.is_integer() else repr(number)


def _checked(raw: JSON) -> bool:
    if isinstance(raw, bool):
        return raw
    if raw in ("true", "false"):
        return str(raw) == "true"
    raise ApiError(400, INVALID_VALUE)


def _value(
    state: TrelloState, custom_field: CustomField, body: dict[str, Any]
) -> tuple[dict[str, str] | None, str | None]:
    """Resolve a PUT item body into (value, idValue); (None, None) clears the field."""
    if ("value" in body) == ("idValue" in body):
        raise ApiError(400, INVALID_VALUE)
    if custom_field.type == "list":
        if "idValue" not in body:
            raise ApiError(400, INVALID_VALUE)
        id_value = body["idValue"]
        if id_value in ("", None):
            return None, None
        if not any(option.id == id_value for option in custom_field.options):
            raise ApiError(400, INVALID_VALUE)
        return None, str(id_value)
    raw = body.get("value", body.get("idValue"))
    key = VALUE_KEYS[custom_field.type]
    if "idValue" in body or (raw != "" and (not isinstance(raw, dict) or set(raw) != {key})):
        raise ApiError(400, INVALID_VALUE)
    return (None if raw == "" else _typed(state, custom_field.type, raw[key])), None


def _typed(state: TrelloState, kind: str, given: JSON) -> dict[str, str] | None:
    """The stored value of a non-list field from what a write gave (None: it clears the field)."""
    if kind == "checkbox":
        return {"checked": "true"} if _checked(given) else None
    if kind == "number":
        return {"number": _number(given)}
    if not isinstance(given, str):
        raise ApiError(400, INVALID_VALUE)
    if kind == "date":
        try:
            moment = state.moment(given, "value")
        except ApiError:
            raise ApiError(400, INVALID_VALUE) from None
        return {"date": str(iso(moment))} if moment is not None else None
    return {"text": given} if given else None


def set_item(
    state: TrelloState, card: Card, custom_field: CustomField, body: dict[str, Any], actor: Member
) -> dict[str, Any]:
    """PUT /cards/{idCard}/customField/{idCustomField}/item: set or clear one field of a card.

    A change (not a no-op) records ``updateCustomFieldItem`` with ``customField`` {id, name, type},
    ``customFieldItem`` (the item after the change) and ``old`` (the previous ``value`` or ``idValue``), on the
    card and its board: the board's actions feed shows it, a card's feed only when asked for
    (``filter=updateCustomFieldItem``; its default is ``commentCard,updateCard:idList``). Answers the item, or
    for a cleared field the cleared item with ``value`` null and no ``idValue``.
    """
    if custom_field.id_board != card.id_board:
        raise ApiError(400, "invalid value for idCustomField")
    value, id_value = _value(state, custom_field, body)
    item = next((i for i in card.custom_items if i.id_custom_field == custom_field.id), None)
    old = item_json(item) if item is not None else None
    if item is not None and (item.value, item.id_value) == (value, id_value):
        return item_json(item)
    cleared = value is None and id_value is None
    if item is None and cleared:
        return {"value": None, "idCustomField": custom_field.id, "idModel": card.id, "modelType": "card"}
    if item is None:
        item = CustomFieldItem(id=state.ids.new(state.now()), id_custom_field=custom_field.id, id_card=card.id)
        card.custom_items.append(item)
    item.value, item.id_value = value, id_value
    answer = item_json(item)
    if cleared:
        card.custom_items.remove(item)
        answer = {key: v for key, v in answer.items() if key != "idValue"} | {"value": None}
    key = "idValue" if custom_field.type == "list" else "value"
    data: dict[str, Any] = {
        "customField": {"id": custom_field.id, "name": custom_field.name, "type": custom_field.type},
        "customFieldItem": answer,
        "old": {key: old.get(key) if old is not None else None},
        "board": board_ref(state.boards[card.id_board]),
        "card": card_ref(card),
    }
    _record(state, actor, data, card)
    return answer


def _record(state: TrelloState, actor: Member, data: dict[str, Any], card: Card) -> Action:
    return state.record("updateCustomFieldItem", actor, data, card=card)


def seed_value(state: TrelloState, card: Card, custom_field: CustomField, raw: object) -> None:
    """Give a seeded card a value without an action (it was set before the history the seed starts)."""
    if custom_field.type == "list":
        option = next(o for o in custom_field.options if o.text == raw)
        body: dict[str, Any] = {"idValue": option.id}
    elif custom_field.type == "date":
        body = {"value": {"date": iso(raw) if isinstance(raw, datetime) else raw}}
    else:
        body = {"value": {VALUE_KEYS[custom_field.type]: raw}}
    value, id_value = _value(state, custom_field, body)
    item = CustomFieldItem(state.ids.new(state.now()), custom_field.id, card.id, value, id_value)
    card.custom_items.append(item)
