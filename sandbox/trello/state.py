"""The Trello emulator's data and every change to it; each change is recorded as Trello records it: an action.

Both the HTTP routes and the Python act-as API change cards through :class:`TrelloState`, so an edit looks the
same (same action, same ``data.old``, same webhook) whichever way it came in. Callers hold the emulator's lock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sandbox.core import JSON, ApiError, Clock
from sandbox.trello.ids import ObjectIds, is_object_id, short_link
from sandbox.trello.model import (
    LABEL_COLORS,
    Action,
    Board,
    Card,
    CustomField,
    Label,
    Member,
    Organization,
    TrelloList,
    Webhook,
)

SEED_TIME = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
"""When the seeded organisation was 'created' (the time inside the seeded ids and actions)."""
NOT_FOUND = "The requested resource was not found."
TEXT_MAX = 16384
"""Longest card name or description: name "a string with a length from 1 to 16384", desc "from 0 to 16384" in
Trello's (older) API reference for POST /1/cards and PUT /1/cards/{id}/name; JavaScript counts UTF-16 code units."""
FIRST_DAY = date(1583, 1, 1)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:$|[T ])")
POS_STEP = 65536.0


def text_length(text: str) -> int:
    """The length JavaScript gives a string: UTF-16 code units, so a character beyond U+FFFF counts two."""
    return len(text.encode("utf-16-le")) // 2


def not_found() -> ApiError:
    """Return Trello's 404 for an id that names nothing (or something deleted)."""
    return ApiError(404, NOT_FOUND)


def card_ref(card: Card) -> dict[str, Any]:
    """Return how an action's ``data.card`` names a card."""
    return {"id": card.id, "name": card.name, "idShort": card.id_short, "shortLink": short_link(card.id)}


def board_ref(board: Board) -> dict[str, Any]:
    """Return how an action's ``data.board`` names a board."""
    return {"id": board.id, "name": board.name, "shortLink": short_link(board.id)}


def list_ref(trello_list: TrelloList) -> dict[str, Any]:
    """Return how an action's ``data.list`` names a list."""
    return {"id": trello_list.id, "name": trello_list.name}


