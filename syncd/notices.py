"""Notifications of what waits for a person: the events, which targets want them, and the messages sent.

Four kinds of event (:data:`KINDS`): a conflict held for a person (``held_conflict``), an item quarantined after
failing too often (``quarantined``), a mass change held by the guard (``guard_hold``) and an endpoint whose tool
could not be read for longer than a target's threshold (``endpoint_failing``). Each department's
``notify:`` list names its targets (Apprise URLs) and the kinds each wants (:class:`Route`).

An event is written into the store's outbox (:mod:`syncd.store.notifications`) by the same transaction that records
it (the held conflict, the strike, the guard, the endpoint's state), one row per target that wants it, under a
key that makes recording the same event again add nothing. So a crash neither loses an event (it committed with
its cause) nor repeats one (its row exists once); the daemon's notifier (:mod:`syncd.daemon.notifier`) delivers
the rows after commit and marks them sent. Rendering a message (:func:`message`) is pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from syncd.store import Tx

Kind = Literal["held_conflict", "quarantined", "guard_hold", "endpoint_failing"]
KINDS: tuple[Kind, ...] = ("held_conflict", "quarantined", "guard_hold", "endpoint_failing")
WHAT_WAITS: dict[str, str] = {
    "held_conflict": "a conflict waits for a decision",
    "quarantined": "an item is quarantined",
    "guard_hold": "a mass change is held",
    "endpoint_failing": "a tool keeps failing",
}
"""A message's title per kind (one event; a digest counts them)."""
NO_LINK = "(no link: syncd's public_url is not set)"
LONGEST_VALUE = 80
"""Characters of a field value quoted in a message; a long description is cut, the page shows it whole."""


@dataclass(frozen=True)
class Route:
    """One notification target of a department: where (``target`` names its URL) and which events it wants."""

    target: str
    """``department/name``: the outbox key of the target; its URL (a secret) is read only to deliver."""
    department: str
    kinds: frozenset[str]
    failing_after_s: float
    """An endpoint failing for longer than this is notified (``endpoint_failing``)."""


@dataclass(frozen=True)
class Event:
    """Something that waits for a person, as recorded: sent at most once per target under its ``key``."""

    kind: Kind
    key: str
    """Names the event itself (``held_conflict:<conflict id>``): recorded again, it adds nothing."""
    departments: tuple[str, ...]
    text: str
    """One line: the item, the department, what waits."""
    group: str | None = None
    sync_id: str | None = None
    links: tuple[tuple[str, str], ...] = ()
    """(label, path under ``public_url``) of the pages where a person decides."""


class Outbox:
    """Writes the events a pass records into the outbox, for the targets that want them (no targets: nothing)."""

    def __init__(self, routes: Mapping[str, Sequence[Route]] | None = None) -> None:
        self.routes = dict(routes or {})

    def record(self, tx: Tx, event: Event) -> int:
        """Queue ``event`` for every target of its departments that wants its kind; the rows added."""
        from syncd.store import notifications  # noqa: PLC0415 - the store imports this module's types

        added = 0
        for department in dict.fromkeys(event.departments):
            for route in self.routes.get(department, ()):
                if event.kind in route.kinds:
                    added += notifications.add(tx, route, event)
        return added

    def failing(self, tx: Tx, *, group: str, department: str, since: datetime, error: str) -> int:
        """Queue ``endpoint_failing`` for each target whose threshold the endpoint's outage has passed.

        Measured on this host's clock, as ``since`` was (:meth:`syncd.store.Tx.endpoint_failing`); called by every
        pass that finds the endpoint down, so the threshold is noticed at the first pass after it.
        """
        from syncd.store import notifications  # noqa: PLC0415 - see record

        endpoint = f"{group}/{department}"
        event = Event(
            "endpoint_failing",
            f"endpoint_failing:{endpoint}:{since.isoformat()}",
            (department,),
            f"{department}'s tool cannot be read in group {group} since {since:%Y-%m-%d %H:%M:%S} UTC: {error}",
            group=group,
        )
        failing_s = (datetime.now(UTC) - since).total_seconds()
        added = 0
        for route in self.routes.get(department, ()):
            if "endpoint_failing" in route.kinds and failing_s >= route.failing_after_s:
                added += notifications.add(tx, route, event)
        return added


def _title(value: Any) -> str:  # noqa: ANN401 - a canonical value
    text = value if isinstance(value, str) else "(untitled)"
    return _short(text)


def _short(value: Any) -> str:  # noqa: ANN401 - a canonical value
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= LONGEST_VALUE else text[: LONGEST_VALUE - 1] + "…"


def held_conflict(
    conflict_id: str,
    *,
    group: str,
    sync_id: str,
    field: str,
    values: Mapping[str, Any],
    title: Any,  # noqa: ANN401 - a canonical value
) -> Event:
    """A conflict the ``manual`` rule holds: told to each department whose value differs."""
    differing = "; ".join(f"{member}: {_short(value)}" for member, value in sorted(values.items()))
    return Event(
        "held_conflict",
        f"held_conflict:{conflict_id}",
        tuple(sorted(values)),
        f"'{_title(title)}' (group {group}, item {sync_id}): field {field} differs ({differing}); "
        f"a person chooses which value it takes",
        group=group,
        sync_id=sync_id,
        links=(("decide", f"/ui/conflicts/{conflict_id}"), ("item", f"/ui/items/{sync_id}")),
    )


def quarantined(
    *,
    group: str,
    sync_id: str,
    members: Sequence[str],
    strikes: int,
    error: str,
    since: datetime,
    title: Any,  # noqa: ANN401 - a canonical value
) -> Event:
    """An item held out of passes: told to every department of its group (it is missing from their syncs)."""
    return Event(
        "quarantined",
        f"quarantined:{sync_id}:{since.isoformat()}",
        tuple(members),
        f"'{_title(title)}' (group {group}, item {sync_id}) is quarantined after {strikes} failed passes: {error}; "
        f"retry it once the cause is fixed",
        group=group,
        sync_id=sync_id,
        links=(("item", f"/ui/items/{sync_id}"),),
    )


def guard_hold(guard_id: str, *, group: str, endpoint: str, sources: Sequence[str], items: int, reason: str) -> Event:
    """A mass change held for a person: told to the department it would change and those it comes from."""
    return Event(
        "guard_hold",
        f"guard_hold:{guard_id}",
        (endpoint, *sorted(sources)),
        f"{items} items of group {group} held before they change at {endpoint}: {reason}; confirm or reject it",
        group=group,
        links=(("decide", f"/ui/guards/{guard_id}"),),
    )


@dataclass(frozen=True)
class Queued:
    """An outbox row waiting to be delivered to one target."""

    id: str
    target: str
    department: str
    kind: str
    text: str
    links: list[list[str]]
    created_at: datetime
    attempts: int


def message(department: str, rows: Sequence[Queued], public_url: str | None) -> tuple[str, str]:
    """The title and body of one message to a target: one event, or a digest listing each with its links."""
    if len(rows) == 1:
        title = f"syncd, {department}: {WHAT_WAITS.get(rows[0].kind, rows[0].kind)}"
    else:
        title = f"syncd, {department}: {len(rows)} things wait for a person"
    lines: list[str] = []
    for row in rows:
        lines.append(f"- {row.text}" if len(rows) > 1 else row.text)
        indent = "  " if len(rows) > 1 else ""
        if row.links and public_url is None:
            lines.append(f"{indent}{NO_LINK}")
        elif public_url is not None:
            lines += [f"{indent}{label}: {public_url.rstrip('/')}{path}" for label, path in row.links]
    return title, "\n".join(lines)
