"""The plan stage: one item's plan from its views, and the tools' history where their state cannot tell.

Pure (no I/O): :func:`decide` either returns the item's plan or says which members' history of the item it needs
(:class:`HistoryWanted`); the pass reads those histories, every item's at once, and asks again. History is wanted
in three cases, and each endpoint's history is read at most once per item:

- a field moved away and back at one endpoint while it changed at another (:func:`_returned`): by state alone that
  endpoint looks untouched;
- a conflict decided by time (:func:`_timed`): the rule weighs when each field changed, not when the item did;
- attribution (:func:`_attributed`): the plan writes a value changed at a member (its origin), and the audit log
  names, per field, the person who made that change. A record does not say who edited it (no tool's read does),
  so the origin's history is the only source that can be trusted: one read per origin member of an item that is
  written, shared with the two cases above.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from syncd.merge import GroupPolicy, Item, changes, plan, same
from syncd.model import FieldChange, last_changes
from syncd.pass_data import Touched
from syncd.plan import Create, Plan, View, Write

TIMED_RULES = frozenset({"latest", "merge-text", "prefer"})
"""Rules whose decision can come down to which change was later (merge-text and prefer fall back to latest)."""

Histories = Mapping[str, list[FieldChange] | None]
"""Member -> the tool's history of the item (None: the tool could not answer; the view is taken as it is)."""


@dataclass(frozen=True)
class Decided:
    """An item's plan, and the views it was made from (with what the tools' history added to them)."""

    plan: Plan
    views: dict[str, View]
    attribute: frozenset[str] = frozenset()
    """Members whose history names the people of the changes the plan carries and was not read to plan it: the
    apply stage reads it while it writes (:func:`attributed` then names them), so naming costs no round trip."""


@dataclass(frozen=True)
class HistoryWanted:
    """The members whose history of the item the plan needs and that has not been read yet."""

    members: frozenset[str]


def decide(policy: GroupPolicy, whole: Item, item: Touched, histories: Histories) -> Decided | HistoryWanted:
    """The item's plan, or the histories still needed to make it (every need known at this point, at once)."""
    decided = plan(policy, whole)
    wanted = _returned_wanted(policy, whole, item)
    missing = (set(wanted) | _involved(decided, item)) - histories.keys()
    if missing:
        return HistoryWanted(frozenset(missing))
    views = dict(item.views)
    returned = _returned(wanted, item, histories)
    if returned:
        views |= returned
        whole = replace(whole, views=views)
        decided = plan(policy, whole)
        missing = _involved(decided, item) - histories.keys()
        if missing:
            return HistoryWanted(frozenset(missing))
    timed = _timed(decided, views, histories)
    if timed:
        views |= timed
        decided = plan(policy, replace(whole, views=views))
    attribute = frozenset(_origins(decided, views) - histories.keys())
    return Decided(replace(decided, people=attributed(decided, views, histories)), views, attribute)


def _returned_wanted(policy: GroupPolicy, whole: Item, item: Touched) -> dict[str, set[str]]:
    """Per member, the fields to look up in its history: changed elsewhere, back at the base there since the base.

    Ana moves the issue to Done and back to To Do while Gus moves the task to In Progress: by state, Gus's move
    would override hers although hers came later and Engineering owns the field (found by the long fault run).
    Only such a field at such an endpoint costs a read: one that changed elsewhere, at an endpoint whose record
    changed since it was last synced. An endpoint with no synced time (a mirror syncd made whose read-back held
    more than syncd wrote, say Jira's default priority, and never agreed since) is asked too: its whole history
    then counts, where syncd's own create is no person's change.
    """
    if whole.base is None:
        return {}
    views = list(item.views.values())
    wanted: dict[str, set[str]] = defaultdict(set)
    for name, field_policy in policy.fields.items():
        changed = changes(name, field_policy, whole.base, views, whole.echoes)
        if not changed:
            continue
        for view in views:
            if (
                view.endpoint not in changed
                and view.endpoint in item.changed
                and name in view.values
                and same(view.values[name], whole.base.get(name))
                and field_policy.counts(view.endpoint)
            ):
                wanted[view.endpoint].add(name)
    return dict(wanted)


def _returned(wanted: Mapping[str, set[str]], item: Touched, histories: Histories) -> dict[str, View]:
    """Views where a person changed a wanted field since the base was agreed and left it at the base's value.

    A tool that could not answer leaves its view as it was.
    """
    found: dict[str, View] = {}
    for member, names in sorted(wanted.items()):
        view = item.views[member]
        history = histories.get(member)
        if history is None:
            continue
        since = item.synced.get(member)
        news = [c for c in history if not c.by_self and (since is None or c.at > since) and c.field in names]
        if news:
            found[member] = replace(
                view,
                returned=view.returned | {change.field for change in news},
                field_times={**view.field_times, **last_changes(news)},
            )
    return found


