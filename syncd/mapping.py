"""Sync-group mappings (``mappings/<group>.yaml``) compiled into per-endpoint codecs: record <-> canonical values.

A group file names its members (departments), each member's scope, where new items are mirrored, and per
canonical field its conflict rule, which members hold it (``members`` / ``except``: a department may keep a field
to itself), which of them may change it (``from``), and value maps. :func:`compile_group` turns it
into a :class:`Group`: the planner's :class:`~syncd.merge.GroupPolicy` plus one :class:`Codec` per member.

A codec decodes a connector :class:`~syncd.model.Record` into canonical values (status through the value map,
people as e-mails, text as normalised Markdown, dates as ISO strings) and encodes canonical values back into the
connector's field values. Many-to-one maps are normal (Jira ``In Review`` and ``In Progress`` both mean
``doing``); encoding picks the member's ``write`` choice or the first mapped value, and because the planner
compares canonical values, a lossy map never flaps. A value that cannot be mapped is reported as a
:class:`MappingProblem` and left out, never guessed.

Pure: no I/O, no SDK, no clock.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from syncd import placing, richtext
from syncd.connector import Capabilities, TextFormat, ToolLimits
from syncd.errors import ConfigError
from syncd.merge import FieldPolicy, GroupPolicy, Rule
from syncd.model import FIELDS, FieldChange, LabelPart, Person, Placed, Record, Unreadable, custom_change
from syncd.plan import Value, View
from syncd.yamlfile import FileError, Located, line_of, load_yaml_data, load_yaml_model

ELLIPSIS = "\u2026"
UNTITLED = "(untitled)"
"""The title written where a tool requires one and the item's title is blank (reported; read back as the blank)."""
_LINE_BREAKS = re.compile(r"[ \t]*[\r\n]+[ \t]*")

Converter = Callable[[str, list[str] | None], str]
TEXT_FORMATS: Mapping[TextFormat, tuple[Converter, Converter]] = {
    # format -> (its text -> canonical Markdown, canonical Markdown -> its text); both report what they cannot carry
    TextFormat.JIRA_WIKI: (richtext.wiki_to_markdown, richtext.markdown_to_wiki),
    TextFormat.TRELLO_MARKDOWN: (richtext.trello_to_markdown, richtext.markdown_to_trello),
    TextFormat.ASANA_HTML: (richtext.asana_html_to_markdown, richtext.markdown_to_asana_html),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleSpec(_Strict):
    """A rule as written: ``latest``, ``union``, ``merge-text``, ``manual``, ``{owner: dept}``, ``{prefer: [...]}``."""

    owner: str | None = None
    prefer: list[str] | None = None

    @model_validator(mode="after")
    def _one(self) -> RuleSpec:
        if (self.owner is None) == (self.prefer is None):
            raise ValueError("a rule is a name (latest, union, merge-text, manual) or {owner: dept} or {prefer: [...]}")
        return self


class Place(_Strict):
    """Where one member's tool keeps a field: a custom field by name, one of the tool's own fields, or labels."""

    custom: str | None = Field(None, description="the custom field's name, as people see it in the tool")
    field: Literal["priority"] | None = Field(None, description="the tool's own field (Jira's priority)")
    labels: list[str] | None = Field(
        None,
        description="the labels that carry the field (priority only), one per option: an item holds one of them "
        "(none: empty); they are not ordinary labels at this member",
    )

    @model_validator(mode="after")
    def _one(self) -> Place:
        if sum(place is not None for place in (self.custom, self.field, self.labels)) != 1:
            raise ValueError("a place is {custom: <custom field name>}, {field: priority} or {labels: [<label>, ...]}")
        if self.labels is not None and (not self.labels or len(set(self.labels)) != len(self.labels)):
            raise ValueError("{labels: [...]} lists each label that carries the field once, and at least one")
        return self

    def label(self) -> str:
        """How messages name the place."""
        if self.labels is not None:
            return f"labels {self.labels}"
        return f"custom field {self.custom!r}" if self.custom is not None else f"field {self.field!r}"


PLACED_BUILTINS = ("status", "priority")
"""Canonical fields of syncd's own that a mapping may place in a custom field (``at``); both hold one option."""


class FieldSpec(_Strict):
    """One canonical field of the group."""

    rule: Literal["latest", "union", "merge-text", "manual"] | RuleSpec = "latest"
    sources: list[str] | None = Field(None, alias="from", description="members whose changes count (default: all)")
    members: list[str] | None = Field(
        None, description="the only members that hold this field (default: all); the others never read or write it"
    )
    excluded: list[str] | None = Field(
        None, alias="except", description="the members that do not hold this field (the others do)"
    )
    map: dict[str, dict[str, str]] = Field(default_factory=dict, description="member -> tool value -> canonical")
    write: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="member -> canonical -> tool value to write when several map to it"
    )
    type: placing.CanonicalType | None = Field(
        None, description="a custom field's canonical type (status and priority are enum)"
    )
    at: dict[str, Place] = Field(
        default_factory=dict,
        description="member -> where its tool keeps the field (a custom field, its own priority, or labels)",
    )
    as_date: bool = Field(False, description="due: compare as a date (in `zone`), for tools that hold only dates")
    zone: str = "UTC"

    @field_validator("zone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {zone!r}: use an IANA name like Europe/Berlin") from exc
        return zone


