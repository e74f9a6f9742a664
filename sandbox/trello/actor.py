"""Edit Trello as a named person from Python: what later tests use to simulate people working on cards.

Every method takes the emulator's lock and goes through the same :class:`~sandbox.trello.cards.CardEditor`
as the HTTP routes, so the change is recorded as that member's action and delivered to webhooks.
"""

from __future__ import annotations

from sandbox.core import JSON, ApiError
from sandbox.trello.base import TrelloBase
from sandbox.trello.customfields import VALUE_KEYS, set_item
from sandbox.trello.ids import is_object_id
from sandbox.trello.model import Card, Member, TrelloList

_CREATE_KEYS = {
    "desc": "desc",
    "pos": "pos",
    "due": "due",
    "start": "start",
    "dueComplete": "due_complete",
    "idMembers": "id_members",
    "idLabels": "id_labels",
    "urlSource": "url_source",
}


class TrelloActor:
    """One seeded person acting on the emulator's boards (lists and labels by name or id, people by e-mail)."""

    def __init__(self, emulator: TrelloBase, member: Member) -> None:
        self.emulator = emulator
        self.member = member

    # ----- name resolution ------------------------------------------------------------------------------

    def _boards(self) -> list[str]:
        return [b.id for b in self.emulator.state.boards.values() if self.member.id in b.members]

    def _list(self, name_or_id: str, board_id: str | None = None) -> TrelloList:
        state = self.emulator.state
        boards = [board_id] if board_id else self._boards()
        for trello_list in state.lists.values():
            if trello_list.id_board in boards and name_or_id in {trello_list.id, trello_list.name}:
                return trello_list
        raise ApiError(400, f"no list {name_or_id!r} on {self.member.username}'s boards")

    def _card(self, card_id: str) -> Card:
        card = self.emulator.state.card(card_id)
        if card.id_board not in self._boards():
            raise ApiError(401, "unauthorized permission requested")
        return card

    def _member_id(self, email_or_id: str) -> str:
        state = self.emulator.state
        if is_object_id(email_or_id):
            return email_or_id
        try:
            return state.member_by_email(email_or_id).id
        except KeyError:
            raise ApiError(400, f"unknown person {email_or_id}") from None

    def _label_id(self, card: Card, name_or_id: str) -> str:
        for label in self.emulator.state.board_labels(self.emulator.state.boards[card.id_board]):
            if name_or_id in {label.id, label.name}:
                return label.id
        raise ApiError(400, f"no label {name_or_id!r} on the card's board")

    # ----- edits --------------------------------------------------------------------------------------------

    def create_card(self, list_name_or_id: str, name: str, **fields: JSON) -> str:
        """Create a card (Trello field names: desc, pos, due, start, dueComplete, idMembers, idLabels)."""
        unknown = set(fields) - set(_CREATE_KEYS)
        if unknown:
            raise ValueError(f"unknown card fields {sorted(unknown)}")
        with self.emulator.lock:
            trello_list = self._list(list_name_or_id)
            options = {_CREATE_KEYS[key]: value for key, value in fields.items()}
            return self.emulator.editor.create_card(trello_list, self.member, name=name, **options).id

    def update_card(self, card_id: str, **fields: JSON) -> None:
        """Change card fields as a PUT /1/cards/{id} would (one updateCard action per changed field)."""
        with self.emulator.lock:
            self.emulator.editor.update_card(self._card(card_id), fields, self.member)

    def move_card(self, card_id: str, list_name_or_id: str) -> None:
        """Move a card to another list of its board (updateCard with listBefore/listAfter)."""
        with self.emulator.lock:
            card = self._card(card_id)
            target = self._list(list_name_or_id, card.id_board)
            self.emulator.editor.update_card(card, {"idList": target.id}, self.member)

    def comment(self, card_id: str, text: str) -> str:
        """Comment on a card; returns the commentCard action's id."""
        with self.emulator.lock:
            return self.emulator.editor.comment(self._card(card_id), text, self.member).id

    def add_member(self, card_id: str, email_or_id: str) -> None:
        """Put a person on a card."""
        with self.emulator.lock:
            self.emulator.editor.add_member(self._card(card_id), self._member_id(email_or_id), self.member)

    def remove_member(self, card_id: str, email_or_id: str) -> None:
        """Take a person off a card."""
        with self.emulator.lock:
            self.emulator.editor.remove_member(self._card(card_id), self._member_id(email_or_id), self.member)

    def add_label(self, card_id: str, label_name_or_id: str) -> None:
        """Put a board label on a card."""
        with self.emulator.lock:
            card = self._card(card_id)
            self.emulator.editor.add_label(card, self._label_id(card, label_name_or_id), self.member)

    def remove_label(self, card_id: str, label_name_or_id: str) -> None:
        """Take a label off a card."""
        with self.emulator.lock:
            card = self._card(card_id)
            self.emulator.editor.remove_label(card, self._label_id(card, label_name_or_id), self.member)

    def set_custom_field(self, card_id: str, name: str, value: JSON) -> None:
        """Set the custom field called ``name`` on a card as a person picks it (an updateCustomFieldItem action).

        ``value``: an option's text for a list field, text, number, ISO date, true/false; None (or "") clears it.
        """
        with self.emulator.lock:
            state = self.emulator.state
            card = self._card(card_id)
            board = state.boards[card.id_board]
            custom_field = next((f for f in state.board_custom_fields(board) if f.name == name), None)
            if custom_field is None:
                raise ApiError(400, f"no custom field {name!r} on the card's board")
            body: dict[str, JSON]
            if custom_field.type == "list":
                option = next((o.id for o in custom_field.options if o.text == value), str(value or ""))
                body = {"idValue": option}
            else:
                body = {"value": "" if value in (None, "") else {VALUE_KEYS[custom_field.type]: value}}
            set_item(state, card, custom_field, body, self.member)

    def archive(self, card_id: str) -> None:
        """Archive (close) a card."""
        with self.emulator.lock:
            self.emulator.editor.update_card(self._card(card_id), {"closed": True}, self.member)

    def delete(self, card_id: str) -> None:
        """Delete a card for good."""
        with self.emulator.lock:
            self.emulator.editor.delete_card(self._card(card_id), self.member)
