"""The tool-neutral shapes connectors hand to the engine, and the engine hands back.

A connector turns one tool's item into a :class:`Record`: its ``ref`` in that tool, a ``version`` that changes on
every edit (so the engine can recognise its own write when it comes back), the item's fields as plain Python
values under syncd's field names, and the ``marker`` (the sync_id) the engine stamped on it when it created it.
Values stay in the tool's vocabulary (a Jira status name, a Trello list name, wiki markup vs HTML): turning them
into one canonical value is the mapping's job, not the connector's.

Field names and their value types (absent key: the tool has no such field, ``None``: the field is empty):

=============  =====================================  ===============================================
``title``      str                                    Jira summary, Trello name, Asana name
``description`` str, in the tool's native rich text  Jira wiki markup, Trello Markdown, Asana HTML
``status``     str                                    Jira status, Trello list, Asana section
``done``       bool                                   Jira status category, Trello dueComplete, Asana completed
``assignees``  tuple[Person, ...] (sorted by e-mail)  Jira assignee (0..1), Trello members, Asana assignee
``due``        date | datetime (aware, UTC) | None    Jira duedate, Trello due, Asana due_on / due_at
``labels``     tuple[str, ...] (sorted)               Jira labels, Trello label names, Asana tag names
                                                      (a write may be a :class:`LabelPart`)
``priority``   str | None                             Jira's priority (its name); elsewhere a custom field
``custom``     Mapping[str, Any]                      custom field name -> its value (see below)
=============  =====================================  ===============================================

``custom`` holds every custom field the endpoint offers, by the name people see, so a mapping can name any of
them: an option's name (enum), a tuple of option names (multi), str, int | float, date, bool (checkbox),
Person or tuple[Person, ...]; None when blank. A write names the custom field with :class:`Placed`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeAlias, TypeVar

T = TypeVar("T")

FIELDS = ("title", "description", "status", "done", "assignees", "due", "labels", "priority")
"""Every field name a Record may carry, in display order."""

Cursor: TypeAlias = dict[str, Any]
"""A connector's position in its change feed: JSON-serialisable, stored after the changes it covers commit."""


@dataclass(frozen=True, order=True)
class Person:
    """Someone as one tool knows them; ``email`` links the same person across tools when the tool shows it."""

    email: str | None
    account: str | None = field(default=None, compare=False)
    name: str | None = field(default=None, compare=False)

    def label(self) -> str:
        """How messages and the audit log name this person (never a credential)."""
        return self.email or self.name or self.account or "unknown person"


def utc(moment: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is refused, because guessing its zone would corrupt data."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()} has no time zone; refuse to guess one")
    return moment.astimezone(UTC)


Due: TypeAlias = date | datetime | None


class Unreadable(str):
    """A field value the tool sent that cannot be read (a date that is not a date): kept as sent for the report.

    Connectors put it in a record instead of failing the whole listing; the mapping reports it and leaves the field
    out, so one bad value never stops the other items, and is never guessed.
    """

    __slots__ = ()


def read_or_keep(text: str, parse: Callable[[str], T]) -> T | Unreadable:
    """``parse(text)``, or the text marked :class:`Unreadable` when the tool sent something unparseable."""
    try:
        return parse(text)
    except (ValueError, TypeError):
        return Unreadable(text)


@dataclass(frozen=True)
class Record:
    """One item as read from (or just written to) one tool."""

    tool: str
    ref: str
    version: str
    modified: datetime
    fields: Mapping[str, Any]
    marker: str | None = None
    archived: bool = False
    url: str | None = None
    comments: int | None = None
    """How many comments the record has, where the read that made it says (Jira's comment total, Trello's badge).

    A write's read-back is stored as syncd's version; a comment posted between the version check and that
    read-back is inside it, and would never be read. The count tells the engine whether to look (None: it must).
    """
    history: History | None = None
    """The record's whole field history, where the read that made it carried it complete (a Jira search with its
    changelog): the engine takes who changed what from it instead of reading the history again. None: not carried,
    or cut short by the tool."""
    mine: bool = False
    """Whether syncd's own account made the record, where a read says so and carries no marker (Asana): such a
    record without a link is a create whose answer was lost, never a new item of a person's."""


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One change of one field, from the tool's own history: when, whether syncd's own account made it, and who.

    ``person`` is the author's e-mail as the connector maps people (its directory first), for the audit log's
    attribution; None where the tool does not say or the person has no known e-mail (never guessed).
    """

    field: str
    """A record field (``title``), or :func:`custom_change` of a custom field; :meth:`syncd.mapping.Codec.history`
    renames both to the mapping's canonical fields."""
    at: datetime
    by_self: bool
    person: str | None = None


CUSTOM_CHANGE = "custom:"
"""The prefix of a custom field's :attr:`FieldChange.field`: no record field name starts with it."""


