"""The planner: a pure, per-field 3-way merge of N endpoint views of one item against their common base.

No I/O, no clock, no database: :func:`plan` takes the base (what every endpoint last agreed on), each endpoint's
current canonical view, and the group's policy, and returns a :class:`~syncd.plan.Plan`. The decision table is in
:func:`plan` (item level: new, deleted, archived, out of scope) and :func:`merge_field` (field level: unchanged,
changed at one endpoint, changed at several = conflict, decided by the field's rule).

Rules (per field): ``owner`` (that department's value wins; edits elsewhere are reverted), ``latest`` (the later
change wins, ties by member order), ``prefer`` (fixed precedence), ``union`` (set fields merge adds and
removes), ``merge-text`` (3-way merge of non-overlapping line edits, else ``latest``), ``manual`` (nothing is
written; the conflict waits for a person). A change at an endpoint that is not a source of the field (one-way
fields) does not count and is reverted. A field held by some members only (``FieldPolicy.holders``) is merged
among them: the others are neither read nor written for it, so it stays whatever their people make it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from json.encoder import encode_basestring_ascii as _quoted
from typing import Literal

import merge3

from syncd.errors import SideEmptied
from syncd.plan import Archive, Conflict, Create, Delete, Plan, Refusal, Step, Unlink, Value, View, Write

ARCHIVED = "@archived"
"""Base pseudo-field: whether the item was archived when the endpoints last agreed."""
DELETED = "@deleted"
"""Base pseudo-field: the item is being deleted everywhere (``on_delete: delete``): a mirror a pass did not get to
is deleted by the next one, and no member is given a new mirror, whatever it lacks."""

UNLINKED = "@unlinked"
"""Base pseudo-field: members where a person chose the item not to be mirrored (a rejected recreate, see
:func:`syncd.guard.rejected`): it is never created there again. Pseudo-fields start with ``@``."""


@dataclass(frozen=True)
class Rule:
    """How a conflicting field is decided: ``kind`` is one of the rules above; ``owner``/``order`` parametrise."""

    kind: Literal["owner", "latest", "prefer", "union", "merge-text", "manual"]
    owner: str | None = None
    order: tuple[str, ...] = ()

    def label(self) -> str:
        """How the audit log names the rule."""
        if self.kind == "owner":
            return f"owner:{self.owner}"
        if self.kind == "prefer":
            return "prefer:" + ",".join(self.order)
        return self.kind


@dataclass(frozen=True)
class FieldPolicy:
    """One canonical field of a group: its conflict rule and which endpoints may change it."""

    rule: Rule = Rule("latest")
    sources: frozenset[str] | None = None
    """Endpoints whose changes count (None: all). Changes elsewhere are reverted."""
    holders: frozenset[str] | None = None
    """Endpoints that hold the field (None: all). The others are never read or written for it, not even on
    create: a department keeps a field to itself, and the base holds the value its holders agreed on."""

    def holds(self, endpoint: str) -> bool:
        """Whether the field exists at ``endpoint`` for this group (it is read and written there)."""
        return self.holders is None or endpoint in self.holders

    def counts(self, endpoint: str) -> bool:
        """Whether a change of the field at ``endpoint`` counts: it holds the field and is one of its sources."""
        return self.holds(endpoint) and (self.sources is None or endpoint in self.sources)

    @functools.cached_property
    def counting(self) -> frozenset[str] | None:
        """The endpoints whose changes count (None: every one), for the planner's inner loops."""
        if self.holders is None:
            return self.sources
        return self.holders if self.sources is None else self.holders & self.sources


@dataclass(frozen=True)
class GroupPolicy:
    """What the planner needs of a group's mapping."""

    group: str
    members: tuple[str, ...]
    """Endpoints in precedence order (ties in ``latest`` go to the earlier member)."""
    fields: Mapping[str, FieldPolicy]
    create_in: frozenset[str] = frozenset()
    on_delete: Literal["archive", "unlink"] = "archive"
    member_on_delete: Mapping[str, Literal["archive", "unlink", "delete"]] = field(default_factory=dict)
    """Member -> what a deletion there means for the mirrors, where it says other than the group's ``on_delete``."""
    scope_labels: Mapping[str, str] = field(default_factory=dict)
    """Member -> the label its scope requires: a mirror created there carries it, and so does the item."""


