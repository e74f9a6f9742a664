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

from syncd.merge import ARCHIVED, DELETED, UNLINKED, GroupPolicy, mirror_values
from syncd.pass_data import Touched
from syncd.plan import Archive, Create, Delete, Plan, Restore, Step, Unlink, Write

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


@dataclass(frozen=True)
class Rejection:
    """Who rejected a guard's steps toward one endpoint, and which guard: what a restore or an unlink names."""

    guard: str
    by: str


def rejected(
    plan: Plan,
    item: Touched,
    rejections: Mapping[str, Rejection],
    base: Mapping[str, Any] | None,
    *,
    policy: GroupPolicy | None = None,
    restorable: Collection[str] = (),
    moves_status: Collection[str] = (),
) -> Plan:
    """The plan once a person rejected its destructive steps toward the endpoints of ``rejections``.

    The mirrors there stay as they are, and what caused the steps is undone or recorded, so nothing flaps:

    - an **archive** whose every consequence was rejected is undone at its source, if its tool can restore there
      (``restorable``): the item is brought back into work with the agreed values (:class:`~syncd.plan.Restore`),
      and the base records it active. Where it cannot, the source stays archived and the base records the item
      archived, so the mirrors that stayed active are not archived again on the next pass. Where the tool's archive
      moved the item's status (``moves_status``: Jira's moves the issue to a done status), that status change was
      the archive too: the item goes back to the agreed status there, and it is not written elsewhere;
    - a **deletion** whose every consequence was rejected is undone: the item is created again at the member where
      it was deleted, from the agreed values;
    - a rejected **recreate** is replaced by an unlink decided by the person, and the base keeps the member in
      :data:`~syncd.merge.UNLINKED`, so no later pass creates the item there again.
    """
    found = [d for d in destructive(plan, item) if d.endpoint in rejections]
    dropped = {id(d.step) for d in found}
    steps = [step for step in plan.steps if id(step) not in dropped]
    new_base = dict(plan.base)
    unlinked = set(new_base.get(UNLINKED) or [])
    for d in found:
        if d.what == "recreate":
            who = rejections[d.endpoint]
            reason = f"not recreated: {who.by} rejected it (guard {who.guard})"
            steps.append(Unlink(d.endpoint, item.deleted[d.endpoint], reason, decided_by=who.by))
            unlinked.add(d.endpoint)
    if unlinked:
        new_base[UNLINKED] = sorted(unlinked)
    restore = sorted({d.source for d in found if d.what != "recreate" and d.source in item.deleted})
    consequences = [s for s in steps if isinstance(s, Archive | Delete | Unlink) and s.endpoint not in item.deleted]
    if any(d.what == "delete" for d in found):
        new_base.pop(DELETED, None)  # a mirror kept: the item is no longer being deleted everywhere
    if restore and not consequences:
        new_base[ARCHIVED] = bool((base or {}).get(ARCHIVED, False)) or any(v.archived for v in item.views.values())
        reason = "restored: a person rejected the mass deletion"
        steps += [Create(member, mirror_values(new_base), reason) for member in restore]
    archived = {
        d.source: rejections[d.endpoint]
        for d in sorted(found, key=lambda d: d.endpoint)
        if d.what == "archive" and d.source not in item.deleted and d.source in item.views
    }
    archived = {member: who for member, who in archived.items() if item.views[member].archived}
    if archived and not any(isinstance(s, Archive) for s in steps) and set(archived) <= set(restorable):
        new_base[ARCHIVED] = bool((base or {}).get(ARCHIVED, False))
        steps = [s for s in steps if not (isinstance(s, Write) and s.endpoint in archived)]
        for member in sorted(set(archived) & set(moves_status)):
            steps = _status_back(steps, plan, member, before=base or {}, new_base=new_base)
        for member, who in sorted(archived.items()):
            steps.append(_restore(plan, item, member, who=who, new_base=new_base, policy=policy))
    return replace(plan, steps=tuple(steps), base=new_base)


def _status_back(
    steps: list[Step], plan: Plan, member: str, *, before: Mapping[str, Any], new_base: dict[str, Any]
) -> list[Step]:
    """Undo the status move an archive at ``member`` made: the base keeps the earlier status, no one is written it."""
    if plan.origins.get("status") != member or "status" not in before:
        return steps
    new_base["status"] = before["status"]
    kept: list[Step] = []
    for step in steps:
        if isinstance(step, Write) and "status" in step.values:
            values = {name: value for name, value in step.values.items() if name != "status"}
            if not values:
                continue
            step = replace(step, values=values)  # noqa: PLW2901 - the same write, without the status
        kept.append(step)
    return kept


def _restore(
    plan: Plan,
    item: Touched,
    member: str,
    *,
    who: Rejection,
    new_base: Mapping[str, Any],
    policy: GroupPolicy | None,
) -> Restore:
    """Undo the archive at ``member``: the agreed values its archived record lacks, and any write planned there."""
    view = item.views[member]
    agreed = mirror_values(new_base, policy, member)
    values = {name: value for name, value in agreed.items() if name not in view.values}
    if "status" in agreed and view.values.get("status") != agreed["status"]:
        values["status"] = agreed["status"]  # the archive moved it (Jira's done status): back where it was agreed
    for step in plan.steps:
        if isinstance(step, Write) and step.endpoint == member:
            values = {**step.values, **values}
    reason = f"restored: {who.by} rejected the mass archive (guard {who.guard})"
    return Restore(member, view.ref, values, reason, decided_by=who.by)