class Scope(_Strict):
    """Which of a member's items belong to the group (all when empty)."""

    labels: list[str] = Field(default_factory=list, description="an item with any of these labels or tags")
    statuses: list[str] = Field(default_factory=list, description="an item in one of these statuses / lists / sections")


class Member(_Strict):
    """A department's place in the group."""

    scope: Scope = Field(default_factory=Scope)
    on_delete: Literal["archive", "unlink", "delete"] | None = Field(
        None,
        description="what a deletion in this member does to the mirrors in the others: archive them, unlink them, "
        "or delete them (under the mass-change guard, audited with their values); default: the group's on_delete",
    )


class GroupFile(_Strict):
    """``mappings/<group>.yaml`` as written."""

    group: str | None = None
    members: dict[str, Member]
    create_in: list[str] = Field(default_factory=list)
    on_delete: Literal["archive", "unlink"] = Field(
        "archive",
        description="what a deletion does to the mirrors (archive or unlink); a member may say delete "
        "(members.<name>.on_delete)",
    )
    fields: dict[str, FieldSpec]
    comments: bool = True

    @field_validator("on_delete", mode="before")
    @classmethod
    def _delete_per_member(cls, value: object) -> object:
        if value == "delete":
            raise ValueError(
                "deleting mirrors is chosen per member, where the deletions that should delete happen: "
                "set 'on_delete: delete' under members.<name> (the group's on_delete is archive or unlink)"
            )
        return value

    def holders(self, name: str) -> tuple[str, ...]:
        """The members that hold field ``name`` (``members``, or all but ``except``), in member order."""
        spec = self.fields[name]
        if spec.members is not None:
            return tuple(member for member in self.members if member in spec.members)
        return tuple(member for member in self.members if member not in (spec.excluded or []))

    @model_validator(mode="after")
    def _consistent(self) -> GroupFile:
        unknown_fields = sorted(name for name, spec in self.fields.items() if name not in FIELDS and not spec.at)
        if unknown_fields:
            raise Located(
                ("fields", unknown_fields[0]),
                f"unknown fields {unknown_fields}: syncd mirrors {list(FIELDS)}, and a custom field needs "
                "'type' and 'at' (where each member keeps it)",
            )
        members = set(self.members)
        # Each place a department is named, so the error points at the line that names a stranger.
        places: list[tuple[tuple[str, ...], set[str]]] = [(("create_in",), set(self.create_in))]
        for name, spec in self.fields.items():
            places += [
                ((("fields", name, "members")), set(spec.members or [])),
                ((("fields", name, "except")), set(spec.excluded or [])),
                ((("fields", name, "from")), set(spec.sources or [])),
                ((("fields", name, "map")), set(spec.map)),
                ((("fields", name, "write")), set(spec.write)),
                ((("fields", name, "at")), set(spec.at)),
            ]
            if isinstance(spec.rule, RuleSpec):
                ruled = {spec.rule.owner} if spec.rule.owner else set(spec.rule.prefer or [])
                places.append((("fields", name, "rule"), ruled))
        strangers = sorted(set().union(*(named for _, named in places)) - members)
        if strangers:
            where = next(loc for loc, named in places if named - members)
            raise Located(where, f"{strangers} are not members of the group: add them under 'members' or fix the name")
        for name, spec in self.fields.items():
            self._check_holders(name, spec)
            self._check_places(name, spec)
            _check_write_targets(name, spec)
        return self

    def _check_places(self, name: str, spec: FieldSpec) -> None:
        """A placed field says its type and where every holder keeps it; only syncd's own option fields may be."""
        if not spec.at:
            if spec.type is not None:
                raise Located(("fields", name, "type"), "'type' is for custom fields: add 'at' or remove the type")
            if name == "priority":
                raise Located(
                    ("fields", name),
                    "fields.priority needs 'at': where each member keeps it ({field: priority} or {custom: <name>})",
                )
            return
        if name in FIELDS and name not in PLACED_BUILTINS:
            raise Located(
                ("fields", name, "at"),
                f"fields.{name} is kept where syncd reads it; only {list(PLACED_BUILTINS)} and custom fields take 'at'",
            )
        if name in PLACED_BUILTINS and spec.type not in (None, "enum"):
            raise Located(("fields", name, "type"), f"fields.{name} holds one option: its type is enum")
        if name not in FIELDS and spec.type is None:
            raise Located(("fields", name), f"fields.{name} needs a 'type': one of {list(placing.FITS)}")
        # A status is where syncd reads it (its workflow, list or section) unless 'at' says otherwise.
        missing = [member for member in self.holders(name) if member not in spec.at and name != "status"]
        if missing:
            raise Located(
                ("fields", name, "at"),
                f"fields.{name}.at does not say where {missing} keep it: add {{custom: <field name>}} for each",
            )
        kind = field_type(name, spec)
        if kind not in placing.OPTION_TYPES and (spec.map or spec.write):
            raise Located(("fields", name, "map" if spec.map else "write"), f"a {kind} field has no options to map")
        for member, place in spec.at.items():
            if place.field is not None and name != "priority":
                raise Located(("fields", name, "at", member), "only fields.priority can be kept in {field: priority}")
            if place.labels is not None:
                self._check_label_place(name, spec, member, place.labels)

    def _check_label_place(self, name: str, spec: FieldSpec, member: str, labels: list[str]) -> None:
        """A priority kept as labels: its map reads those labels only, and none of them is the member's scope."""
        if name != "priority":
            raise Located(("fields", name, "at", member), "only fields.priority can be kept in {labels: [...]}")
        others = sorted(set(spec.map.get(member, {})) - set(labels))
        if others:
            raise Located(
                ("fields", name, "map", member),
                f"{others} are not among the labels that carry the priority at {member} ({labels}): "
                f"add them to fields.{name}.at.{member}.labels or remove them from the map",
            )
        scoped = sorted(set(self.members[member].scope.labels) & set(labels))
        if scoped:
            raise Located(
                ("fields", name, "at", member),
                f"{scoped} scope {member}'s items and cannot carry a priority too: pick other labels",
            )
        ordinary = self.fields.get("labels")
        mapped = sorted(set(ordinary.map.get(member, {}) if ordinary else {}) & set(labels))
        if mapped:
            raise Located(
                ("fields", "labels", "map", member),
                f"{mapped} carry the priority at {member}, so they are not ordinary labels there: "
                f"remove them from fields.labels.map.{member}",
            )

    def _check_holders(self, name: str, spec: FieldSpec) -> None:
        """A field held by some members only: said one way, held by two or more, and named only where it is held."""
        if spec.members is not None and spec.excluded is not None:
            raise Located(
                ("fields", name, "except"),
                f"fields.{name} has both 'members' (who holds it) and 'except' (who does not): keep one",
            )
        key = "members" if spec.members is not None else "except"
        holders = self.holders(name)
        if len(holders) == len(self.members):
            return
        if name == "title":
            raise Located(
                ("fields", name, key),
                "every member holds the title: a mirror can be created at any member, and each tool needs a title; "
                f"remove '{key}' from fields.title",
            )
        if len(holders) < 2:
            raise Located(
                ("fields", name, key),
                f"fields.{name} would be held by {list(holders) or 'no member'} only, and a field one member "
                f"holds syncs nothing: list at least two members, or remove fields.{name}",
            )
        others = sorted(set(self.members) - set(holders))
        named: list[tuple[tuple[str, ...], set[str]]] = [
            (("fields", name, "from"), set(spec.sources or [])),
            (("fields", name, "map"), set(spec.map)),
            (("fields", name, "write"), set(spec.write)),
        ]
        if isinstance(spec.rule, RuleSpec):
            ruled = {spec.rule.owner} if spec.rule.owner else set(spec.rule.prefer or [])
            named.append((("fields", name, "rule"), ruled))
        for where, members in named:
            strangers = sorted(members & set(others))
            if strangers:
                raise Located(
                    where,
                    f"{strangers} do not hold fields.{name} (it is held by {list(holders)}): "
                    f"name only members that hold it here, or let {strangers} hold it",
                )