@dataclass(frozen=True)
class Item:
    """Everything known about one item before planning."""

    sync_id: str
    base: Mapping[str, Value] | None
    """None for an item never synced (first seen this pass)."""
    views: Mapping[str, View]
    """Endpoints where the item exists and is in scope."""
    deleted: Mapping[str, str] = field(default_factory=dict)
    """Linked endpoints (-> ref) where the item no longer exists."""
    out_of_scope: Mapping[str, str] = field(default_factory=dict)
    """Linked endpoints (-> ref) where the item exists but left the endpoint's scope."""
    decisions: Mapping[str, str] = field(default_factory=dict)
    """Field -> the endpoint a person chose for a conflict the ``manual`` rule held (``syncd conflicts resolve``)."""
    echoes: Mapping[str, Mapping[str, Value]] = field(default_factory=dict)
    """Endpoint -> field -> a value syncd wrote there that the base does not hold yet: not a change made there."""
    unavailable: Mapping[str, str | None] = field(default_factory=dict)
    """Members whose tool cannot be read this pass (-> the item's ref there, None where it has none): neither read
    nor written nor created in, they are ``behind`` until they catch up."""
    behind: Mapping[str, Mapping[str, Value]] = field(default_factory=dict)
    """Endpoint -> field -> the value its mirror holds from an older base: the others agreed on a new one while
    its tool could not be read. That value is its base for the field: unchanged, it is brought up to date; changed
    meanwhile, it is a change as concurrent as the others' since, and the field's rule decides."""


def _key(value: Value) -> str:
    """A hashable identity of a canonical value (lists and dicts included): its JSON text, keys sorted.

    Text and lists of text, most of what a plan compares, are encoded with json's own string encoder directly:
    the same text ``json.dumps`` makes, at a fraction of its cost (the planner compares every field of every view).
    """
    if isinstance(value, str):
        return _quoted(value)
    if type(value) in _SEQUENCES and all(type(member) is str for member in value):
        return "[" + ", ".join(map(_quoted, value)) + "]"
    return json.dumps(value, sort_keys=True, default=str)


_SEQUENCES = (list, tuple)
_EXACT = (str, bool, int, type(None))
"""Types whose values are the same exactly when ``==`` says so and the types match (JSON tells 1 from 1.0 and
from true, so mixed types go through :func:`_key`)."""


def _order(value: Value) -> tuple[int, str]:
    """Sort key of a set field's members: text as the codecs sort it (plain ``sorted``), anything else after it.

    Sorting the JSON form instead puts "launch plan" before "launch" (a space sorts before a quote), and a base
    in another order than the tools' decoded lists would read as a change.
    """
    return (0, value) if isinstance(value, str) else (1, _key(value))


def same(a: Value, b: Value) -> bool:
    """Whether two canonical values are equal (lists and dicts compared by content)."""
    kind, other = type(a), type(b)
    if kind is other and kind in _EXACT:
        return bool(a == b)
    if kind in _SEQUENCES and other in _SEQUENCES:
        # A JSON list is its members' JSON texts joined: equal exactly when they are equal member by member.
        if len(a) != len(b):
            return False
        for x, y in zip(a, b, strict=True):
            if type(x) is str and type(y) is str:  # most lists are of text (people, labels): compared inline
                if x != y:
                    return False
            elif not same(x, y):
                return False
        return True
    return _key(a) == _key(b)


def heed(view: View, base: Mapping[str, Value] | None, refusals: Mapping[str, Refusal]) -> View:
    """A mirror's view with each refused field read as the base's value while nothing changed on either side.

    The tool refused the base's value and the mirror kept what it held: holding that is holding all the tool
    takes of the base, so it is neither a change made there (which would spread the old value back) nor a write
    to send again every pass. A new base value, or a person's change there, ends the likeness.
    """
    if base is None or not refusals:
        return view
    values = dict(view.values)
    for name, refusal in refusals.items():
        if name in values and name in base and same(base[name], refusal.value) and same(values[name], refusal.held):
            values[name] = base[name]
    return view if values == view.values else replace(view, values=values)


