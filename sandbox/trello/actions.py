"""Reading the activity log the way Trello serves it: newest first, filtered by type, paged with before/since.

``filter`` is a comma list of action types; ``type:field`` (``updateCard:idList``) keeps only the updates that
changed that field. ``since``/``before`` take an action id or an ISO date and are exclusive; ``limit`` is
0..1000 (more is a 400, so a full history needs ``before=`` paging); ``page`` skips ``page * limit`` actions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sandbox.core import JSON, ApiError
from sandbox.trello.ids import is_object_id
from sandbox.trello.model import Action
from sandbox.trello.state import TrelloState

MAX_LIMIT = 1000
CARD_DEFAULT_FILTER = "commentCard,updateCard:idList"
BOARD_DEFAULT_FILTER = "all"


def int_param(params: Mapping[str, Any], name: str, default: int, maximum: int | None = None) -> int:
    """Return a non-negative integer parameter, with Trello's 400 ``invalid value for <name>``."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(str(raw))
    except ValueError:
        raise ApiError(400, f"invalid value for {name}") from None
    if value < 0 or (maximum is not None and value > maximum):
        raise ApiError(400, f"invalid value for {name}")
    return value


def _boundary(raw: JSON, name: str) -> tuple[str | None, datetime | None]:
    text = str(raw)
    if is_object_id(text):
        return text.lower(), None
    moment = TrelloState.moment(text, name)
    return None, moment


def _matches(action: Action, filters: list[str]) -> bool:
    if "all" in filters:
        return True
    for item in filters:
        kind, _, field = item.partition(":")
        if kind != action.type:
            continue
        if not field or field in action.data.get("old", {}):
            return True
    return False


def query(actions: Iterable[Action], params: Mapping[str, Any], default_filter: str) -> list[Action]:
    """Return the actions a list route answers with, newest first."""
    raw_filter = params.get("filter") or default_filter
    filters = [item.strip() for item in str(raw_filter).split(",") if item.strip()]
    limit = int_param(params, "limit", 50, MAX_LIMIT)
    page = int_param(params, "page", 0)
    selected = [a for a in actions if not a.deleted and _matches(a, filters)]
    for name, newer in (("since", True), ("before", False)):
        raw = params.get(name)
        if raw in {None, "", "null"}:
            continue
        bound_id, bound_date = _boundary(raw, name)
        if bound_id is not None:
            selected = [a for a in selected if (a.id > bound_id) == newer and a.id != bound_id]
        elif bound_date is not None:
            selected = [a for a in selected if (a.date > bound_date) == newer and a.date != bound_date]
    selected.sort(key=lambda a: a.id, reverse=True)
    return selected[page * limit : page * limit + limit]