def _check_write_targets(name: str, spec: FieldSpec) -> None:
    """A ``write`` choice must be a tool value its member's map reads back as that canonical value, or it flaps."""
    for member, choices in spec.write.items():
        mapped = spec.map.get(member)
        if mapped is None:
            raise Located(("fields", name, "write", member), f"'write' needs a 'map' for {member}: add one")
        for canonical, tool_value in choices.items():
            if mapped.get(tool_value) != canonical:
                raise Located(
                    ("fields", name, "write", member, canonical),
                    f"{member} would write {tool_value!r} for {canonical!r}, but its map reads {tool_value!r} "
                    f"as {mapped.get(tool_value)!r}: write one of "
                    f"{sorted(value for value, means in mapped.items() if means == canonical)}",
                )


def field_type(name: str, spec: FieldSpec) -> str:
    """The canonical type of a placed field (status and priority hold one option)."""
    return spec.type or ("enum" if name in PLACED_BUILTINS else "text")


@dataclass(frozen=True)
class MappingProblem:
    """A value that could not be mapped: reported, and the field left out (never guessed)."""

    endpoint: str
    field: str
    value: str
    message: str


@dataclass(frozen=True)
class Codec:
    """Decode one member's records to canonical values and encode canonical values for it."""

    endpoint: str
    tool: str
    """The member's tool kind (``jira``), as messages name it."""
    specs: Mapping[str, FieldSpec]
    scope: Scope
    capabilities: Capabilities
    """What the member's tool holds and refuses, as its connector declares."""

    def text_in(self, text: str) -> str:
        """The tool's rich text (a comment) as canonical Markdown."""
        return TEXT_FORMATS[self.capabilities.text][0](text, None)

    def text_out(self, markdown: str) -> str:
        """Canonical Markdown as the tool's rich text."""
        return TEXT_FORMATS[self.capabilities.text][1](markdown, None)

    def in_scope(self, record: Record) -> bool:
        """Whether the record belongs to the group at this member."""
        labels = set(record.fields.get("labels") or ())
        if self.scope.labels and not labels & set(self.scope.labels):
            return False
        return not self.scope.statuses or record.fields.get("status") in self.scope.statuses

    def decode(self, record: Record) -> tuple[View, list[MappingProblem]]:
        """The record as canonical values (fields this tool lacks are absent), and what could not be mapped."""
        values: dict[str, Value] = {}
        problems: list[MappingProblem] = []
        for name, spec in self.specs.items():
            place = spec.at.get(self.endpoint)
            if place is not None:
                self._decode_placed(record, name, spec, place, values, problems)
                continue
            if name not in record.fields:
                continue
            raw = record.fields[name]
            lossy: list[str] = []
            if isinstance(raw, Unreadable):
                # The tool sent something unreadable (a date that is not one): reported, left out, never guessed.
                problems.append(MappingProblem(self.endpoint, name, str(raw)[:80], "the tool's value cannot be read"))
                continue
            try:
                values[name] = self._decode(name, spec, raw, lossy)
            except _UnmappableError as unmappable:
                problems.append(MappingProblem(self.endpoint, name, str(raw), str(unmappable)))
            problems += [MappingProblem(self.endpoint, name, str(raw)[:80], f"kept as text: {w}") for w in lossy]
        person = next(iter(record.fields.get("assignees") or ()), None)
        view = View(
            endpoint=self.endpoint,
            ref=record.ref,
            values=values,
            modified=record.modified,
            person=person.email if isinstance(person, Person) else None,
            archived=record.archived,
        )
        return view, problems

    def _decode_placed(  # noqa: PLR0917 - the decode loop's state, passed on
        self, record: Record, name: str, spec: FieldSpec, place: Place, values: dict[str, Value], problems: list[Any]
    ) -> None:
        """A field the mapping placed (``at``) into ``values``, or a problem: a missing field, an unmapped option.

        Kept as labels, the field is the one of its labels the item has (none: empty); several are reported and
        left out, never guessed between.
        """
        if place.labels is not None:
            carried = self._carried_label(record, name, place.labels, problems)
            if carried is None:
                return
            raw = carried[0]
        elif place.field is not None:
            if place.field not in record.fields:
                return
            raw = record.fields[place.field]
        else:
            held = record.fields.get("custom")
            if held is None:
                return  # this read carries no custom fields (a tool without them): nothing to compare
            if place.custom not in held:
                problems.append(
                    MappingProblem(
                        self.endpoint,
                        name,
                        str(place.custom),
                        f"{self.tool} has no custom field {place.custom!r} here: fix fields.{name}.at.{self.endpoint}",
                    )
                )
                return
            raw = held[place.custom]
        if isinstance(raw, Unreadable):
            problems.append(MappingProblem(self.endpoint, name, str(raw)[:80], "the tool's value cannot be read"))
            return
        table = spec.map.get(self.endpoint)
        try:
            values[name] = placing.to_canonical(
                field_type(name, spec), raw, table, f"fields.{name}.map.{self.endpoint}"
            )
        except placing.UnmappableError as unmappable:
            problems.append(MappingProblem(self.endpoint, name, str(raw)[:80], str(unmappable)))

    def history(self, changes: Iterable[FieldChange]) -> list[FieldChange]:
        """The tool's history (:meth:`syncd.connector.Connector.history`) named by the canonical fields it changed.

        The connector names what the record holds (``title``, ``priority``, a custom field by name); this is where
        the mapping says which canonical field is read from there, as :meth:`decode` reads it. A field the mapping
        placed (``at``) is read only from its place, so a change of the record field of the same name (an Asana
        section move, where status is kept in a custom field) changed nothing syncd reads, and is left out with
        the changes of fields the group does not map.
        """
        read_from = self._read_from
        return [replace(change, field=name) for change in changes for name in read_from.get(change.field, ())]

    @cached_property
    def _read_from(self) -> dict[str, tuple[str, ...]]:
        """Record field (or :func:`~syncd.model.custom_change`) -> the canonical fields read from it here."""
        found: dict[str, tuple[str, ...]] = {}
        for name, spec in self.specs.items():
            place = spec.at.get(self.endpoint)
            if place is None:
                source = name
            elif place.custom is not None:
                source = custom_change(place.custom)
            elif place.labels is not None:
                # The history says that labels changed, not which: credited to the field kept in some of them, a
                # change of an ordinary label would read as a person setting it again (and win a `latest`).
                continue
            else:
                source = str(place.field)
            found[source] = (*found.get(source, ()), name)
        return found

    def _carried_label(
        self, record: Record, name: str, labels: list[str], problems: list[Any]
    ) -> tuple[str | None] | None:
        """The one of ``labels`` the item has ((None,) for none), or None: unreadable or several (reported)."""
        held = record.fields.get("labels")
        if held is None:
            return None
        if isinstance(held, Unreadable):
            problems.append(MappingProblem(self.endpoint, name, str(held)[:80], "the tool's value cannot be read"))
            return None
        carried = sorted(set(held) & set(labels))
        if len(carried) > 1:
            problems.append(
                MappingProblem(
                    self.endpoint,
                    name,
                    ", ".join(carried),
                    f"the item has {len(carried)} of the labels that carry fields.{name} here "
                    f"({', '.join(carried)}): keep one of them on the item",
                )
            )
            return None
        return (carried[0] if carried else None,)

    def _decode(self, name: str, spec: FieldSpec, raw: Any, lossy: list[str]) -> Value:  # noqa: ANN401 - a record's field value
        if name == "status" and self.endpoint in spec.map:
            table = spec.map[self.endpoint]
            if raw not in table:
                raise _UnmappableError(f"{raw!r} has no canonical value: add it to fields.status.map.{self.endpoint}")
            return table[raw]
        if name == "labels":
            table, reserved = spec.map.get(self.endpoint, {}), self.reserved_labels
            return sorted({table.get(label, label) for label in raw or () if label not in reserved})
        if name == "assignees":
            people: tuple[Person, ...] = raw or ()
            unknown = [person.label() for person in people if not person.email]
            if unknown:
                raise _UnmappableError(f"no e-mail known for {', '.join(unknown)}: add them to the department's people")
            return sorted(person.email for person in people if person.email)
        if name == "description":
            return TEXT_FORMATS[self.capabilities.text][0](raw or "", lossy)
        if name == "due":
            try:
                return _due_to_canonical(raw, spec)
            except OverflowError as error:  # year 1 or 9999 moved across midnight by the zone
                raise _UnmappableError(f"{raw} has no day in {spec.zone} that a date can hold") from error
        return raw

    def align(self, view: View, base: Mapping[str, Value] | None) -> View:
        """Read a lossy field as unchanged when it holds all this tool can hold of the base value.

        Jira keeps the first of several assignees: its [ana] is the base's [ana, eli] as far as Jira can tell, so
        it must not count as a change (or Jira and Trello would undo each other's people forever). Likewise a
        title, labels or due date the tool could not hold as they are (see :meth:`encode`): holding exactly what
        encoding the base value writes is holding the base value.
        """
        if base is None:
            return view
        values = dict(view.values)
        if self.capabilities.single_assignee and "assignees" in values:
            held, agreed = values["assignees"], base.get("assignees")
            if isinstance(agreed, list) and len(agreed) > 1 and held == agreed[:1]:
                values["assignees"] = agreed
        for name in ("title", "due"):
            if name in values and name in base:
                written = self._written(name, base[name])
                if written is not None and values[name] == written[0]:
                    values[name] = base[name]
        agreed = base.get("labels")
        if isinstance(values.get("labels"), list) and isinstance(agreed, list):
            # A label this tool cannot hold was never written here, so the tool cannot have removed it; the labels
            # it does hold still say what was added or removed here.
            unheld = self._unheld_labels(agreed)
            if unheld:
                labels = set(values["labels"]) | unheld
                values["labels"] = agreed if labels == set(agreed) else sorted(labels)
        return view if values == view.values else replace(view, values=values)

    def _written(self, name: str, value: Value) -> tuple[Value] | None:
        """What this tool reads back as ``value`` after encoding fitted it to the tool; None when nothing was fitted."""
        spec = self.specs.get(name)
        if spec is None:
            return None
        refused: list[tuple[str, str]] = []
        try:
            encoded = self._encode(name, spec, value, [], refused)
            return (self._decode(name, spec, encoded, []),) if refused else None
        except _UnmappableError:
            return None

    def _unheld_labels(self, labels: list[str]) -> set[str]:
        """The canonical labels among ``labels`` that encoding leaves out here (see :meth:`_labels`)."""
        spec = self.specs.get("labels")
        if spec is None:
            return set()
        reverse = self._raw_labels
        return {label for label in labels if not self._labels([reverse.get(label, label)], [])}

    @cached_property
    def _raw_labels(self) -> dict[str, str]:
        """Canonical label -> the label the tool holds, where the mapping renames labels here."""
        spec = self.specs.get("labels")
        return {} if spec is None else {canonical: raw for raw, canonical in spec.map.get(self.endpoint, {}).items()}

    @cached_property
    def reserved_labels(self) -> frozenset[str]:
        """The labels that carry a field here (a priority kept as labels): never ordinary labels at this member."""
        return frozenset(
            label
            for spec in self.specs.values()
            if (place := spec.at.get(self.endpoint)) is not None and place.labels is not None
            for label in place.labels
        )

    def encode(
        self, values: Mapping[str, Value], *, create: bool = False
    ) -> tuple[dict[str, Any], list[MappingProblem]]:
        """Canonical values as this member's connector fields, and what could not be mapped.

        A value the tool would refuse (its :attr:`limits`) never fails the write of the others: a title is made one
        that the tool takes (shortened with an ellipsis, line breaks as spaces, :data:`UNTITLED` for a blank one),
        a label the tool cannot hold is left out (never rewritten: a person would not accept a silently changed
        label; a value map can name the tool's label for it), and a due date outside the tool's range is written
        empty, never malformed. Each is reported as a :class:`MappingProblem`, and :meth:`align` reads what the
        tool then holds as the value written, so the difference is not taken for an edit.

        A member scoped by labels gets its scope label on every mirror syncd creates there, and keeps one when
        labels are written: otherwise the mirror would leave the scope at once, be unlinked, and be created again.
        """
        if "labels" not in self.specs and "labels" in values:
            values = {name: value for name, value in values.items() if name != "labels"}  # not held: scope label only
        values = self._keep_in_scope(values, create=create)
        fields: dict[str, Any] = {}
        problems: list[MappingProblem] = []
        if create and "labels" in values and "labels" not in self.specs:
            fields["labels"] = tuple(values["labels"])  # the scope label, even where labels are not mirrored
        for name, value in values.items():
            spec = self.specs.get(name)
            if spec is None:
                continue
            lossy: list[str] = []
            refused: list[tuple[str, str]] = []
            try:
                fields[name] = self._encode(name, spec, value, lossy, refused)
            except _UnmappableError as unmappable:
                problems.append(MappingProblem(self.endpoint, name, str(value), str(unmappable)))
            problems += [MappingProblem(self.endpoint, name, str(value)[:80], f"kept as text: {w}") for w in lossy]
            problems += [MappingProblem(self.endpoint, name, shown[:80], message) for shown, message in refused]
        return _labels_together(fields), problems

    def _keep_in_scope(self, values: Mapping[str, Value], *, create: bool) -> Mapping[str, Value]:
        scope = list(self.scope.labels)
        if not scope or not (create or "labels" in values):
            return values
        labels = list(values.get("labels") or [])
        if set(labels) & set(scope):
            return values
        return {**values, "labels": sorted([*labels, scope[0]])}

    def _encode(  # noqa: PLR0911 - one return per field kind
        self, name: str, spec: FieldSpec, value: Value, lossy: list[str], refused: list[tuple[str, str]]
    ) -> Any:  # noqa: ANN401 - a connector field value
        place = spec.at.get(self.endpoint)
        if place is not None:
            table, where = spec.map.get(self.endpoint), f"fields.{name}.map.{self.endpoint}"
            try:
                raw = placing.from_canonical(
                    field_type(name, spec), value, table, spec.write.get(self.endpoint, {}), where
                )
            except placing.UnmappableError as unmappable:
                raise _UnmappableError(str(unmappable)) from unmappable
            if place.labels is not None:
                return LabelPart(() if raw is None else (str(raw),), among=frozenset(place.labels))
            return Placed(raw, custom=place.custom, field=place.field)
        if name == "status" and self.endpoint in spec.map:
            chosen = spec.write.get(self.endpoint, {}).get(value)
            if chosen is None:
                chosen = next((raw for raw, canonical in spec.map[self.endpoint].items() if canonical == value), None)
            if chosen is None:
                raise _UnmappableError(
                    f"canonical {value!r} maps to no status here: add it to fields.status.map.{self.endpoint}"
                )
            return chosen
        if name == "title":
            return self._title(value, refused)
        if name == "labels":
            reverse = self._raw_labels
            labels = self._labels(sorted(reverse.get(label, label) for label in value or ()), refused)
            reserved = self.reserved_labels
            return LabelPart(labels, besides=reserved) if reserved else labels
        if name == "assignees":
            people = list(value or ())
            if len(people) > 1 and self.capabilities.single_assignee:
                lossy.append(f"{self.tool} holds one assignee: {people[0]} kept, {', '.join(people[1:])} not written")
                people = people[:1]
            return tuple(Person(email) for email in people)
        if name == "description":
            return TEXT_FORMATS[self.capabilities.text][1](value or "", lossy)
        if name == "due":
            return self._due(value, spec, refused)
        return value

    @property
    def limits(self) -> ToolLimits:
        """What this member's tool refuses."""
        return self.capabilities.limits

    def _title(self, value: Value, refused: list[tuple[str, str]]) -> Value:
        """The title as the tool takes it: one line, not blank, not too long (each change reported)."""
        limits = self.limits
        if value is not None and not isinstance(value, str):
            return value
        title = shown = value or ""
        if limits.title_one_line and _LINE_BREAKS.search(title):
            title = _LINE_BREAKS.sub(" ", title).strip()
            refused.append((shown, f"{self.tool} titles are one line: line breaks written as spaces"))
        if limits.title_required and not title.strip():
            refused.append((shown, f"{self.tool} requires a title and this one is blank: {UNTITLED!r} written"))
            return UNTITLED
        if limits.title_max is not None and utf16_len(title) > limits.title_max:
            refused.append(
                (
                    shown,
                    f"{self.tool} holds at most {limits.title_max} characters in a title and this one has "
                    f"{utf16_len(title)}: written shortened, ending in {ELLIPSIS!r}",
                )
            )
            title = shorten(title, limits.title_max)
        return None if value is None else title

    def _labels(self, labels: list[str], refused: list[tuple[str, str]]) -> tuple[str, ...]:
        """The labels the tool can hold; each one it cannot is left out (never rewritten) and reported."""
        limits, kept, reserved = self.limits, [], self.reserved_labels
        for label in labels:
            if label in reserved:
                refused.append(
                    (
                        label,
                        f"{label!r} carries the priority at {self.endpoint}, so it is not written there as a label "
                        f"(to mirror it, map it to another label in fields.labels.map.{self.endpoint})",
                    )
                )
            elif not limits.label_spaces and (not label or any(char.isspace() for char in label)):
                refused.append(
                    (
                        label,
                        f"{self.tool} labels cannot be empty or contain spaces: {label!r} is not written here "
                        f"(to mirror it, map it to a label without spaces in fields.labels.map.{self.endpoint})",
                    )
                )
            elif limits.label_max is not None and utf16_len(label) > limits.label_max:
                refused.append(
                    (
                        label,
                        f"{self.tool} labels hold at most {limits.label_max} characters: {label[:40]!r}... is not "
                        f"written here (map it to a shorter one in fields.labels.map.{self.endpoint})",
                    )
                )
            else:
                kept.append(label)
        return tuple(kept)

    def _due(self, value: Value, spec: FieldSpec, refused: list[tuple[str, str]]) -> date | datetime | None:
        """The due date as the tool takes it, or None (reported) when it falls outside what the tool holds."""
        try:
            due = _due_from_canonical(value, spec)
            day = due.astimezone(UTC).date() if isinstance(due, datetime) else due
        except OverflowError:  # its day in the member's zone, or in UTC, is before year 1 or after 9999
            refused.append((str(value), f"{value} has no day {self.tool} can hold: the due date is left empty here"))
            return None
        except ValueError as error:
            raise _UnmappableError(f"{value!r} is not a date: {error}") from error
        bounds = self.limits.due_range
        if day is not None and bounds is not None and not bounds[0] <= day <= bounds[1]:
            refused.append(
                (
                    str(value),
                    f"{self.tool} holds due dates from {bounds[0].isoformat()} to {bounds[1].isoformat()}: "
                    f"{value} is not written here, the due date is left empty",
                )
            )
            return None
        return due