@dataclass(frozen=True)
class FieldDecision:
    """The outcome of merging one field."""

    value: Value
    origin: str | None
    conflict: Conflict | None = None


def changes(
    name: str,
    policy: FieldPolicy,
    base: Mapping[str, Value],
    views: Sequence[View],
    echoes: Mapping[str, Mapping[str, Value]] | None = None,
) -> dict[str, Value]:
    """Endpoint -> its value, where the field changed since the base (see :func:`merge_field`).

    A change counts at a source endpoint holding a value other than the base's that is not syncd's own echo, or
    one where a person moved the field away and back since (:attr:`View.returned`).
    """
    base_value = base.get(name)
    counting = policy.counting
    found: dict[str, Value] = {}
    for view in views:
        if name not in view.values or (counting is not None and view.endpoint not in counting):
            continue
        value = view.values[name]
        if name in view.returned:
            found[view.endpoint] = value
        elif not same(value, base_value):
            written = echoes.get(view.endpoint) if echoes else None
            if written is None or name not in written or not same(value, written[name]):
                found[view.endpoint] = value
    return found


def merge_field(
    name: str,
    policy: FieldPolicy,
    base: Mapping[str, Value],
    views: Sequence[View],
    echoes: Mapping[str, Mapping[str, Value]] | None = None,
) -> FieldDecision:
    """Decide one field's value from its base and every endpoint's view (the field-level decision table).

    ``echoes`` are values syncd itself wrote at an endpoint in a plan that did not complete: an endpoint holding
    its echo did not change the field (it holds a copy of another endpoint's change).
    """
    # A field the base does not hold was empty when the tools last agreed (empty values are not stored).
    base_value = base.get(name)
    changed = changes(name, policy, base, views, echoes)
    if not changed:
        # Unchanged everywhere that counts: keep the base (and revert non-source edits to it).
        return FieldDecision(base_value, None)
    if len(changed) == 1 or len({_key(value) for value in changed.values()}) == 1:
        # Changed at one endpoint, or identically at several: it simply propagates.
        origin = next(iter(changed))
        return FieldDecision(changed[origin], origin)
    # Changed at several endpoints to different values: a conflict, decided by the field's rule.
    holders = policy.holders
    present = [view for view in views if name in view.values and (holders is None or view.endpoint in holders)]
    return _decide(name, policy.rule, base_value, changed, present)


def _latest(name: str, changed: Mapping[str, Value], views: Sequence[View]) -> str:
    order = {view.endpoint: index for index, view in enumerate(views)}
    times = {view.endpoint: view.field_times.get(name, view.modified) for view in views}
    return max(changed, key=lambda endpoint: (times[endpoint], -order[endpoint]))


def _decide(name: str, rule: Rule, base: Value, changed: Mapping[str, Value], views: Sequence[View]) -> FieldDecision:
    label = rule.label()
    if rule.kind == "manual":
        held = Conflict(name, label, dict(changed), winner=None, result=base, held=True)
        return FieldDecision(base, None, held)
    if rule.kind == "union":
        result = _union(base, changed.values())
        return FieldDecision(result, None, Conflict(name, label, dict(changed), winner=None, result=result))
    if rule.kind == "merge-text":
        merged = _merge_text(base, list(changed.values()))
        if merged is not None:
            return FieldDecision(merged, None, Conflict(name, label, dict(changed), winner=None, result=merged))
        winner = _latest(name, changed, views)  # overlapping edits: the later one wins
    elif rule.kind == "owner" and rule.owner is not None:
        if rule.owner in changed:
            winner = rule.owner
        else:
            # The owner kept its value while others changed it: the owner's value (the base) stands.
            reverted = Conflict(name, label, dict(changed), winner=rule.owner, result=base)
            return FieldDecision(base, rule.owner, reverted)
    elif rule.kind == "prefer":
        winner = next((endpoint for endpoint in rule.order if endpoint in changed), _latest(name, changed, views))
    else:
        winner = _latest(name, changed, views)
    result = changed[winner]
    return FieldDecision(result, winner, Conflict(name, label, dict(changed), winner=winner, result=result))


