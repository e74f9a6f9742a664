"""The journal's steps as typed data: what a plan was about to do, and how far each write got.

The store keeps a journal entry as JSON (so an entry outlives the process that wrote it, and an upgrade); this
module is the one place that reads and writes that JSON. A :class:`JournalStep` is a planned step (its kind,
endpoint, ref, values, reason) plus what the executor noted while applying it (``started``, ``done``,
``uncertain``, ``committed``), which :mod:`syncd.recovery` reads to resolve an entry a crash left.

An entry written before a step was noted has only the planned fields: every progress field is optional, and a
step's kind is read whatever its case (older entries named it by the step's class, ``"Create"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from syncd.model import Record
from syncd.plan import Step, StepKind, Value
from syncd.redact import redact

KINDS: frozenset[str] = frozenset({"create", "write", "archive", "delete", "unlink", "restore"})


@dataclass(frozen=True)
class JournalStep:
    """One journaled step of a plan and its progress."""

    kind: StepKind
    endpoint: str
    reason: str
    ref: str | None = None
    """The record written (none for a create: it has no record before it is made)."""
    values: Mapping[str, Value] = field(default_factory=dict)
    """The canonical values the step writes (none for an archive or an unlink); a delete's are the mirror's last
    values, kept for its audit event (recovery writes nothing from them)."""
    seen_version: str | None = None
    """The version of the record the plan was made from, at this endpoint."""
    seen_at: datetime | None = None
    """The tool's time of that record: a change by someone else after it is theirs, not a half-done write."""
    started: bool = False
    """The request was about to be sent (it may or may not have reached the tool)."""
    started_at: datetime | None = None
    done: bool = False
    """The tool answered that the write was made (``done_version`` is what it answered)."""
    done_version: str | None = None
    uncertain: str | None = None
    """Why the pass that kept the entry could not tell whether the write was made (an outage, a lost answer)."""
    committed: bool = False
    """Applied, linked and audited by the pass that kept the entry for a later step: nothing left to recover."""
    origins: Mapping[str, str] = field(default_factory=dict)
    """Field -> the member whose change the step's value carries: whom recovery's audit event credits."""
    people: Mapping[str, str] = field(default_factory=dict)
    """Field -> who made that change, where the plan already knew (the rest recovery looks up in the history)."""
    origin_read: Mapping[str, datetime] = field(default_factory=dict)
    """Origin member -> the tool's time of the record the plan read there: a later change is not in the value."""

    @property
    def sets(self) -> Mapping[str, Value]:
        """The values the step puts into its record (a delete's values are what the record held, not what it gets)."""
        return self.values if self.kind in {"create", "write"} else {}

    @property
    def writes(self) -> bool:
        """Whether the step changes a record remotely (an unlink does not)."""
        return self.kind != "unlink"

    def sent_at(self, fallback: datetime) -> datetime:
        """When the write was sent (``fallback``, the plan's time, where the entry does not say)."""
        moment = self.started_at or fallback
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

    def cut_short(self) -> str:
        """What stopped the write: a crash, or (noted by the pass that kept the entry) an outage or lost answer."""
        return f"and left unfinished ({self.uncertain})" if self.uncertain else "before a crash"

    def to_json(self) -> dict[str, Any]:
        """The JSON the store keeps (progress fields only once they are set, as :func:`progress` notes them)."""
        data: dict[str, Any] = {"kind": self.kind, "endpoint": self.endpoint, "reason": self.reason}
        if self.ref is not None:
            data["ref"] = self.ref
        if self.kind in {"create", "write", "delete", "restore"}:
            data["values"] = dict(self.values)
        data["seen_version"] = self.seen_version
        data["seen_at"] = self.seen_at.isoformat() if self.seen_at is not None else None
        if self.origins:
            data["origins"] = dict(self.origins)
            data["people"] = dict(self.people)
            data["origin_read"] = {member: at.isoformat() for member, at in self.origin_read.items()}
        data |= _progress_json(self)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JournalStep:
        """A step as the store kept it (by this version of syncd, or an older one)."""
        kind = str(data["kind"]).lower()
        if kind not in KINDS:
            raise ValueError(f"a journal step of unknown kind {data['kind']!r}")
        return cls(
            kind=kind,  # type: ignore[arg-type] # checked against KINDS just above
            endpoint=str(data["endpoint"]),
            reason=str(data.get("reason") or ""),
            ref=data.get("ref"),
            values=dict(data.get("values") or {}),
            seen_version=data.get("seen_version"),
            seen_at=_moment(data.get("seen_at")),
            started=bool(data.get("started")),
            started_at=_moment(data.get("started_at")),
            done="done_version" in data,
            done_version=data.get("done_version"),
            uncertain=data.get("uncertain"),
            committed=bool(data.get("committed")),
            origins={str(k): str(v) for k, v in (data.get("origins") or {}).items()},
            people={str(k): str(v) for k, v in (data.get("people") or {}).items()},
            origin_read={
                str(k): moment for k, v in (data.get("origin_read") or {}).items() if (moment := _moment(v)) is not None
            },
        )


def planned(
    step: Step,
    seen: Record | None,
    *,
    origins: Mapping[str, str] | None = None,
    people: Mapping[str, str] | None = None,
    read: Mapping[str, Record] | None = None,
) -> JournalStep:
    """A plan's step as the journal keeps it, with the version and time of the record the plan read.

    A step that sets values also keeps whose changes they carry (``origins``, ``people`` known when planning, and
    the time of each origin's record ``read``), so that recovery's audit event names them as the pass's would.
    """
    values = dict(getattr(step, "values", {}))
    carried = {name: member for name, member in (origins or {}).items() if name in values and step.kind != "delete"}
    return JournalStep(
        kind=step.kind,
        endpoint=step.endpoint,
        reason=step.reason,
        ref=getattr(step, "ref", None),
        values=values,
        seen_version=seen.version if seen is not None else None,
        seen_at=seen.modified if seen is not None else None,
        origins=carried,
        people={name: person for name, person in (people or {}).items() if name in carried},
        origin_read={
            member: record.modified for member in set(carried.values()) if (record := (read or {}).get(member))
        },
    )


def started(at: datetime) -> dict[str, Any]:
    """The progress to note just before a write is sent."""
    return {"started": True, "started_at": at.isoformat()}


def done(version: str | None) -> dict[str, Any]:
    """The progress to note once the tool answered that the write was made."""
    return {"done_version": version}


def uncertain(reason: str) -> dict[str, Any]:
    """The progress to note when the pass cannot tell whether the write was made."""
    return {"uncertain": redact(reason)}  # a tool's text, stored: masked (issue 17)


def committed() -> dict[str, Any]:
    """The progress to note for a step the pass committed while it kept the entry for another step."""
    return {"committed": True}


def _progress_json(step: JournalStep) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if step.started:
        data |= {"started": True, "started_at": step.started_at.isoformat() if step.started_at else None}
    if step.done:
        data |= done(step.done_version)
    if step.uncertain is not None:
        data |= uncertain(step.uncertain)
    if step.committed:
        data |= committed()
    return data


def _moment(text: Any) -> datetime | None:  # noqa: ANN401 - a JSON value
    return datetime.fromisoformat(text) if isinstance(text, str) and text else None