def _labels_together(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with a field kept as labels (a :class:`LabelPart` under its own name) written in ``labels``.

    Written alone, each part leaves the other labels alone; the ordinary labels (all but the reserved ones) and the
    reserved part written together are the item's whole labels.
    """
    carried = [name for name, value in fields.items() if name != "labels" and isinstance(value, LabelPart)]
    for name in carried:
        part: LabelPart = fields.pop(name)
        ordinary = fields.get("labels")
        if ordinary is None:
            fields["labels"] = part
        elif isinstance(ordinary, LabelPart):
            fields["labels"] = tuple(sorted({*ordinary.held, *part.held}))
        else:
            fields["labels"] = part.applied(ordinary)
    return fields


class _UnmappableError(ValueError):
    """Raised inside a codec for one value; surfaces as a MappingProblem."""


def utf16_len(text: str) -> int:
    """The length Java and JavaScript give ``text`` (UTF-16 code units: a character beyond U+FFFF counts two)."""
    if text.isascii():
        return len(text)
    # A lone surrogate (JSON can carry one) is one unit, as in UTF-16: passed through, never refused.
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _regional(char: str) -> bool:
    return "\U0001f1e6" <= char <= "\U0001f1ff"


def _joined(text: str, cut: int) -> bool:
    """Whether ``text[cut]`` belongs to the character before it (an accent, a variation selector, an emoji part)."""
    before, after = text[cut - 1], text[cut]
    if "\u200d" in (before, after) or unicodedata.category(after) in {"Mn", "Mc", "Me"}:
        return True  # a zero-width joiner's sequence, or a combining mark
    if "\ufe00" <= after <= "\ufe0f" or "\U000e0000" <= after <= "\U000e01ef" or "\U0001f3fb" <= after <= "\U0001f3ff":
        return True  # a variation selector, a tag character, a skin-tone modifier
    if _regional(before) and _regional(after):
        run = 0
        while run < cut and _regional(text[cut - 1 - run]):
            run += 1
        return run % 2 == 1  # a flag is a pair of regional indicators
    return False


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-16 code units, ending in an ellipsis, never inside a character."""
    room, used, cut = limit - utf16_len(ELLIPSIS), 0, 0
    for char in text:
        used += utf16_len(char)
        if used > room:
            break
        cut += 1
    while 0 < cut < len(text) and _joined(text, cut):
        cut -= 1
    return text[:cut].rstrip() + ELLIPSIS


def _due_to_canonical(raw: date | datetime | None, spec: FieldSpec) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, datetime):
        if spec.as_date:
            return raw.astimezone(ZoneInfo(spec.zone)).date().isoformat()
        return raw.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return raw.isoformat()