def _union(base: Value, values: Iterable[Value]) -> list[Value]:
    """Apply every endpoint's adds and removes relative to the base to a set field."""
    before = {_key(v): v for v in (base or [])}
    result = dict(before)
    for value in values:
        now = {_key(v): v for v in (value or [])}
        for key in now.keys() - before.keys():
            result[key] = now[key]
        for key in before.keys() - now.keys():
            result.pop(key, None)
    return sorted(result.values(), key=_order)


def _merge_text(base: Value, texts: Sequence[Value]) -> str | None:
    """3-way merge of line edits against the base; None when edits overlap."""
    if not isinstance(base, str) or not all(isinstance(text, str) for text in texts):
        return None
    merged: str = texts[0]
    for other in texts[1:]:
        result = merge3.Merge3(
            base.splitlines(keepends=True), merged.splitlines(keepends=True), other.splitlines(keepends=True)
        )
        if any(region[0] == "conflict" for region in result.merge_regions()):
            return None
        merged = "".join(result.merge_lines())
    return merged


def check_side(endpoint: str, linked: int, listed: int, *, ratio: float = 0.5, floor: int = 5) -> None:
    """Raise SideEmptied when a full listing misses more than ``ratio`` of at least ``floor`` linked items."""
    if linked >= floor and listed < linked * (1 - ratio):
        raise SideEmptied(endpoint, linked, listed)


def plan(policy: GroupPolicy, item: Item) -> Plan:
    """Decide every step for one item (the item-level decision table, one comment per branch)."""
    order = {endpoint: index for index, endpoint in enumerate(policy.members)}
    views = sorted(item.views.values(), key=lambda view: order.get(view.endpoint, len(order)))
    base: Mapping[str, Value] = item.base or {}
    if not views:
        # Gone (or out of scope) everywhere: nothing left to mirror; the links are dropped by the executor.
        return Plan(item.sync_id, policy.group, (), (), base)
    if base.get(DELETED, False):
        # Being deleted (a pass deleted some mirrors and did not get to these, or crashed): finish it, create nothing.
        rest = tuple(Delete(v.endpoint, v.ref, dict(v.values), "the item is being deleted") for v in views)
        waiting = tuple(member for member, ref in sorted(item.unavailable.items()) if ref is not None)
        return Plan(item.sync_id, policy.group, rest, (), base, {}, waiting)
    if base.get(ARCHIVED, False) and all(view.archived for view in views):
        # Archived everywhere: out of active work, frozen. Archiving has side effects in some tools (Jira moves the
        # issue to a done status), and edits to archived mirrors are not news for anyone: nothing propagates.
        return Plan(item.sync_id, policy.group, (), (), base)
    new_base, origins, conflicts = _merge_fields(policy, base, views, item)
    linked = set(item.views) | set(item.deleted) | set(item.out_of_scope)
    # A member a person chose to leave without the item (a rejected recreate) is not one that lacks it.
    unlinked = sorted(base.get(UNLINKED) or [])
    absent = [m for m in policy.members if m in policy.create_in and m not in linked and m not in unlinked]
    # A member that cannot be read now gets nothing this pass: a create there waits (its mirror may exist).
    creating = [m for m in absent if m not in item.unavailable]
    labels = policy.fields.get("labels")
    # A member that does not hold labels gets its scope label from its codec alone: the others' labels stay theirs.
    scoped = [m for m in creating if m in policy.scope_labels and labels is not None and labels.holds(m)]
    required = sorted({policy.scope_labels[m] for m in scoped})
    if required:
        # Mirroring into a member scoped by a label: the item takes that label everywhere, in this very pass, so
        # the new mirror stays in scope and the tools agree at once (instead of the label propagating a pass later).
        new_base["labels"] = sorted({*(new_base.get("labels") or []), *required}, key=_order)
    archived_now = [view.endpoint for view in views if view.archived and not base.get(ARCHIVED, False)]
    new_base[ARCHIVED] = bool(base.get(ARCHIVED, False)) or bool(archived_now)
    if unlinked:
        new_base[UNLINKED] = unlinked
    held = {conflict.field for conflict in conflicts if conflict.held}
    steps: list[Step] = []
    for view in views:
        if archived_now and not view.archived:
            # Archived at one endpoint: archive the mirrors too (reversible everywhere).
            steps.append(Archive(view.endpoint, view.ref, f"archived at {', '.join(archived_now)}"))
        write = _write_for(view, policy, new_base, origins, held)
        if write is not None:
            steps.append(write)
    deletion = _deletion_steps(policy, item, views, base, new_base)
    if any(isinstance(step, Delete) for step in deletion):
        # Deleted at a member that asks for its mirrors to go too: nothing else is done to the item, and nothing
        # created (the base remembers it is being deleted, so a pass cut short finishes the job, never undoes it).
        deleting = [step for step in deletion if isinstance(step, Delete)]
        # A member whose tool cannot be read now keeps its mirror until it answers: the item waits for it.
        waiting = tuple(member for member, ref in sorted(item.unavailable.items()) if ref is not None)
        return Plan(item.sync_id, policy.group, tuple(deleting), (), {**base, DELETED: True}, {}, waiting)
    if any(isinstance(step, Archive) for step in deletion):
        new_base[ARCHIVED] = True  # archived because deleted elsewhere: from now on the item is archived
    steps += deletion
    for endpoint, ref in sorted(item.out_of_scope.items()):
        # Left this endpoint's scope: stop mirroring there, change nothing.
        steps.append(Unlink(endpoint, ref, f"left the scope of {endpoint}"))
    for endpoint in creating:
        # A member that should hold the item has none yet: mirror it there.
        steps.append(Create(endpoint, mirror_values(new_base, policy, endpoint), f"new in {', '.join(item.views)}"))
    waiting = _waiting(policy, item, base, new_base, absent)
    return Plan(item.sync_id, policy.group, tuple(_dedupe(steps)), tuple(conflicts), new_base, origins, waiting)


