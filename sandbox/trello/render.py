"""How Trello objects look on the wire, with the ``fields=`` selection Trello applies.

Each ``*_json`` builds the object's full shape and then keeps only the requested fields (``id`` always stays).
A member's e-mail is shown only to that member; everyone else sees ``null``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sandbox.core import ApiError
from sandbox.trello.customfields import item_json
from sandbox.trello.ids import short_link, slug
from sandbox.trello.model import Action, Attachment, Board, Card, Label, Member, TrelloList, Webhook, iso
from sandbox.trello.state import TrelloState

MEMBER_NESTED_FIELDS = ("avatarHash", "avatarUrl", "fullName", "initials", "username")
BOARD_DEFAULT_FIELDS = (
    "name",
    "desc",
    "descData",
    "closed",
    "idOrganization",
    "pinned",
    "url",
    "shortUrl",
    "prefs",
    "labelNames",
)
LIST_DEFAULT_FIELDS = ("name", "closed", "idBoard", "pos")
REACTION_LIMITS = {
    "perAction": {"status": "ok", "disableAt": 900, "warnAt": 720},
    "uniquePerAction": {"status": "ok", "disableAt": 17, "warnAt": 14},
}


def select(full: dict[str, Any], fields: str | None, default: Iterable[str] | None = None) -> dict[str, Any]:
    """Keep the fields Trello would return for ``fields=`` (``all``, a comma list, or the route's default)."""
    if fields is None or fields == "":
        if default is None:
            return full
        wanted = set(default)
    elif fields == "all":
        return full
    else:
        wanted = {name.strip() for name in fields.split(",")}
    return {key: value for key, value in full.items() if key == "id" or key in wanted}


def member_json(
    state: TrelloState,
    member: Member,
    viewer: Member | None,
    fields: str | None = None,
    default: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Return a member; ``email`` is the member's own only when ``viewer`` is that member."""
    avatar = f"https://trello-members.s3.amazonaws.com/{member.id}/{member.avatar_hash}"
    full: dict[str, Any] = {
        "id": member.id,
        "activityBlocked": False,
        "avatarHash": member.avatar_hash,
        "avatarUrl": avatar,
        "bio": "",
        "bioData": {"emoji": {}},
        "confirmed": True,
        "fullName": member.full_name,
        "idEnterprisesDeactivated": [],
        "initials": member.initials,
        "memberType": "normal",
        "nonPublic": {},
        "nonPublicAvailable": True,
        "products": [],
        "url": f"https://trello.com/{member.username}",
        "username": member.username,
        "status": "disconnected",
        "aaEmail": None,
        "aaEnrolledDate": None,
        "aaId": None,
        "avatarSource": "upload",
        "email": member.email if viewer is not None and viewer.id == member.id else None,
        "idBoards": [board.id for board in state.boards.values() if member.id in board.members],
        "idOrganizations": [state.organization.id],
        "idEnterprisesAdmin": [],
        "loginTypes": ["password"],
        "oneTimeMessagesDismissed": [],
        "trophies": [],
        "uploadedAvatarHash": member.avatar_hash,
        "uploadedAvatarUrl": avatar,
        "premiumFeatures": [],
        "idBoardsPinned": None,
    }
    return select(full, fields, default)


def organization_json(state: TrelloState) -> dict[str, Any]:
    """Return the seeded workspace."""
    org = state.organization
    return {
        "id": org.id,
        "name": org.name,
        "displayName": org.display_name,
        "desc": "",
        "url": f"https://trello.com/w/{org.name}",
        "website": None,
        "idBoards": list(state.boards),
        "memberships": [],
        "premiumFeatures": [],
    }


def board_json(
    state: TrelloState, board: Board, fields: str | None = None, default: Iterable[str] | None = BOARD_DEFAULT_FIELDS
) -> dict[str, Any]:
    """Return a board, by default with the fields ``GET /boards/{id}`` returns."""
    link = short_link(board.id)
    label_names = dict.fromkeys(
        ("green", "yellow", "orange", "red", "purple", "blue", "sky", "lime", "pink", "black"), ""
    )
    for label in state.board_labels(board):
        if label.color is not None and not label_names[label.color]:
            label_names[label.color] = label.name
    full: dict[str, Any] = {
        "id": board.id,
        "name": board.name,
        "desc": board.desc,
        "closed": board.closed,
        "dateLastActivity": iso(board.date_last_activity),
        "idMemberCreator": board.id_member_creator,
        "idOrganization": board.id_organization,
        "pinned": False,
        "url": f"https://trello.com/b/{link}/{slug(board.name)}",
        "shortUrl": f"https://trello.com/b/{link}",
        "shortLink": link,
        "subscribed": False,
        "starred": False,
        "prefs": {
            "permissionLevel": "org",
            "hideVotes": False,
            "voting": "disabled",
            "comments": "members",
            "invitations": "members",
            "selfJoin": True,
            "cardCovers": True,
            "isTemplate": False,
            "cardAging": "regular",
            "calendarFeedEnabled": False,
            "backgroundTile": False,
            "backgroundBrightness": "dark",
            "backgroundBottomColor": "#0079BF",
            "backgroundTopColor": "#0079BF",
            "canBePublic": True,
            "canBeEnterprise": True,
            "canBeOrg": True,
            "canBePrivate": True,
            "canInvite": True,
        },
        "labelNames": label_names,
        "enterpriseOwned": False,
    }
    return select(full, fields, default)


def list_json(
    trello_list: TrelloList, fields: str | None = None, default: Iterable[str] | None = LIST_DEFAULT_FIELDS
) -> dict[str, Any]:
    """Return a list, by default with the spec's default fields (name, closed, idBoard, pos)."""
    full: dict[str, Any] = {
        "id": trello_list.id,
        "name": trello_list.name,
        "closed": trello_list.closed,
        "color": None,
        "idBoard": trello_list.id_board,
        "pos": trello_list.pos,
        "subscribed": False,
    }
    return select(full, fields, default)


def label_json(label: Label, fields: str | None = None) -> dict[str, Any]:
    """Return a board label."""
    full = {"id": label.id, "idBoard": label.id_board, "name": label.name, "color": label.color}
    return select(full, fields)


def attachment_json(attachment: Attachment, fields: str | None = None) -> dict[str, Any]:
    """Return a link attachment with the ``fields`` (or ``attachment_fields``) asked for: ``all`` by default."""
    full: dict[str, Any] = {
        "id": attachment.id,
        "bytes": None,
        "date": iso(attachment.date),
        "idMember": attachment.id_member,
        "isUpload": False,
        "mimeType": attachment.mime_type,
        "name": attachment.name,
        "previews": [],
        "url": attachment.url,
        "pos": attachment.pos,
        "fileName": None,
    }
    return select(full, fields)


def card_attachments(card: Card, which: str | None, fields: str | None) -> list[dict[str, Any]] | None:
    """Return a card's ``attachments`` as asked: ``true`` all, ``cover`` only the cover, ``false`` or absent none.

    The spec allows ``true``, ``false`` or ``cover``; any other value is refused (the unfavourable reading).
    """
    if which is None or which == "false":
        return None
    if which not in {"true", "cover"}:
        raise ApiError(400, "invalid value for attachments")
    chosen = card.attachments if which == "true" else [a for a in card.attachments if a.id == card.id_attachment_cover]
    return [attachment_json(a, fields) for a in chosen]


def card_json(
    state: TrelloState,
    card: Card,
    fields: str | None = None,
    *,
    custom_fields: bool = False,
    attachments: str | None = None,
    attachment_fields: str | None = None,
) -> dict[str, Any]:
    """Return a card with every field py-trello reads; ``labels`` are full label objects, as Trello sends them.

    ``attachments`` and ``attachment_fields`` are the query parameters of that name (see :func:`card_attachments`).
    """
    link = short_link(card.id)
    comments = state.comment_count(card)
    due = iso(card.due)
    full: dict[str, Any] = {
        "id": card.id,
        "badges": {
            "attachmentsByType": {"trello": {"board": 0, "card": 0}},
            "location": False,
            "votes": 0,
            "viewingMemberVoted": False,
            "subscribed": card.subscribed,
            "fogbugz": "",
            "checkItems": 0,
            "checkItemsChecked": 0,
            "comments": comments,
            "attachments": len(card.attachments),
            "description": bool(card.desc),
            "due": due,
            "dueComplete": card.due_complete,
            "start": iso(card.start),
        },
        "checkItemStates": [],
        "closed": card.closed,
        "dueComplete": card.due_complete,
        "dateLastActivity": iso(card.date_last_activity),
        "desc": card.desc,
        "descData": {"emoji": {}},
        "due": due,
        "dueReminder": None,
        "idBoard": card.id_board,
        "idChecklists": [],
        "idList": card.id_list,
        "idMembers": list(card.id_members),
        "idMembersVoted": [],
        "idShort": card.id_short,
        "idAttachmentCover": card.id_attachment_cover,
        "idLabels": list(card.id_labels),
        "labels": [label_json(state.labels[label_id]) for label_id in card.id_labels],
        "manualCoverAttachment": False,
        "name": card.name,
        "pos": card.pos,
        "shortLink": link,
        "shortUrl": f"https://trello.com/c/{link}",
        "start": iso(card.start),
        "subscribed": card.subscribed,
        "url": f"https://trello.com/c/{link}/{card.id_short}-{slug(card.name)}",
        "isTemplate": False,
    }
    selected = select(full, fields)
    if custom_fields:
        selected["customFieldItems"] = [item_json(item) for item in card.custom_items]
    listed = card_attachments(card, attachments, attachment_fields)
    if listed is not None:
        selected["attachments"] = listed
    return selected


def action_json(
    state: TrelloState,
    action: Action,
    *,
    fields: str | None = None,
    member_creator: bool = True,
    member_creator_fields: str | None = None,
    member: bool = True,
    member_fields: str | None = None,
) -> dict[str, Any]:
    """Return an action: ``memberCreator`` (and ``member`` for member actions) nested unless turned off."""
    full: dict[str, Any] = {
        "id": action.id,
        "idMemberCreator": action.id_member_creator,
        "data": action.data,
        "appCreator": None,
        "type": action.type,
        "date": iso(action.date),
        "limits": {"reactions": REACTION_LIMITS} if action.type == "commentCard" else {},
    }
    selected = select(full, fields)
    creator = state.members[action.id_member_creator]
    if member_creator:
        selected["memberCreator"] = member_json(state, creator, None, member_creator_fields, MEMBER_NESTED_FIELDS)
        selected["memberCreator"].pop("email", None)
    target = action.data.get("idMember")
    if member and isinstance(target, str) and target in state.members:
        selected["member"] = member_json(state, state.members[target], None, member_fields, MEMBER_NESTED_FIELDS)
        selected["member"].pop("email", None)
    return selected


def webhook_json(webhook: Webhook) -> dict[str, Any]:
    """Return a webhook registration."""
    return {
        "id": webhook.id,
        "description": webhook.description,
        "idModel": webhook.id_model,
        "callbackURL": webhook.callback_url,
        "active": webhook.active,
        "consecutiveFailures": webhook.consecutive_failures,
        "firstConsecutiveFailDate": None,
    }
