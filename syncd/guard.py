"""The mass-change guard's rules, pure: which steps are destructive, when they trip, what a rejection leaves.

A step is **destructive** toward the endpoint it acts on when it takes a mirror out of work or out of the item:

- an :class:`~syncd.plan.Archive` (archived or deleted at a source member; Jira's connector performs it by moving
  the issue to its done status, Asana's by taking the task out of the project, Trello's by closing the card);
- a :class:`~syncd.plan.Delete` (a deletion at a member whose ``on_delete`` is ``delete``: the mirror is deleted);
- an :class:`~syncd.plan.Unlink` (a deletion under ``on_delete: unlink``, or the mirror left the endpoint's scope);
- a **recreate**: a :class:`~syncd.plan.Create` at an endpoint where the item was deleted (modified elsewhere).

A :class:`~syncd.plan.Write` never is: archiving is always an Archive step, never a status write.

Per pass, the new destructive steps are counted (one per item) per affected endpoint, with the items archived or
unlinked there in the last ``window_s`` seconds (from the audit log: a mass archive that arrives one webhook at a
time adds up), and per source (the member whose archives or deletions they come from, so a mass deletion whose
consequences split into archives here and recreates there is still one). A count **trips** when it exceeds both
``max_items`` and ``max_share`` of that member's linked items (:meth:`Threshold.trips`), so a small group is not
stopped by a few archives; a tripped endpoint holds all its new destructive steps, a tripped source all of its
own. Steps also trip whatever their number when their source's listing emptied (:class:`~syncd.errors.SideEmptied`:
an outage looks like a mass deletion). The engine (:mod:`syncd.engine`) holds what trips in a guard and applies the
rest; this module decides nothing about the store.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from syncd.merge import ARCHIVED, DELETED, mirror_values
from syncd.pass_data import Touched
from syncd.plan import Archive, Create, Delete, Plan, Step, Unlink

What = Literal["archive", "delete", "unlink", "recreate"]


@dataclass(frozen=True)
class Threshold:
    """One endpoint's mass-change threshold (config ``mass_change``)."""

    max_items: int = 10
    max_share: float = 0.2
    window_s: float = 600.0
    """Destructive steps applied toward the endpoint this long before the pass count with the pass's own."""

    def trips(self, count: int, linked: int) -> bool:
        """Whether ``count`` destructive steps toward an endpoint linking ``linked`` items are a mass change.

        More than ``max_items`` and more than ``max_share`` of the linked items: both, so one archive in a group of
        three is not a mass change, and 150 archives among 1,000 items (15 %) are not either.
        """
        return count > self.max_items and count > self.max_share * linked


@dataclass(frozen=True)
class Destructive:
    """One destructive step of one item's plan."""

    sync_id: str
    endpoint: str
    source: str
    what: What
    step: Step

    def detail(self, item: Touched, base: Mapping[str, Any] | None) -> dict[str, Any]:
        """What a guard keeps of it for ``syncd guard show``: the refs, the item's title, what and why."""
        ref = getattr(self.step, "ref", None) or item.deleted.get(self.endpoint, "")
        source_view = item.views.get(self.source)
        source_ref = source_view.ref if source_view is not None else item.deleted.get(self.source, "")
        titles = [view.values.get("title") for view in item.views.values()]
        title = (base or {}).get("title") or next((t for t in titles if t), None)
        return {
            "what": self.what,
            "ref": ref,
            "source": self.source,
            "source_ref": source_ref,
            "title": title,
            "reason": self.step.reason,
        }


def destructive(plan: Plan, item: Touched) -> list[Destructive]:
    """The plan's destructive steps, each with the member it comes from (see the module docstring)."""
    deleted = sorted(item.deleted)
    archived = sorted(member for member, view in item.views.items() if view.archived)
    found: list[Destructive] = []
    for step in plan.steps:
        if isinstance(step, Archive):
            # Deleted somewhere (the deletion is why), else archived somewhere.
            source = (deleted or archived or [step.endpoint])[0]
            found.append(Destructive(plan.sync_id, step.endpoint, source, "archive", step))
        elif isinstance(step, Delete):
            # Deleted at a member whose deletions delete (or the rest of such a deletion, finished later).
            found.append(Destructive(plan.sync_id, step.endpoint, (deleted or [step.endpoint])[0], "delete", step))
        elif isinstance(step, Unlink):
            source = step.endpoint if step.endpoint in item.out_of_scope else (deleted or [step.endpoint])[0]
            found.append(Destructive(plan.sync_id, step.endpoint, source, "unlink", step))
        elif isinstance(step, Create) and step.endpoint in item.deleted:
            found.append(Destructive(plan.sync_id, step.endpoint, step.endpoint, "recreate", step))
    return found


def rejected(plan: Plan, item: Touched, endpoints: Collection[str], base: Mapping[str, Any] | None) -> Plan:
    """The plan once a person rejected its destructive steps toward ``endpoints``: those mirrors stay as they are.

    An archive at a source stays there, and the base records the item archived, so the mirrors that stayed active
    are not archived again on the next pass (no flapping). A deletion whose every consequence was rejected is
    undone: the item is created again at the member where it was deleted, from the agreed values (it would be
    recreated there on its next change anyway, since that member lacks it). A rejected recreate is only dropped:
    the member is unlinked and lacks the item until its next change recreates it (no per-item exclusion yet).
    """
    found = [d for d in destructive(plan, item) if d.endpoint in endpoints]
    dropped = {id(d.step) for d in found}
    steps = [step for step in plan.steps if id(step) not in dropped]
    new_base = dict(plan.base)
    restore = sorted({d.source for d in found if d.what != "recreate" and d.source in item.deleted})
    consequences = [s for s in steps if isinstance(s, Archive | Delete | Unlink) and s.endpoint not in item.deleted]
    if any(d.what == "delete" for d in found):
        new_base.pop(DELETED, None)  # a mirror kept: the item is no longer being deleted everywhere
    if restore and not consequences:
        new_base[ARCHIVED] = bool((base or {}).get(ARCHIVED, False)) or any(v.archived for v in item.views.values())
        reason = "restored: a person rejected the mass deletion"
        steps += [Create(member, mirror_values(new_base), reason) for member in restore]
    return replace(plan, steps=tuple(steps), base=new_base)
