"""Sync-group mappings (``mappings/<group>.yaml``) compiled into per-endpoint codecs: record <-> canonical values.

A group file names its members (departments), each member's scope, where new items are mirrored, and per
canonical field its conflict rule, which members may change it, and value maps. :func:`compile_group` turns it
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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from syncd import richtext
from syncd.merge import FieldPolicy, GroupPolicy, Rule
from syncd.model import FIELDS, Person, Record, Unreadable
from syncd.plan import Value, View
from syncd.yamlfile import FileError, Located, line_of, load_yaml_model

Tool = Literal["jira", "trello", "asana"]
SINGLE_ASSIGNEE = frozenset({"jira", "asana"})
"""Tools whose items have one assignee (Trello cards have many members)."""

Converter = Callable[[str, list[str] | None], str]
TEXT_FORMATS: dict[str, tuple[Converter, Converter]] = {
    # tool -> (tool text -> canonical Markdown, canonical Markdown -> tool text); both report what they cannot carry
    "jira": (richtext.wiki_to_markdown, richtext.markdown_to_wiki),
    "trello": (richtext.trello_to_markdown, richtext.markdown_to_trello),
    "asana": (richtext.asana_html_to_markdown, richtext.markdown_to_asana_html),
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


class FieldSpec(_Strict):
    """One canonical field of the group."""

    rule: Literal["latest", "union", "merge-text", "manual"] | RuleSpec = "latest"
    sources: list[str] | None = Field(None, alias="from", description="members whose changes count (default: all)")
    map: dict[str, dict[str, str]] = Field(default_factory=dict, description="member -> tool value -> canonical")
    write: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="member -> canonical -> tool value to write when several map to it"
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


class GroupFile(_Strict):
    """``mappings/<group>.yaml`` as written."""

    group: str | None = None
    members: dict[str, Member]
    create_in: list[str] = Field(default_factory=list)
    on_delete: Literal["archive", "unlink"] = "archive"
    fields: dict[str, FieldSpec]
    comments: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> GroupFile:
        unknown_fields = sorted(set(self.fields) - set(FIELDS))
        if unknown_fields:
            raise Located(
                ("fields", unknown_fields[0]), f"unknown fields {unknown_fields}: syncd mirrors {list(FIELDS)}"
            )
        members = set(self.members)
        # Each place a department is named, so the error points at the line that names a stranger.
        places: list[tuple[tuple[str, ...], set[str]]] = [(("create_in",), set(self.create_in))]
        for name, spec in self.fields.items():
            places += [
                ((("fields", name, "from")), set(spec.sources or [])),
                ((("fields", name, "map")), set(spec.map)),
                ((("fields", name, "write")), set(spec.write)),
            ]
            if isinstance(spec.rule, RuleSpec):
                ruled = {spec.rule.owner} if spec.rule.owner else set(spec.rule.prefer or [])
                places.append((("fields", name, "rule"), ruled))
        strangers = sorted(set().union(*(named for _, named in places)) - members)
        if strangers:
            where = next(loc for loc, named in places if named - members)
            raise Located(where, f"{strangers} are not members of the group: add them under 'members' or fix the name")
        return self


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
    tool: Tool
    specs: Mapping[str, FieldSpec]
    scope: Scope

    def text_in(self, text: str) -> str:
        """The tool's rich text (a comment) as canonical Markdown."""
        return TEXT_FORMATS[self.tool][0](text, None)

    def text_out(self, markdown: str) -> str:
        """Canonical Markdown as the tool's rich text."""
        return TEXT_FORMATS[self.tool][1](markdown, None)

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

    def _decode(self, name: str, spec: FieldSpec, raw: Any, lossy: list[str]) -> Value:  # noqa: ANN401 - a record's field value
        if name == "status" and self.endpoint in spec.map:
            table = spec.map[self.endpoint]
            if raw not in table:
                raise _UnmappableError(f"{raw!r} has no canonical value: add it to fields.status.map.{self.endpoint}")
            return table[raw]
        if name == "labels":
            table = spec.map.get(self.endpoint, {})
            return sorted({table.get(label, label) for label in raw or ()})
        if name == "assignees":
            people: tuple[Person, ...] = raw or ()
            unknown = [person.label() for person in people if not person.email]
            if unknown:
                raise _UnmappableError(f"no e-mail known for {', '.join(unknown)}: add them to the department's people")
            return sorted(person.email for person in people if person.email)
        if name == "description":
            return TEXT_FORMATS[self.tool][0](raw or "", lossy)
        if name == "due":
            return _due_to_canonical(raw, spec)
        return raw

    def align(self, view: View, base: Mapping[str, Value] | None) -> View:
        """Read a lossy field as unchanged when it holds all this tool can hold of the base value.

        Jira keeps the first of several assignees: its [ana] is the base's [ana, eli] as far as Jira can tell, so
        it must not count as a change (or Jira and Trello would undo each other's people forever).
        """
        if base is None or self.tool not in SINGLE_ASSIGNEE or "assignees" not in view.values:
            return view
        held, agreed = view.values["assignees"], base.get("assignees")
        if isinstance(agreed, list) and len(agreed) > 1 and held == agreed[:1]:
            return replace(view, values={**view.values, "assignees": agreed})
        return view

    def encode(
        self, values: Mapping[str, Value], *, create: bool = False
    ) -> tuple[dict[str, Any], list[MappingProblem]]:
        """Canonical values as this member's connector fields, and what could not be mapped.

        A member scoped by labels gets its scope label on every mirror syncd creates there, and keeps one when
        labels are written: otherwise the mirror would leave the scope at once, be unlinked, and be created again.
        """
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
            try:
                fields[name] = self._encode(name, spec, value, lossy)
            except _UnmappableError as unmappable:
                problems.append(MappingProblem(self.endpoint, name, str(value), str(unmappable)))
            problems += [MappingProblem(self.endpoint, name, str(value)[:80], f"kept as text: {w}") for w in lossy]
        return fields, problems

    def _keep_in_scope(self, values: Mapping[str, Value], *, create: bool) -> Mapping[str, Value]:
        scope = list(self.scope.labels)
        if not scope or not (create or "labels" in values):
            return values
        labels = list(values.get("labels") or [])
        if set(labels) & set(scope):
            return values
        return {**values, "labels": sorted([*labels, scope[0]])}

    def _encode(self, name: str, spec: FieldSpec, value: Value, lossy: list[str]) -> Any:  # noqa: ANN401 - a connector field value
        if name == "status" and self.endpoint in spec.map:
            chosen = spec.write.get(self.endpoint, {}).get(value)
            if chosen is None:
                chosen = next((raw for raw, canonical in spec.map[self.endpoint].items() if canonical == value), None)
            if chosen is None:
                raise _UnmappableError(
                    f"canonical {value!r} maps to no status here: add it to fields.status.map.{self.endpoint}"
                )
            return chosen
        if name == "labels":
            reverse = {canonical: raw for raw, canonical in spec.map.get(self.endpoint, {}).items()}
            return tuple(sorted(reverse.get(label, label) for label in value or ()))
        if name == "assignees":
            people = list(value or ())
            if len(people) > 1 and self.tool in SINGLE_ASSIGNEE:
                lossy.append(f"{self.tool} holds one assignee: {people[0]} kept, {', '.join(people[1:])} not written")
                people = people[:1]
            return tuple(Person(email) for email in people)
        if name == "description":
            return TEXT_FORMATS[self.tool][1](value or "", lossy)
        if name == "due":
            return _due_from_canonical(value, spec)
        return value


class _UnmappableError(ValueError):
    """Raised inside a codec for one value; surfaces as a MappingProblem."""


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


def compile_group(path: Path | str, tools: Mapping[str, Tool]) -> Group:
    """Load and compile a group file; ``tools`` maps each department to its tool (from the configuration)."""
    path = Path(path)
    spec = load_yaml_model(path, GroupFile)
    missing = sorted(set(spec.members) - set(tools))
    if missing:
        raise FileError(
            path,
            line_of(path, ("members", missing[0])),
            f"members {missing} have no file in config/departments/: add one or fix the name",
        )
    policy = GroupPolicy(
        group=spec.group or path.stem,
        members=tuple(spec.members),
        fields={
            name: FieldPolicy(_rule(field_spec), frozenset(field_spec.sources) if field_spec.sources else None)
            for name, field_spec in spec.fields.items()
        },
        create_in=frozenset(spec.create_in),
        on_delete=spec.on_delete,
        scope_labels={member: s.scope.labels[0] for member, s in spec.members.items() if s.scope.labels},
    )
    codecs = {
        member: Codec(member, tools[member], spec.fields, settings.scope) for member, settings in spec.members.items()
    }
    return Group(policy.group, policy, codecs, spec.comments, path)