def _involved(decided: Plan, item: Touched) -> set[str]:
    """The members whose values meet in a conflict decided by time (their history tells each field's time)."""
    return {
        endpoint
        for conflict in decided.conflicts
        if not conflict.held and conflict.rule.split(":", 1)[0] in TIMED_RULES
        for endpoint in conflict.values
        if endpoint in item.views
    }


def _timed(decided: Plan, views: Mapping[str, View], histories: Histories) -> dict[str, View]:
    """The views of a conflict decided by time, with each field's change time from the tool's history.

    A tool that could not answer leaves its view as it was (the item's modification time stands in).
    """
    involved = {
        endpoint
        for conflict in decided.conflicts
        if not conflict.held and conflict.rule.split(":", 1)[0] in TIMED_RULES
        for endpoint in conflict.values
    }
    timed: dict[str, View] = {}
    copied: dict[str, set[str]] = {}
    for member in sorted(involved & views.keys()):
        view = views[member]
        history = histories.get(member)
        if history is None:
            continue
        # A person's change of a field is what the rule weighs; syncd's own copies count only where none is known.
        people = last_changes([c for c in history if not c.by_self])
        every = last_changes(history)
        copied[member] = {name for name, at in every.items() if name not in people or at > people[name]}
        timed[member] = replace(view, field_times={**view.field_times, **every, **people})
    return _copies_at_their_origin(decided, timed, copied)


def _copies_at_their_origin(decided: Plan, timed: dict[str, View], copied: dict[str, set[str]]) -> dict[str, View]:
    """Weigh a value syncd copied into a member at the time of the change it copies, not of the copy.

    A member that could not be read catches up with a person's edit made there meanwhile, while syncd copied an
    earlier edit of the same field into the others: the copies were written after the person's edit, and taken at
    their own time they would beat it by ``latest`` (found by the long fault runs: titles lost). A copy holds the
    value of the member it came from; it is weighed at that member's time.
    """
    for conflict in decided.conflicts:
        name = conflict.field
        for member, value in conflict.values.items():
            if member not in timed or name not in copied.get(member, set()):
                continue
            origins = [
                timed[other].field_times.get(name, timed[other].modified)
                for other, theirs in conflict.values.items()
                if other != member and other in timed and name not in copied[other] and same(theirs, value)
            ]
            if origins:
                view = timed[member]
                timed[member] = replace(view, field_times={**view.field_times, name: max(origins)})
    return timed


def _carried(decided: Plan) -> set[str]:
    """The fields whose change the plan carries somewhere: written or created, or decided by a rule or a person."""
    written = {name for step in decided.steps if isinstance(step, Write | Create) for name in step.values}
    decided_fields = {conflict.field for conflict in decided.conflicts if not conflict.held}
    return {name for name in written | decided_fields if name in decided.origins}


def _origins(decided: Plan, views: Mapping[str, View]) -> set[str]:
    """The members whose history names the people of the changes the plan carries (read this pass, so readable)."""
    return {decided.origins[name] for name in _carried(decided)} & views.keys()


def attributed(decided: Plan, views: Mapping[str, View], histories: Histories) -> dict[str, str]:
    """Field -> who made the change the plan carries: the last person's change of it at its origin.

    Only changes up to the record read count (a later one is not in the value planned). syncd's own copies name no
    one; a tool that could not answer, or a person without a known e-mail, leaves the field unnamed, never guessed.
    """
    people: dict[str, str] = {}
    for name in sorted(_carried(decided)):
        member = decided.origins[name]
        history = histories.get(member)
        if history is None or member not in views:
            continue
        people |= last_people(history, [name], views[member].modified)
    return people


def last_people(history: Sequence[FieldChange], names: Iterable[str], read_at: datetime) -> dict[str, str]:
    """Field -> the last person (not syncd's account) who changed it at or before ``read_at``, where one is named.

    A change after the record was read is not in the value read; a person without a known e-mail names no one.
    """
    people: dict[str, str] = {}
    for name in names:
        theirs = [c for c in history if c.field == name and not c.by_self and c.at <= read_at]
        last = max(theirs, key=lambda change: change.at, default=None)
        if last is not None and last.person:
            people[name] = last.person
    return people


def credit(
    names: Iterable[str], origins: Mapping[str, str], people: Mapping[str, str]
) -> tuple[str | None, str | None, dict[str, str]]:
    """A write's ``origin``, ``person`` and ``people`` for the fields it sets (see :mod:`syncd.audit`).

    ``origin`` names the member(s) whose changes the write carries; ``person`` is set only when one person made
    every one of them, so no write names someone for a change they did not make; ``people`` names each field's.
    """
    carried = sorted(name for name in names if name in origins)
    members = sorted({origins[name] for name in carried})
    origin = members[0] if len(members) == 1 else (",".join(members) or None)
    named = {name: people[name] for name in carried if name in people}
    authors = set(named.values())
    person = authors.pop() if len(authors) == 1 and len(named) == len(carried) else None
    return origin, person, named
