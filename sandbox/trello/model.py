"""The Trello objects the emulator keeps: members, boards, lists, labels, custom fields, cards, actions, webhooks.

Plain mutable records; how they look on the wire lives in :mod:`render`, how they change in :mod:`state`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

LABEL_COLORS = ("green", "yellow", "orange", "red", "purple", "blue", "sky", "lime", "pink", "black")
"""The colours a Trello label may have (or none)."""


def iso(moment: datetime | None) -> str | None:
    """Format a time as Trello does: UTC with milliseconds and a ``Z`` ("2027-01-18T17:00:00.000Z").

    The year always has four digits, as JavaScript's ``toISOString`` writes it (``strftime("%Y")`` writes year 1
    as "1" on glibc, which no client can read back).
    """
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


@dataclass
class Member:
    """A Trello member (one seeded person); ``token`` is the person's API token for the one application key."""

    id: str
    username: str
    full_name: str
    email: str
    token: str

    @property
    def initials(self) -> str:
        """Trello's initials: the first letter of each word of the full name."""
        return "".join(word[0] for word in self.full_name.split() if word).upper()[:4]

    @property
    def avatar_hash(self) -> str:
        """A stable avatar hash (the tail of the id, doubled to 32 hex digits)."""
        return (self.id[-16:] * 2)[:32]


@dataclass
class Organization:
    """The Trello workspace the seeded boards belong to."""

    id: str
    name: str
    display_name: str


@dataclass
class Board:
    """A board: lists, labels and cards hang off it by id."""

    id: str
    name: str
    desc: str
    id_organization: str
    id_member_creator: str
    members: list[str]
    date_last_activity: datetime
    closed: bool = False
    next_id_short: int = 1


@dataclass
class TrelloList:
    """A list (column) of a board."""

    id: str
    id_board: str
    name: str
    pos: float
    closed: bool = False


@dataclass
class Label:
    """A board label; ``color`` None is a colourless label."""

    id: str
    id_board: str
    name: str
    color: str | None


@dataclass
class Attachment:
    """A link attachment on a card (the only kind the sandbox stores)."""

    id: str
    name: str
    url: str
    mime_type: str
    id_member: str
    date: datetime
    pos: float


CUSTOM_FIELD_TYPES = ("checkbox", "list", "number", "text", "date")
"""The spec's POST /customFields ``type`` enum: the Custom Fields power-up's field types."""


@dataclass
class CustomFieldOption:
    """One choice of a ``list`` custom field: ``value.text`` and a colour, as GET /boards/{id}/customFields shows."""

    id: str
    id_custom_field: str
    text: str
    color: str
    pos: float


@dataclass
class CustomField:
    """A board's custom field definition (spec schema ``CustomField``); cards hold items of it."""

    id: str
    id_board: str
    name: str
    type: str
    pos: float
    options: list[CustomFieldOption] = field(default_factory=list)
    card_front: bool = True


@dataclass
class CustomFieldItem:
    """A card's value of one custom field (spec schema ``CustomFieldItems``): ``value`` or, for lists, ``idValue``.

    Values are stored as Trello shows them: ``{"text"}``, ``{"number": "<as a string>"}``, ``{"date": <ISO>}``,
    ``{"checked": "true"}``; a cleared field has no item.
    """

    id: str
    id_custom_field: str
    id_card: str
    value: dict[str, str] | None = None
    id_value: str | None = None


@dataclass
class Card:
    """A card; ``deleted`` cards are gone from every route and survive only in their actions."""

    id: str
    id_board: str
    id_list: str
    id_short: int
    name: str
    desc: str
    pos: float
    date_last_activity: datetime
    due: datetime | None = None
    start: datetime | None = None
    due_complete: bool = False
    closed: bool = False
    id_members: list[str] = field(default_factory=list)
    id_labels: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    custom_items: list[CustomFieldItem] = field(default_factory=list)
    id_attachment_cover: str | None = None
    subscribed: bool = False
    deleted: bool = False


@dataclass
class Action:
    """One entry of Trello's activity log; ``data`` is stored exactly as the API shows it."""

    id: str
    type: str
    id_member_creator: str
    date: datetime
    data: dict[str, Any]
    id_board: str | None = None
    id_card: str | None = None
    id_list: str | None = None
    deleted: bool = False


@dataclass
class Webhook:
    """A webhook registered by one token on one model (board, list, card or member)."""

    id: str
    token: str
    id_model: str
    callback_url: str
    description: str
    active: bool = True
    consecutive_failures: int = 0
