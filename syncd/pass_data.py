"""What a pass carries from stage to stage: the items it found (:class:`Touched`), what it did (:class:`PassReport`).

The read stage (:mod:`syncd.reading`) fills a :class:`Touched` per item; the plan stage (:mod:`syncd.decide`)
turns it into a :class:`~syncd.plan.Plan`; the apply stage (:mod:`syncd.executor`) writes and commits it, noting
what the tools refused or fitted on it; every stage adds to the pass's :class:`PassReport`, which ``syncd once``,
``syncd plan``, the daemon's metrics and the tests read.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from syncd.errors import ConnectorError
from syncd.mapping import MappingProblem
from syncd.model import Record
from syncd.plan import Plan, Refusal, View


@dataclass(frozen=True)
class Hold:
    """What the mass-change guard would do at one endpoint in a dry run: hold these items' destructive steps."""

    endpoint: str
    guard: str | None
    """The pending guard that holds them (None: the pass would open a new one)."""
    why: str
    items: Mapping[str, str]
    """Item -> what would be held there (``archive``, ``unlink``, ``recreate``)."""


@dataclass
class PassReport:
    """What one pass did: plans, remote writes made, values that could not be mapped, items that failed."""

    group: str
    plans: list[Plan] = field(default_factory=list)
    writes: int = 0
    problems: list[MappingProblem] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    quarantined: list[str] = field(default_factory=list)
    """Items that reached the strike limit in this pass and are now held out."""
    recovered: int = 0
    """Journal entries a crash had left, resolved before this pass."""
    lags: list[float] = field(default_factory=list)
    """Per mirror written: seconds from the change in its tool to the mirror's commit (the propagation lag)."""
    down: dict[str, str] = field(default_factory=dict)
    """Members whose tool could not be read this pass (-> the error): left out, the others synced between them."""
    fatal: set[str] = field(default_factory=set)
    """Those of ``down`` whose tool refused syncd (credentials, permissions, configuration): a person must act."""
    waiting: set[str] = field(default_factory=set)
    """Items synced among the members that answered, waiting for one that did not (also in ``failures``)."""
    orphans: list[str] = field(default_factory=list)
    """Records syncd made that no item links (a create whose answer was lost, not adopted yet): left alone."""
    folded: int = 0
    """Refs of webhook hints that arrived during the pass and were folded into it (see ``Pass.run``'s follow)."""
    defaulted: dict[str, set[str]] = field(default_factory=dict)
    """Member -> refs of mirrors this pass created whose tool filled a field the item holds empty (Jira's default
    priority): read again at the end of the pass, so the value reaches the other members in the same pass."""
    refused: list[tuple[str, str, Refusal]] = field(default_factory=list)
    """(item, member, refusal) for each value a tool refused in this pass's writes: left out there only."""
    held: set[str] = field(default_factory=set)
    """Items a pending mass-change guard holds (not applied, planned again next pass): see :mod:`syncd.guarding`."""
    guards: list[str] = field(default_factory=list)
    """The pending guards holding items after this pass (opened, grown or still waiting)."""
    emptied: dict[str, str] = field(default_factory=dict)
    """Members whose full listing missed most linked items (-> what it listed): their deletions are held."""
    holds: list[Hold] = field(default_factory=list)
    """A dry run's guards (``syncd plan``): the pending ones that would hold items, and those a pass would open."""

    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def wrote(self, count: int = 1) -> None:
        """Count remote writes (an item's writes to different tools, and items, are applied at once)."""
        with self._lock:
            self.writes += count

    def defaulted_at(self, member: str, ref: str) -> None:
        """Note a new mirror whose tool filled a field the item holds empty (from the apply pool's threads)."""
        with self._lock:
            self.defaulted.setdefault(member, set()).add(ref)

    def take_defaulted(self) -> dict[str, list[str]]:
        """The mirrors noted by :meth:`defaulted_at` since the last call, as hints (member -> refs)."""
        with self._lock:
            taken = {member: sorted(refs) for member, refs in self.defaulted.items() if refs}
            self.defaulted.clear()
        return taken

    @property
    def ok(self) -> bool:
        """Whether every item synced, every member was read and no mass change waits for a person.

        Values a tool refused or could not map are reported, not failures.
        """
        return not self.failures and not self.down and not self.held


@dataclass
class Touched:
    """One item as the pass found it: decoded views, the records behind them, and where it is gone or out of scope."""

    views: dict[str, View] = field(default_factory=dict)
    seen: dict[str, Record] = field(default_factory=dict)
    deleted: dict[str, str] = field(default_factory=dict)
    out_of_scope: dict[str, str] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)
    """Members whose record changed since syncd last saw it there (where new comments may be)."""
    synced: dict[str, datetime] = field(default_factory=dict)
    """Member -> the tool's time of the record the base was last agreed from (Link.synced_at), where known."""
    unavailable: dict[str, str | None] = field(default_factory=dict)
    """Members whose tool cannot be read this pass -> the item's ref there (None: not linked there)."""
    down: Mapping[str, ConnectorError] = field(default_factory=dict)
    """What each unavailable member's tool said."""
    refusals: dict[str, dict[str, Refusal]] = field(default_factory=dict)
    """Member -> field -> a value its tool refused earlier for this item's mirror (as stored)."""
    attribute: frozenset[str] = frozenset()
    """Members whose history the apply stage reads while it writes, to name who made the changes written."""


@dataclass
class Applied:
    """What applying one item's plan found out: the apply stage's own notes, for the item's commit and comments.

    Kept apart from :class:`Touched`, which the read and plan stages made and which applying only reads.
    """

    refused: dict[str, dict[str, Refusal]] = field(default_factory=dict)
    """Member -> field -> a value its tool refused in this pass's writes (stored and audited by the commit)."""
    fitted: dict[str, list[MappingProblem]] = field(default_factory=dict)
    """Member -> values written in a form its tool takes (a title shortened): audited by the commit."""
    rescan: set[str] = field(default_factory=set)
    """Members syncd wrote whose read-back may hold comments not read yet (posted during the write)."""
    deferred: dict[str, str] = field(default_factory=dict)
    """Member -> the version to store once its new comments are copied (see Executor._commit)."""
    edited: dict[str, frozenset[str]] = field(default_factory=dict)
    """Member -> the fields a person changed on the mirror a failed create made there, by its history (the commit
    does not take those for syncd's own)."""

    def refusals_at(self, item: Touched, member: str) -> dict[str, Refusal]:
        """The refusals that hold for a member's mirror: the stored ones, with this pass's in their place."""
        return {**item.refusals.get(member, {}), **self.refused.get(member, {})}


def endpoint_key(group: str, member: str) -> str:
    """The store's name of one member's place in one group."""
    return f"{group}/{member}"