def _due_from_canonical(value: Value, spec: FieldSpec) -> date | datetime | None:
    if value is None:
        return None
    text = str(value)
    if "T" in text:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return moment.astimezone(ZoneInfo(spec.zone)).date() if spec.as_date else moment
    return date.fromisoformat(text)


@dataclass(frozen=True)
class Group:
    """A compiled group: the planner's policy and one codec per member."""

    name: str
    policy: GroupPolicy
    codecs: Mapping[str, Codec]
    comments: bool = True
    source: Path | None = field(default=None, compare=False)


def _rule(spec: FieldSpec) -> Rule:
    if isinstance(spec.rule, RuleSpec):
        if spec.rule.owner is not None:
            return Rule("owner", owner=spec.rule.owner)
        return Rule("prefer", order=tuple(spec.rule.prefer or ()))
    return Rule(spec.rule)


def _no_department(path: Path, missing: list[str]) -> tuple[int | None, str]:
    """Where and what to say of members that have no department file."""
    return (
        line_of(path, ("members", missing[0])),
        f"members {missing} have no file in config/departments/: add one or fix the name",
    )


def compile_group(path: Path | str, tools: Mapping[str, str], capabilities: Mapping[str, Capabilities]) -> Group:
    """Load and compile a group file; ``tools`` maps each department to its tool kind (from the configuration).

    ``capabilities`` gives each tool kind's facts (from the composition root: ``connectors.factory.CAPABILITIES``).
    """
    path = Path(path)
    try:
        spec = load_yaml_model(path, GroupFile)
    except FileError as invalid:
        # A member with no department file explains most of what else is wrong (fields that do not say where it
        # keeps them): named first, with the rest.
        data = load_yaml_data(path)
        members = data.get("members") if isinstance(data, dict) else None
        unknown = sorted(set(members) - set(tools)) if isinstance(members, dict) else []
        if not unknown:
            raise
        raise FileError(path, *_no_department(path, unknown), invalid.problems) from invalid
    missing = sorted(set(spec.members) - set(tools))
    if missing:
        raise FileError(path, *_no_department(path, missing))
    _check_own_fields(path, spec, tools, capabilities)
    holders = {name: spec.holders(name) for name in spec.fields}
    policy = GroupPolicy(
        group=spec.group or path.stem,
        members=tuple(spec.members),
        fields={
            name: FieldPolicy(
                _rule(field_spec),
                frozenset(field_spec.sources) if field_spec.sources else None,
                frozenset(holders[name]) if len(holders[name]) < len(spec.members) else None,
            )
            for name, field_spec in spec.fields.items()
        },
        create_in=frozenset(spec.create_in),
        on_delete=spec.on_delete,
        member_on_delete={member: s.on_delete for member, s in spec.members.items() if s.on_delete is not None},
        scope_labels={member: s.scope.labels[0] for member, s in spec.members.items() if s.scope.labels},
    )
    # A member's codec knows only the fields it holds: it never decodes the others (its view has no value for
    # them) and never encodes them, so the planner can neither read nor write them there.
    codecs = {
        member: Codec(
            member,
            tools[member],
            {name: field_spec for name, field_spec in spec.fields.items() if member in holders[name]},
            settings.scope,
            capabilities[tools[member]],
        )
        for member, settings in spec.members.items()
    }
    return Group(policy.group, policy, codecs, spec.comments, path)