class TrelloState:
    """All boards, lists, labels, cards, actions and webhooks of one emulated Trello account set."""

    def __init__(self, organisation: str, clock: Clock, on_action: Callable[[Action], None] | None = None) -> None:
        self.clock = clock
        self.on_action = on_action
        self.ids = ObjectIds(f"trello/{organisation}")
        self._seed_moment = SEED_TIME
        self.members: dict[str, Member] = {}
        self.boards: dict[str, Board] = {}
        self.lists: dict[str, TrelloList] = {}
        self.labels: dict[str, Label] = {}
        self.custom_fields: dict[str, CustomField] = {}
        self.cards: dict[str, Card] = {}
        self.actions: list[Action] = []
        self.actions_by_id: dict[str, Action] = {}
        self.comments_by_card: dict[str, list[Action]] = {}
        """Each card's ``commentCard`` actions (deleted ones too), so a listing counts badges without a scan."""
        self.webhooks: dict[str, Webhook] = {}
        self.seeding = False
        self.organization = Organization(id="", name="", display_name="")

    def now(self) -> datetime:
        """Return the time of a change: the emulated clock, or one second after the last seeded object while seeding."""
        if self.seeding:
            self._seed_moment += timedelta(seconds=1)
            return self._seed_moment
        return self.clock.now()

    # ----- lookups --------------------------------------------------------------------------------------

    def member_by_email(self, email: str) -> Member:
        """Return the member with this e-mail (KeyError if none)."""
        for member in self.members.values():
            if member.email == email:
                return member
        raise KeyError(email)

    def member_by_token(self, token: str) -> Member | None:
        """Return the member a token was issued to, if any."""
        return next((member for member in self.members.values() if member.token == token), None)

    def member(self, id_or_username: str, me: Member | None = None) -> Member:
        """Return a member by id, username or ``me``."""
        if id_or_username == "me" and me is not None:
            return me
        found = self.members.get(id_or_username) or next(
            (m for m in self.members.values() if m.username == id_or_username), None
        )
        if found is None:
            raise not_found()
        return found

    @staticmethod
    def _check_id(ident: str) -> None:
        if not (is_object_id(ident) or (len(ident) == 8 and ident.isalnum())):
            raise ApiError(400, "invalid id")

    def board(self, ident: str) -> Board:
        """Return a board by id or short link."""
        self._check_id(ident)
        found = self.boards.get(ident) or next((b for b in self.boards.values() if short_link(b.id) == ident), None)
        if found is None:
            raise not_found()
        return found

    def trello_list(self, ident: str) -> TrelloList:
        """Return a list by id."""
        if not is_object_id(ident):
            raise ApiError(400, "invalid id")
        found = self.lists.get(ident)
        if found is None:
            raise not_found()
        return found

    def label(self, ident: str) -> Label:
        """Return a label by id."""
        if not is_object_id(ident):
            raise ApiError(400, "invalid id")
        found = self.labels.get(ident)
        if found is None:
            raise not_found()
        return found

    def custom_field(self, ident: str) -> CustomField:
        """Return a custom field definition by id."""
        if not is_object_id(ident):
            raise ApiError(400, "invalid id")
        found = self.custom_fields.get(ident)
        if found is None:
            raise not_found()
        return found

    def board_custom_fields(self, board: Board) -> list[CustomField]:
        """Return a board's custom field definitions in position order."""
        return sorted((f for f in self.custom_fields.values() if f.id_board == board.id), key=lambda f: f.pos)

    def card(self, ident: str) -> Card:
        """Return a card by id or short link; deleted cards are 404 (they survive only as actions)."""
        self._check_id(ident)
        found = self.cards.get(ident) or next((c for c in self.cards.values() if short_link(c.id) == ident), None)
        if found is None or found.deleted:
            raise not_found()
        return found

    def action(self, ident: str) -> Action:
        """Return an action by id."""
        if not is_object_id(ident):
            raise ApiError(400, "invalid id")
        found = self.actions_by_id.get(ident)
        if found is None or found.deleted:
            raise not_found()
        return found

    def board_lists(self, board: Board) -> list[TrelloList]:
        """Return a board's lists in position order."""
        return sorted((lst for lst in self.lists.values() if lst.id_board == board.id), key=lambda lst: lst.pos)

    def board_labels(self, board: Board) -> list[Label]:
        """Return a board's labels."""
        return [label for label in self.labels.values() if label.id_board == board.id]

    def list_cards(self, trello_list: TrelloList) -> list[Card]:
        """Return the (not deleted) cards of a list in position order."""
        cards = (c for c in self.cards.values() if c.id_list == trello_list.id and not c.deleted)
        return sorted(cards, key=lambda c: c.pos)

    def board_cards(self, board: Board) -> list[Card]:
        """Return the (not deleted) cards of a board, list by list, in position order."""
        return [card for lst in self.board_lists(board) for card in self.list_cards(lst)]

    # ----- recording -----------------------------------------------------------------------------------

    def record(self, kind: str, actor: Member, data: dict[str, Any], *, card: Card | None = None) -> Action:
        """Append an action (newest last here; the API shows newest first) and tell the listener."""
        moment = self.now()
        board_id = data.get("board", {}).get("id")
        list_id = data.get("list", {}).get("id") or data.get("listAfter", {}).get("id")
        action = Action(
            id=self.ids.new(moment),
            type=kind,
            id_member_creator=actor.id,
            date=moment,
            data=data,
            id_board=board_id,
            id_card=card.id if card is not None else None,
            id_list=list_id,
        )
        self.actions.append(action)
        self.actions_by_id[action.id] = action
        if kind == "commentCard" and card is not None:
            self.comments_by_card.setdefault(card.id, []).append(action)
        if board_id in self.boards:
            self.boards[board_id].date_last_activity = moment
        if card is not None:
            card.date_last_activity = moment
        if self.on_action is not None and not self.seeding:
            self.on_action(action)
        return action

    def comment_count(self, card: Card) -> int:
        """The card's comments not deleted: its ``badges.comments``."""
        return sum(not action.deleted for action in self.comments_by_card.get(card.id, ()))

    def card_data(self, card: Card, **extra: JSON) -> dict[str, Any]:
        """Return the ``card``/``board``/``list`` part every card action carries, plus ``extra``."""
        return {
            "card": card_ref(card),
            "board": board_ref(self.boards[card.id_board]),
            "list": list_ref(self.lists[card.id_list]),
            **extra,
        }

    # ----- positions and values ---------------------------------------------------------------------------

    @staticmethod
    def position(value: JSON, siblings: Iterable[float], *, field: str = "pos") -> float:
        """Return Trello's ``pos`` for ``top``, ``bottom`` (the default) or a non-negative number."""
        taken = sorted(siblings)
        if value is None or value in {"", "bottom"}:
            return (taken[-1] if taken else 0.0) + POS_STEP
        if value == "top":
            return taken[0] / 2 if taken else POS_STEP
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ApiError(400, f"invalid value for {field}") from None
        if number < 0:
            raise ApiError(400, f"invalid value for {field}")
        return number

    @staticmethod
    def moment(value: JSON, field: str) -> datetime | None:
        """Return a date parameter (ISO 8601 extended date or date-time, ``null`` or empty for none) as UTC.

        The year has four digits (an OpenAPI ``date`` is RFC 3339's ``date-fullyear = 4DIGIT``); the basic and week
        forms Python would also read are refused like any other date Trello cannot parse.
        """
        if value is None or value in {"", "null"}:
            return None
        try:
            if isinstance(value, datetime):
                parsed = value
            elif _ISO_DATE.match(str(value)):
                parsed = datetime.fromisoformat(str(value))
            else:
                raise ValueError(value)
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
        except (ValueError, OverflowError):  # not a date, or one whose UTC day is before year 1 or after 9999
            raise ApiError(400, f"invalid value for {field}") from None

    @staticmethod
    def card_moment(value: JSON, field: str) -> datetime | None:
        """Return a card's ``due`` or ``start``: a valid date whose UTC day is from 1583-01-01 to 9999-12-31.

        Trello documents no range. The sandbox takes the unfavourable reading: ISO 8601 admits years before 1583
        only by mutual agreement of the parties, which Trello never states, so an earlier day is refused as an
        unparseable one is ("invalid value for due").
        """
        moment = TrelloState.moment(value, field)
        if moment is not None and moment.date() < FIRST_DAY:
            raise ApiError(400, f"invalid value for {field}")
        return moment

    @staticmethod
    def flag(value: JSON, field: str) -> bool:
        """Return a boolean parameter (JSON true/false or the strings ``true``/``false``)."""
        if isinstance(value, bool):
            return value
        if str(value).lower() in {"true", "false"}:
            return str(value).lower() == "true"
        raise ApiError(400, f"invalid value for {field}")

    # ----- boards, lists, labels ------------------------------------------------------------------------

    def create_list(self, board: Board, name: JSON, pos: JSON, actor: Member) -> TrelloList:
        """Add a list to a board (``createList`` action)."""
        if not name or not str(name).strip():
            raise ApiError(400, "invalid value for name")
        siblings = [lst.pos for lst in self.board_lists(board)]
        trello_list = TrelloList(
            id=self.ids.new(self.now()), id_board=board.id, name=str(name), pos=self.position(pos, siblings)
        )
        self.lists[trello_list.id] = trello_list
        self.record("createList", actor, {"list": list_ref(trello_list), "board": board_ref(board)})
        return trello_list

    def update_list(self, trello_list: TrelloList, changes: dict[str, Any], actor: Member) -> None:
        """Rename, move or (un)archive a list (one ``updateList`` action per changed field)."""
        board = self.boards[trello_list.id_board]
        for field, raw in changes.items():
            old: JSON
            if field == "name":
                if not raw or not str(raw).strip():
                    raise ApiError(400, "invalid value for name")
                old, trello_list.name = trello_list.name, str(raw)
                new: JSON = trello_list.name
            elif field == "closed":
                old, trello_list.closed = trello_list.closed, self.flag(raw, "closed")
                new = trello_list.closed
            elif field == "pos":
                siblings = [lst.pos for lst in self.board_lists(board) if lst.id != trello_list.id]
                old, trello_list.pos = trello_list.pos, self.position(raw, siblings)
                new = trello_list.pos
            else:
                continue
            if old != new:
                data = {"list": {**list_ref(trello_list), field: new}, "old": {field: old}, "board": board_ref(board)}
                self.record("updateList", actor, data)

    def create_label(self, board: Board, name: JSON, color: JSON) -> Label:
        """Add a label to a board (Trello records no action for it)."""
        if color in {"", "null"}:
            color = None
        if color is not None and color not in LABEL_COLORS:
            raise ApiError(400, "invalid value for color")
        label = Label(id=self.ids.new(self.now()), id_board=board.id, name=str(name or ""), color=color)
        self.labels[label.id] = label
        return label