def custom_change(name: str) -> str:
    """The :attr:`FieldChange.field` of a change of the custom field people see as ``name``.

    Connectors do not know the mapping, so they name a custom field as records key it (by name); the codec of the
    member turns the name into the canonical field the mapping placed there (``at: {custom: <name>}``).
    """
    return f"{CUSTOM_CHANGE}{name}"


@dataclass(frozen=True, slots=True)
class History:
    """A record's whole field history as a read carried it, kept small: a full scan holds one per record.

    The creation (every field of ``made``, a tuple shared by all records of a tool, set by ``person`` when the
    record was made) is expanded into :class:`FieldChange` entries only when asked for; ``changes`` are the rest.
    """

    created: datetime
    by_self: bool
    person: str | None
    made: tuple[str, ...]
    changes: tuple[FieldChange, ...] = ()

    def expanded(self) -> list[FieldChange]:
        """Every change, the creation's first, as :meth:`syncd.connector.Connector.history` returns them."""
        return [FieldChange(name, self.created, self.by_self, self.person) for name in self.made] + list(self.changes)


def last_changes(history: Sequence[FieldChange]) -> dict[str, datetime]:
    """When each field last changed, by anyone."""
    times: dict[str, datetime] = {}
    for change in history:
        times[change.field] = max(times.get(change.field, change.at), change.at)
    return times


@dataclass(frozen=True)
class Comment:
    """One comment on an item, in the tool's native rich text."""

    ref: str
    id: str
    author: Person
    body: str
    created: datetime


@dataclass(frozen=True)
class ChangeBatch:
    """What changed since a cursor: at least once, so the engine de-duplicates by (ref, version)."""

    records: tuple[Record, ...]
    deleted: tuple[str, ...]
    cursor: Cursor
    full_scan: bool = False
    """True when the batch is a complete listing (first run, expired token): refs absent from it left scope."""
    present: frozenset[str] | None = None
    """Every ref the endpoint has now, from a listing that is not a full read (refs only, no fields): a linked ref
    missing from it (and from ``records``) was deleted. None when the endpoint was not listed this time. Tools whose
    feed cannot show deletions (Jira search) list their refs this cheaply between full scans."""


@dataclass(frozen=True)
class Placed:
    """A value to write where a mapping placed its field: a custom field by name, or the tool's own ``field``.

    The connector's write fields stay keyed by the canonical field name, so a refusal (InvalidItem.field) names
    the canonical field and the engine leaves out that one value; the name is resolved to the tool's id there.
    """

    value: Any
    custom: str | None = None
    field: str | None = None


@dataclass(frozen=True)
class LabelPart:
    """A write of part of an item's labels: the labels in the part become ``held``, the others stay as they are.

    The part is the labels in ``among``, or with ``among`` None every label but those in ``besides``. A mapping
    writes one where labels carry two fields (a priority kept as labels beside the ordinary labels), so writing
    one field never takes away the other's labels. A connector reads the item's labels and writes :meth:`applied`.
    """

    held: tuple[str, ...]
    among: frozenset[str] | None = None
    besides: frozenset[str] = frozenset()

    def covers(self, label: str) -> bool:
        """Whether ``label`` is in the part this write sets."""
        return label in self.among if self.among is not None else label not in self.besides

    def applied(self, current: Sequence[str]) -> tuple[str, ...]:
        """The item's labels after this write, given the labels it has (sorted, as a record holds them)."""
        return tuple(sorted({label for label in current if not self.covers(label)} | set(self.held)))


CUSTOM_TYPES = ("text", "number", "date", "enum", "multi", "person", "people", "checkbox")
"""The kinds of custom field syncd knows, as a :class:`CustomField` and a mapping's ``type`` name them."""


@dataclass(frozen=True)
class CustomField:
    """A custom field an endpoint offers: its name, its id in the tool, its kind and (enum, multi) options."""

    name: str
    id: str
    type: str
    """One of :data:`CUSTOM_TYPES` (the connector translates the tool's kinds: a Jira select is ``enum``)."""
    options: tuple[str, ...] = ()
    open: bool = False
    """Any value may be written (Jira's labels-like field: a multi without a fixed option list)."""


@dataclass(frozen=True)
class Schema:
    """What a tool endpoint offers, for `syncd check` and the mapping compiler."""

    tool: str
    statuses: tuple[str, ...]
    transitions: Mapping[str, tuple[str, ...]]
    """Status -> statuses reachable in one step (tools without a workflow: every status from every status)."""
    people: tuple[Person, ...]
    labels: tuple[str, ...]
    fields: tuple[str, ...] = FIELDS
    requirements: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Status -> fields the tool requires to move an item there (Jira transition screens), for `syncd check`."""
    custom_fields: tuple[CustomField, ...] = ()
    priorities: tuple[str, ...] = ()
    """The tool's own priority field's values, where it has one (Jira)."""