def _check_own_fields(
    path: Path, spec: GroupFile, tools: Mapping[str, str], capabilities: Mapping[str, Capabilities]
) -> None:
    """A field kept in a tool's own field (``{field: priority}``) only where the tool has one, or it reads nothing."""
    for name, field_spec in spec.fields.items():
        for member, place in field_spec.at.items():
            tool = capabilities[tools[member]]
            if place.field is not None and place.field not in tool.own_fields:
                raise FileError(
                    path,
                    line_of(path, ("fields", name, "at", member)),
                    f"{tool.name} has no {place.field} field of its own, so {member} cannot keep fields.{name} in "
                    f"{{field: {place.field}}}: keep it in a custom field ({{custom: <name>}}) or in labels "
                    "({labels: [<label>, ...]}, one per option)",
                )


def compile_groups(
    mappings_dir: Path, tools: Mapping[str, str], capabilities: Mapping[str, Capabilities]
) -> list[Group]:
    """Every group of a mappings directory, validated one by one and then as a whole; ConfigError lists all problems.

    As a whole: the directory exists (a mistyped ``--mappings`` is not "0 groups"), group names are unique (the
    daemon keys groups by name, so one would vanish), and no two groups hold the same items (each would mirror them).
    """
    if not mappings_dir.is_dir():
        raise ConfigError([FileError(mappings_dir, None, "no such mappings directory: check --mappings")])
    problems: list[FileError] = []
    groups: list[Group] = []
    for path in sorted(mappings_dir.glob("*.yaml")):
        try:
            group = compile_group(path, tools, capabilities)
        except FileError as error:
            problems.append(error)
            continue
        problem = _clash(group, groups)
        if problem is not None:
            problems.append(problem)
            continue
        groups.append(group)
    if problems:
        raise ConfigError(problems)
    return groups


