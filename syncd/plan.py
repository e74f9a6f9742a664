"""What the planner decides, as plain frozen data: the executor runs it, tests read it, the audit log records it.

A :class:`Plan` holds, for one item of one group, the steps to apply (:class:`Write`, :class:`Create`,
:class:`Archive`, :class:`Delete`, :class:`Unlink`, :class:`Restore`), the :class:`Conflict` decisions with the
value that lost, the new base (the canonical values every endpoint agrees on once the plan is applied) and a short
reason per step, so that `syncd plan` can show what would happen and why without a line of I/O.

Canonical values are JSON-like: ``str``, ``bool``, ``None``, ``list`` (a set field is a sorted list), and dates as
ISO strings. Comparisons are always between canonical values, never raw tool values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, TypeAlias

Value: TypeAlias = Any
"""A canonical field value (JSON-like)."""

StepKind: TypeAlias = Literal["create", "write", "archive", "delete", "unlink", "restore"]
"""A step's kind: the journal's and the audit log's name for it."""


@dataclass(frozen=True)
class View:
    """One endpoint's current state of an item, decoded to canonical values by the group's mapping."""

    endpoint: str
    ref: str
    values: Mapping[str, Value]
    modified: datetime
    field_times: Mapping[str, datetime] = field(default_factory=dict)
    """When each field last changed there, where the tool says (else the item's modification time counts)."""
    person: str | None = None
    """The item's first assignee there (e-mail), as the mapping decodes it: not who changed anything, so the audit
    log no longer names it (a write's people come from the tools' history: :attr:`Plan.people`)."""
    archived: bool = False
    returned: frozenset[str] = frozenset()
    """Fields a person changed there since the base was agreed and that ended back at the base's value (moved
    away and back): a change made there all the same, weighed against changes elsewhere by the field's rule."""


@dataclass(frozen=True)
class Refusal:
    """A value one tool refused for an item's mirror: left out there, the rest of the item written and kept in step.

    While the item's base still holds ``value`` and the mirror still holds ``held``, the mirror is as much in step
    as that tool allows: not a change made there, and nothing to write again. A new value is written (and may be
    refused again); a person's change there is a change.
    """

    field: str
    value: Value
    """The canonical value the tool refused."""
    held: Value
    """What the mirror holds of the field instead (its old value, or what a create left there)."""
    message: str
    """The tool's words (or the mapping's, for a value it knows the tool cannot hold): never a credential."""
    at: datetime


@dataclass(frozen=True)
class Write:
    """Set these fields at an endpoint (only fields whose canonical value differs there)."""

    kind: ClassVar[StepKind] = "write"
    endpoint: str
    ref: str
    values: Mapping[str, Value]
    reason: str


@dataclass(frozen=True)
class Create:
    """Mirror the item into an endpoint that has no link yet; the executor stamps the sync_id marker."""

    kind: ClassVar[StepKind] = "create"
    endpoint: str
    values: Mapping[str, Value]
    reason: str


@dataclass(frozen=True)
class Archive:
    """Take the item out of active work at an endpoint (the tool's reversible way)."""

    kind: ClassVar[StepKind] = "archive"
    endpoint: str
    ref: str
    reason: str


@dataclass(frozen=True)
class Delete:
    """Delete the mirror at an endpoint for good (``on_delete: delete`` of the member where the item was deleted).

    ``values`` are the mirror's last canonical values, as read: journaled and audited with the delete, so a
    person can make the item again from them (nothing else keeps them once the record is gone).
    """

    kind: ClassVar[StepKind] = "delete"
    endpoint: str
    ref: str
    values: Mapping[str, Value]
    reason: str


@dataclass(frozen=True)
class Unlink:
    """Stop mirroring the item at an endpoint, leaving it as it is (it left that endpoint's scope)."""

    kind: ClassVar[StepKind] = "unlink"
    endpoint: str
    ref: str
    reason: str
    decided_by: str | None = None
    """The person who chose it (rejecting a held recreate: :func:`syncd.guard.rejected`); None when syncd did."""


@dataclass(frozen=True)
class Restore:
    """Bring the item back into active work at an endpoint where it was archived, holding ``values`` there.

    Only a person's rejection of a held mass archive makes one (:func:`syncd.guard.rejected`): the archive was a
    mistake, so the source is undone instead of the mirrors following it. ``values`` are the agreed values the
    archived record does not show (an Asana task out of its project has no section), and any it holds otherwise.
    """

    kind: ClassVar[StepKind] = "restore"
    endpoint: str
    ref: str
    values: Mapping[str, Value]
    reason: str
    decided_by: str | None = None


@dataclass(frozen=True)
class Conflict:
    """A field changed at several endpoints to different values, and how its rule decided."""

    field: str
    rule: str
    values: Mapping[str, Value]
    """Endpoint -> the value it changed the field to."""
    winner: str | None
    """The endpoint whose value won; None when nothing won (``manual``) or the value was merged."""
    result: Value
    held: bool = False
    """True for ``manual``: nothing was written; the conflict waits for a person."""


Step: TypeAlias = Write | Create | Archive | Delete | Unlink | Restore


@dataclass(frozen=True)
class Plan:
    """Everything one pass decided for one item."""

    sync_id: str
    group: str
    steps: tuple[Step, ...]
    conflicts: tuple[Conflict, ...]
    base: Mapping[str, Value]
    origins: Mapping[str, str] = field(default_factory=dict)
    """Field -> the endpoint whose change the new base value came from (for audit attribution)."""
    waiting: tuple[str, ...] = ()
    """Members that could not be read this pass and still lack the item or part of it: they catch up later."""
    people: Mapping[str, str] = field(default_factory=dict)
    """Field -> who made the change the new base value carries (e-mail), from its origin's history: the audit
    log's per-field attribution. Filled by the plan stage (:mod:`syncd.decide`); a field nobody can be named for
    (the tool could not answer, the person has no e-mail) is absent."""

    @property
    def writes(self) -> tuple[Step, ...]:
        """The steps that change something remotely."""
        return tuple(step for step in self.steps if not isinstance(step, Unlink))

    @property
    def quiet(self) -> bool:
        """Whether the plan changes nothing anywhere (what a pass without outside edits must produce)."""
        return not self.steps and not self.conflicts