def _waiting(
    policy: GroupPolicy, item: Item, base: Mapping[str, Value], new_base: Mapping[str, Value], absent: list[str]
) -> tuple[str, ...]:
    """Members that cannot be read now and are behind the new base: a create, a change, or older values held.

    A change counts for a member only in a field it holds: a field kept elsewhere leaves it as up to date as before.
    """
    if not item.unavailable:
        return ()
    changed = {name for name in policy.fields if not same(new_base.get(name), base.get(name))}
    return tuple(
        member
        for member, ref in sorted(item.unavailable.items())
        if (ref is None and member in absent)
        or (ref is not None and (any(policy.fields[n].holds(member) for n in changed) or member in item.behind))
    )


def _merge_fields(
    policy: GroupPolicy,
    base: Mapping[str, Value],
    views: Sequence[View],
    item: Item,
) -> tuple[dict[str, Value], dict[str, str], list[Conflict]]:
    """Merge every field of the group: the new base, where each value came from, and the conflicts."""
    new_base: dict[str, Value] = {}
    origins: dict[str, str] = {}
    conflicts: list[Conflict] = []
    for name, declared in policy.fields.items():
        take = item.decisions.get(name)
        # A person decided a held conflict: the chosen endpoint's value wins, like an owner's would.
        field_policy = declared if take is None else replace(declared, rule=Rule("owner", owner=take))
        field_base, field_echoes = _catching_up(name, base, views, item.echoes, item.behind)
        decision = merge_field(name, field_policy, field_base, views, field_echoes)
        if decision.conflict is not None:
            conflict = decision.conflict
            conflicts.append(replace(conflict, rule=f"manual:{take}") if take is not None else conflict)
        if decision.value is not None or name in base:
            new_base[name] = decision.value
        if decision.origin is not None:
            origins[name] = decision.origin
    return new_base, origins, conflicts


def _catching_up(
    name: str,
    base: Mapping[str, Value],
    views: Sequence[View],
    echoes: Mapping[str, Mapping[str, Value]],
    behind: Mapping[str, Mapping[str, Value]],
) -> tuple[Mapping[str, Value], Mapping[str, Mapping[str, Value]]]:
    """The base and echoes one field merges with, where a mirror holds a value from an older base.

    Still holding it, the mirror changed nothing: its value counts as an echo, and the new base is written there.
    Holding another, a person changed it while its tool could not be read, as the others changed the field since:
    the older value is the field's common ancestor, so every member that moved away from it takes part in the
    decision (an owner's change made elsewhere meanwhile still wins).
    """
    if not behind:
        return base, echoes
    for view in views:
        held = behind.get(view.endpoint, {})
        if name not in held or name not in view.values:
            continue
        if same(view.values[name], held[name]):
            echoes = {**echoes, view.endpoint: {**echoes.get(view.endpoint, {}), name: held[name]}}
        else:
            return {**base, name: held[name]}, echoes
    return base, echoes