def _clash(group: Group, earlier: list[Group]) -> FileError | None:
    """Why ``group`` cannot run beside the groups loaded before it (same name, or items in both), or None."""
    path = group.source or Path(group.name)
    for other in earlier:
        if other.name == group.name:
            return FileError(
                path,
                line_of(path, ("group",)) or 1,
                f"group {group.name!r} is also defined in {other.source}: give each group its own name",
            )
        shared = [member for member in group.codecs if member in other.codecs]
        overlapping = [m for m in shared if _scopes_overlap(group.codecs[m].scope, other.codecs[m].scope)]
        if len(shared) >= 2 and overlapping:
            return FileError(
                path,
                line_of(path, ("members", overlapping[0])),
                f"group {group.name!r} and group {other.name!r} ({other.source}) both sync {shared} and an item of "
                f"{overlapping[0]} can be in both: each would mirror it (duplicates); give them disjoint scopes "
                "(labels or statuses) or merge the files",
            )
    return None


def _scopes_overlap(one: Scope, two: Scope) -> bool:
    """Whether an item can be in both scopes: an empty list admits everything; labels or statuses in common do."""
    labels = not one.labels or not two.labels or bool(set(one.labels) & set(two.labels))
    statuses = not one.statuses or not two.statuses or bool(set(one.statuses) & set(two.statuses))
    return labels and statuses
