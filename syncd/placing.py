"""Fields a mapping places in a tool's custom field (or a tool's own field like Jira's priority): their types.

A group's field with ``at`` names, per member, where that member's tool keeps it: ``{custom: <field name>}`` (a
custom field, by the name people see; the connector resolves it to its id) or ``{field: priority}`` (the tool's
own field). Its ``type`` says what the canonical value is; this module turns one tool value into that canonical
value and back. Options (``enum``, ``multi``) pass through the field's value ``map`` like statuses do; an option
without a mapping is an :class:`UnmappableError`, reported and left out by the codec, never guessed.

Pure: no I/O, no SDK, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, Literal

from syncd.model import Person

CanonicalType = Literal["text", "number", "date", "enum", "multi", "person", "people", "checkbox"]

PLACEABLE_FIELDS = ("priority",)
"""Tool fields of syncd's own records a mapping may place a field in with ``{field: ...}``."""

OPTION_TYPES = ("enum", "multi")
"""The types whose values are options, mapped through ``map`` / ``write``."""

FITS: Mapping[str, frozenset[str]] = {
    # canonical type -> the custom field kinds (CustomField.type) that can hold it
    "text": frozenset({"text"}),
    "number": frozenset({"number"}),
    "date": frozenset({"date"}),
    "enum": frozenset({"enum"}),
    "multi": frozenset({"multi"}),
    "person": frozenset({"person", "people"}),
    "people": frozenset({"people"}),
    "checkbox": frozenset({"checkbox"}),
}
"""A canonical ``person`` also fits a people field (one person written, read back as the first)."""


class UnmappableError(ValueError):
    """One value that cannot be carried across: the message says what to add to the mapping."""


def to_canonical(kind: str, raw: Any, table: Mapping[str, str] | None, where: str) -> Any:  # noqa: ANN401, PLR0911
    """A tool value (as a connector reads it) as the canonical value of type ``kind``.

    ``table`` is the member's value map (tool option -> canonical), if it has one; ``where`` names it for messages.
    """
    if kind == "checkbox":
        return bool(raw)  # a blank checkbox is an unticked one (Trello keeps no item for it)
    if raw is None or raw in ("", ()):
        return [] if kind in ("multi", "people") else None
    if kind == "number":
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise UnmappableError(f"{raw!r} is not a number")
        return int(raw) if float(raw).is_integer() else float(raw)
    if kind == "date":
        if isinstance(raw, datetime):
            return raw.astimezone(UTC).date().isoformat()
        if isinstance(raw, date):
            return raw.isoformat()
        raise UnmappableError(f"{raw!r} is not a date")
    if kind == "enum":
        return _option_in(str(raw), table, where)
    if kind == "multi":
        items = raw if isinstance(raw, tuple | list) else (raw,)
        return sorted({_option_in(str(item), table, where) for item in items})
    if kind in ("person", "people"):
        people = list(raw) if isinstance(raw, tuple | list) else [raw]
        unknown = [p.label() for p in people if not isinstance(p, Person) or not p.email]
        if unknown:
            raise UnmappableError(f"no e-mail known for {', '.join(unknown)}: add them to the department's people")
        emails = sorted(p.email for p in people if p.email)
        return emails[0] if kind == "person" else emails
    return str(raw)


def from_canonical(  # noqa: PLR0911 - one return per type
    kind: str,
    value: Any,  # noqa: ANN401 - a canonical value
    table: Mapping[str, str] | None,
    chosen: Mapping[str, str],
    where: str,
) -> Any:  # noqa: ANN401 - a connector field value
    """A canonical value of type ``kind`` as the tool value to write (``chosen``: the member's ``write`` choices)."""
    if kind == "checkbox":
        return bool(value)
    if value is None or value in ("", []):
        return () if kind in ("multi", "people") else None
    if kind == "date":
        try:
            return date.fromisoformat(str(value)[:10])
        except ValueError as error:
            raise UnmappableError(f"{value!r} is not a date") from error
    if kind == "enum":
        return _option_out(str(value), table, chosen, where)
    if kind == "multi":
        return tuple(sorted(_option_out(str(item), table, chosen, where) for item in value))
    if kind == "person":
        return Person(str(value))
    if kind == "people":
        return tuple(Person(str(email)) for email in value)
    return value


def _option_in(raw: str, table: Mapping[str, str] | None, where: str) -> str:
    if table is None:
        return raw
    if raw not in table:
        raise UnmappableError(f"{raw!r} has no canonical value: add it to {where}")
    return table[raw]


def _option_out(value: str, table: Mapping[str, str] | None, chosen: Mapping[str, str], where: str) -> str:
    if table is None:
        return value
    option = chosen.get(value) or next((raw for raw, canonical in table.items() if canonical == value), None)
    if option is None:
        raise UnmappableError(f"canonical {value!r} maps to no option here: add it to {where}")
    return option
