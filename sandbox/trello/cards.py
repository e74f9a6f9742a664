"""Every change a card can undergo, each recorded as the action Trello records for it.

``updateCard`` carries ``data.old`` with the previous value of exactly the field that changed (one action per
field, as Trello logs them); a list move adds ``listBefore``/``listAfter``; a deletion leaves only a
``deleteCard`` action whose ``data.card`` holds nothing but the id, short id and short link.
"""

from __future__ import annotations

from typing import Any

from sandbox.core import JSON, ApiError
from sandbox.trello.ids import short_link
from sandbox.trello.model import Action, Attachment, Card, Member, TrelloList, iso
from sandbox.trello.state import TEXT_MAX, TrelloState, board_ref, card_ref, list_ref, not_found, text_length

CARD_FIELDS = ("name", "desc", "closed", "due", "start", "dueComplete", "pos", "idList", "idAttachmentCover")
"""Fields of a card a PUT can change that Trello logs as ``updateCard``."""


def id_list_param(value: JSON) -> list[str]:
    """Return an id-list parameter: a JSON array or a comma-separated string (empty: none)."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(item) for item in value]
    return [part for part in str(value).split(",") if part]


class CardEditor:
    """Applies card changes to a :class:`TrelloState` on behalf of a member."""

    def __init__(self, state: TrelloState) -> None:
        self.state = state

    # ----- create / update / delete ---------------------------------------------------------------------

    def create_card(
        self,
        trello_list: TrelloList,
        actor: Member,
        *,
        name: JSON = "",
        desc: JSON = "",
        pos: JSON = None,
        due: JSON = None,
        start: JSON = None,
        due_complete: JSON = False,
        id_members: JSON = None,
        id_labels: JSON = None,
        url_source: JSON = None,
        mime_type: JSON = None,
    ) -> Card:
        """Create a card at the bottom (or ``pos``) of a list (``createCard`` action).

        ``url_source`` attaches that link in the same request (``addAttachmentToCard`` after ``createCard``);
        it is checked before anything is created, so a refused request leaves no card behind. The name is
        required: the spec marks it optional and the newer reference lets a copied URL, file or card name the card,
        but the older reference says "name (required) a string with a length from 1 to 16384", and a blank one is
        refused as PUT refuses it (the unfavourable reading; syncd always names what it creates).
        """
        state = self.state
        board = state.boards[trello_list.id_board]
        members = id_list_param(id_members)
        labels = id_list_param(id_labels)
        card_name, card_desc = self._text("name", name), self._text("desc", desc)
        if url_source and not str(url_source).startswith(("http://", "https://")):
            raise ApiError(400, "invalid value for urlSource")
        for member_id in members:
            if member_id not in board.members:
                raise ApiError(400, "invalid value for idMembers")
        for label_id in labels:
            if label_id not in state.labels or state.labels[label_id].id_board != board.id:
                raise ApiError(400, "invalid value for idLabels")
        moment = state.now()
        card = Card(
            id=state.ids.new(moment),
            id_board=board.id,
            id_list=trello_list.id,
            id_short=board.next_id_short,
            name=card_name,
            desc=card_desc,
            pos=state.position(pos, [c.pos for c in state.list_cards(trello_list)]),
            date_last_activity=moment,
            due=state.card_moment(due, "due"),
            start=state.card_moment(start, "start"),
            due_complete=state.flag(due_complete or False, "dueComplete"),
            id_members=list(dict.fromkeys(members)),
            id_labels=list(dict.fromkeys(labels)),
        )
        board.next_id_short += 1
        state.cards[card.id] = card
        state.record("createCard", actor, state.card_data(card), card=card)
        if url_source:
            self.add_attachment(card, actor, url=str(url_source), name=None, mime_type=mime_type)
        return card

    def update_card(self, card: Card, changes: dict[str, Any], actor: Member) -> list[Action]:
        """Apply a PUT's fields; each changed field becomes one ``updateCard`` action with its ``data.old``."""
        state = self.state
        recorded: list[Action] = []
        if "subscribed" in changes:
            card.subscribed = state.flag(changes["subscribed"], "subscribed")
        if "idMembers" in changes:
            recorded += self.set_members(card, id_list_param(changes["idMembers"]), actor)
        if "idLabels" in changes:
            recorded += self.set_labels(card, id_list_param(changes["idLabels"]), actor)
        for field in CARD_FIELDS:
            if field not in changes:
                continue
            action = self._change(card, field, changes[field], actor)
            if action is not None:
                recorded.append(action)
        return recorded

    def _change(self, card: Card, field: str, raw: JSON, actor: Member) -> Action | None:
        state = self.state
        old_list = state.lists[card.id_list]
        old, new = self._apply(card, field, raw)
        if old == new:
            return None
        data = state.card_data(card)
        data["card"][field] = new
        data["old"] = {field: old}
        if field == "idList":
            del data["list"]
            data["listBefore"] = list_ref(old_list)
            data["listAfter"] = list_ref(state.lists[card.id_list])
        return state.record("updateCard", actor, data, card=card)

    def _apply(self, card: Card, field: str, raw: JSON) -> tuple[JSON, JSON]:
        """Change one field; returns its (old, new) wire values."""
        state = self.state
        if field in {"name", "desc"}:
            text = self._text(field, raw)
            old_text = getattr(card, field)
            setattr(card, field, text)
            return old_text, text
        if field in {"closed", "dueComplete"}:
            attribute = "closed" if field == "closed" else "due_complete"
            old_flag = getattr(card, attribute)
            setattr(card, attribute, state.flag(raw, field))
            return old_flag, getattr(card, attribute)
        if field in {"due", "start"}:
            old_moment = getattr(card, field)
            setattr(card, field, state.card_moment(raw, field))
            return iso(old_moment), iso(getattr(card, field))
        if field == "pos":
            siblings = [c.pos for c in state.list_cards(state.lists[card.id_list]) if c.id != card.id]
            old_pos, card.pos = card.pos, state.position(raw, siblings)
            return old_pos, card.pos
        if field == "idList":
            return self._move(card, raw)
        return self._cover(card, raw)

    @staticmethod
    def _text(field: str, raw: JSON) -> str:
        """A card's name (1 to 16384 characters, not blank) or description (up to 16384), else Trello's 400."""
        text = str(raw or "")
        if (field == "name" and not text.strip()) or text_length(text) > TEXT_MAX:
            raise ApiError(400, f"invalid value for {field}")
        return text

    def _move(self, card: Card, raw: JSON) -> tuple[str, str]:
        state = self.state
        target = state.lists.get(str(raw))
        if target is None or target.id_board != card.id_board:
            raise ApiError(400, "invalid value for idList")
        old_id = card.id_list
        if target.id != old_id:
            card.pos = state.position("bottom", [c.pos for c in state.list_cards(target)])
            card.id_list = target.id
        return old_id, card.id_list

    @staticmethod
    def _cover(card: Card, raw: JSON) -> tuple[str | None, str | None]:
        cover = None if raw in {None, "", "null"} else str(raw)
        if cover is not None and cover not in {a.id for a in card.attachments}:
            raise ApiError(400, "invalid value for idAttachmentCover")
        old_cover, card.id_attachment_cover = card.id_attachment_cover, cover
        return old_cover, cover

    def delete_card(self, card: Card, actor: Member) -> Action:
        """Delete a card for good: afterwards it is 404 and only its ``deleteCard`` action remains."""
        state = self.state
        card.deleted = True
        data = {
            "card": {"id": card.id, "idShort": card.id_short, "shortLink": short_link(card.id)},
            "list": list_ref(state.lists[card.id_list]),
            "board": board_ref(state.boards[card.id_board]),
        }
        return state.record("deleteCard", actor, data, card=card)

    # ----- members and labels ------------------------------------------------------------------------------

    def add_member(self, card: Card, member_id: str, actor: Member) -> Action:
        """Put a board member on the card (``addMemberToCard``)."""
        state = self.state
        if member_id not in state.boards[card.id_board].members:
            raise ApiError(400, "invalid value for value")
        if member_id in card.id_members:
            raise ApiError(400, "member is already on the card")
        card.id_members.append(member_id)
        member = state.members[member_id]
        data = state.card_data(card, idMember=member.id, member={"id": member.id, "name": member.full_name})
        return state.record("addMemberToCard", actor, data, card=card)

    def remove_member(self, card: Card, member_id: str, actor: Member) -> Action | None:
        """Take a member off the card (``removeMemberFromCard``); nothing happens if they were not on it."""
        state = self.state
        if member_id not in card.id_members:
            return None
        card.id_members.remove(member_id)
        member = state.members[member_id]
        data = state.card_data(card, idMember=member.id, member={"id": member.id, "name": member.full_name})
        return state.record("removeMemberFromCard", actor, data, card=card)

    def set_members(self, card: Card, member_ids: list[str], actor: Member) -> list[Action]:
        """Make the card's members exactly ``member_ids`` (one add/remove action per difference)."""
        for member_id in member_ids:
            if member_id not in self.state.boards[card.id_board].members:
                raise ApiError(400, "invalid value for idMembers")
        removed = [self.remove_member(card, m, actor) for m in list(card.id_members) if m not in member_ids]
        added = [self.add_member(card, m, actor) for m in dict.fromkeys(member_ids) if m not in card.id_members]
        return [action for action in [*removed, *added] if action is not None]

    def add_label(self, card: Card, label_id: str, actor: Member) -> Action:
        """Put a board label on the card (``addLabelToCard``)."""
        state = self.state
        label = state.labels.get(label_id)
        if label is None or label.id_board != card.id_board:
            raise ApiError(400, "invalid value for value")
        if label_id in card.id_labels:
            raise ApiError(400, "that label is already on the card")
        card.id_labels.append(label_id)
        data = state.card_data(card, label={"id": label.id, "name": label.name, "color": label.color})
        data["text"] = label.name
        return state.record("addLabelToCard", actor, data, card=card)

    def remove_label(self, card: Card, label_id: str, actor: Member) -> Action:
        """Take a label off the card (``removeLabelFromCard``)."""
        state = self.state
        if label_id not in card.id_labels:
            raise ApiError(404, "That label is not on the card")
        card.id_labels.remove(label_id)
        label = state.labels[label_id]
        data = state.card_data(card, label={"id": label.id, "name": label.name, "color": label.color})
        data["text"] = label.name
        return state.record("removeLabelFromCard", actor, data, card=card)

    def set_labels(self, card: Card, label_ids: list[str], actor: Member) -> list[Action]:
        """Make the card's labels exactly ``label_ids``."""
        for label_id in label_ids:
            label = self.state.labels.get(label_id)
            if label is None or label.id_board != card.id_board:
                raise ApiError(400, "invalid value for idLabels")
        removed = [self.remove_label(card, lbl, actor) for lbl in list(card.id_labels) if lbl not in label_ids]
        added = [self.add_label(card, lbl, actor) for lbl in dict.fromkeys(label_ids) if lbl not in card.id_labels]
        return [*removed, *added]

    # ----- comments ---------------------------------------------------------------------------------------

    def comment(self, card: Card, text: JSON, actor: Member) -> Action:
        """Comment on a card (``commentCard``; the comment *is* the action)."""
        if not str(text or "").strip():
            raise ApiError(400, "invalid value for text")
        return self.state.record("commentCard", actor, self.state.card_data(card, text=str(text)), card=card)

    def comment_action(self, card: Card | None, action_id: str, actor: Member) -> Action:
        """Return a comment its author may change: Trello lets only the author edit or delete a comment."""
        action = self.state.action(action_id)
        if action.type != "commentCard" or (card is not None and action.id_card != card.id):
            raise not_found()
        if action.id_member_creator != actor.id:
            raise ApiError(401, "unauthorized comment permission requested")
        return action

    def edit_comment(self, comment: Action, text: JSON, actor: Member) -> Action:
        """Change a comment's text (``updateComment``; the comment keeps its id and gains ``dateLastEdited``)."""
        state = self.state
        if not str(text or "").strip():
            raise ApiError(400, "invalid value for text")
        old = comment.data["text"]
        comment.data["text"] = str(text)
        card = state.cards[comment.id_card] if comment.id_card else None
        data: dict[str, Any] = {"action": {"id": comment.id, "text": str(text)}, "old": {"text": old}}
        if card is not None:
            data["card"] = card_ref(card)
            data["board"] = board_ref(state.boards[card.id_board])
        updated = state.record("updateComment", actor, data, card=card)
        comment.data["dateLastEdited"] = iso(updated.date)
        return updated

    def delete_comment(self, comment: Action, actor: Member) -> Action:
        """Remove a comment (``deleteComment``); the ``commentCard`` action disappears from every listing."""
        state = self.state
        comment.deleted = True
        card = state.cards[comment.id_card] if comment.id_card else None
        data: dict[str, Any] = {"action": {"id": comment.id}}
        if card is not None:
            data["card"] = card_ref(card)
            data["board"] = board_ref(state.boards[card.id_board])
        return state.record("deleteComment", actor, data, card=card)

    # ----- attachments -------------------------------------------------------------------------------------

    def add_attachment(self, card: Card, actor: Member, *, url: JSON, name: JSON, mime_type: JSON) -> Attachment:
        """Attach a link to a card (``addAttachmentToCard``)."""
        state = self.state
        text = str(url or "")
        if not text.startswith(("http://", "https://")):
            raise ApiError(400, "invalid value for url")
        moment = state.now()
        attachment = Attachment(
            id=state.ids.new(moment),
            name=str(name) if name else text,
            url=text,
            mime_type=str(mime_type or ""),
            id_member=actor.id,
            date=moment,
            pos=state.position("bottom", [a.pos for a in card.attachments]),
        )
        card.attachments.append(attachment)
        ref = {"id": attachment.id, "name": attachment.name, "url": attachment.url}
        state.record("addAttachmentToCard", actor, state.card_data(card, attachment=ref), card=card)
        return attachment

    def delete_attachment(self, card: Card, attachment_id: str, actor: Member) -> Action:
        """Remove an attachment (``deleteAttachmentFromCard``)."""
        attachment = next((a for a in card.attachments if a.id == attachment_id), None)
        if attachment is None:
            raise not_found()
        card.attachments.remove(attachment)
        if card.id_attachment_cover == attachment.id:
            card.id_attachment_cover = None
        ref = {"id": attachment.id, "name": attachment.name}
        return self.state.record(
            "deleteAttachmentFromCard", actor, self.state.card_data(card, attachment=ref), card=card
        )