def _write_for(
    view: View, policy: GroupPolicy, new_base: Mapping[str, Value], origins: Mapping[str, str], held: set[str]
) -> Write | None:
    """The fields whose canonical value differs at this endpoint (lossy maps compare canonically: no flap)."""
    values = {
        name: new_base[name]
        for name, field_policy in policy.fields.items()
        if name in view.values
        and name in new_base
        and name not in held
        and (field_policy.holders is None or view.endpoint in field_policy.holders)
        and not same(view.values[name], new_base[name])
    }
    if not values:
        return None
    reasons = [f"{name} from {origins.get(name, 'base')}" for name in sorted(values)]
    return Write(view.endpoint, view.ref, values, "; ".join(reasons))


def _deletion_steps(
    policy: GroupPolicy, item: Item, views: Sequence[View], base: Mapping[str, Value], new_base: Mapping[str, Value]
) -> list[Step]:
    """What deletions at some endpoints mean for the others."""
    if not item.deleted:
        return []
    # A field the base does not hold was empty when the tools last agreed: a view holding it empty did not change
    # it (taken for a change, most deleted items read as modified, were recreated, and a mass deletion split in
    # two: recreates here, archives there, each under the mass-change threshold; found by issue 17's catalogue).
    modified_since_base = item.base is not None and any(
        not same(view.values[name], base.get(name))
        for view in views
        for name, field_policy in policy.fields.items()
        if name in view.values and field_policy.holds(view.endpoint)
    )
    steps: list[Step] = []
    for endpoint in sorted(item.deleted):
        if modified_since_base:
            # Deleted here but modified elsewhere since the base: the modification wins, the mirror is recreated.
            values = mirror_values(new_base, policy, endpoint)
            steps.append(Create(endpoint, values, f"deleted at {endpoint} but modified elsewhere"))
        elif policy.member_on_delete.get(endpoint) == "delete":
            # Deleted here, untouched elsewhere, and this member says its deletions delete: delete every mirror
            # (archived ones too); each mirror's last values go into the journal and the audit log.
            steps += [Delete(v.endpoint, v.ref, dict(v.values), f"deleted at {endpoint}") for v in views]
        elif policy.member_on_delete.get(endpoint, policy.on_delete) == "archive":
            # Deleted here, untouched elsewhere: archive the mirrors (never delete what people may still need).
            steps += [Archive(v.endpoint, v.ref, f"deleted at {endpoint}") for v in views if not v.archived]
        else:
            # Deleted here, untouched elsewhere, and the group says unlink: leave the mirrors alone.
            steps += [Unlink(v.endpoint, v.ref, f"deleted at {endpoint}") for v in views]
    return steps


def mirror_values(
    base: Mapping[str, Value], policy: GroupPolicy | None = None, endpoint: str | None = None
) -> dict[str, Value]:
    """The values a new mirror is made with: the agreed ones, without the pseudo-fields.

    Given the group's ``policy`` and the mirror's ``endpoint``, only the fields that endpoint holds.
    """
    return {
        name: value
        for name, value in base.items()
        if not name.startswith("@")
        and value is not None
        and (policy is None or endpoint is None or name not in policy.fields or policy.fields[name].holds(endpoint))
    }


def _dedupe(steps: list[Step]) -> list[Step]:
    """Keep the first step per (kind, endpoint): one archive per mirror however many deletions asked for it."""
    seen: set[tuple[str, str]] = set()
    unique: list[Step] = []
    for step in steps:
        key = (type(step).__name__, step.endpoint)
        if isinstance(step, Archive | Unlink) and key in seen:
            continue
        seen.add(key)
        unique.append(step)
    return unique
