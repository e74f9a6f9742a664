"""People editing in all three tools while syncd runs, and the checks that nothing was lost, duplicated or stuck.

Shared by the fault and crash-loop reliability tests (tests/reliability/): a seeded :class:`Workload` of renames,
status moves, comments and new items made through the sandbox's ``act_as`` (as people would, never through syncd),
a record of every edit in the order it was made, and the checks run once the edits stop and syncd has settled:

- :func:`check_converged`: the invariants of tests/test_state_machine.py (a quiet pass writes nothing; no conflict,
  quarantined item or journal entry is left; no two records carry one marker; every record in scope is linked;
  every linked record decodes to its item's base; the audit chain verifies);
- :func:`check_nothing_lost`: every item people created is in all three tools once, with one create event per
  mirror; each item's title is its last rename; an item last moved in Jira (the status owner) has that status;
  every comment is in all three tools exactly once.

Both return :class:`Problem` lists; :func:`verdict` fails on any of them, naming the cause where it is one these
tests found before (the scope-label, read-back and lost-update bugs, all fixed).

The run length is a parameter: short by default (CI, every commit), long with ``SYNCD_RELIABILITY_LONG=1``
(``make reliability-long``); ``SYNCD_RELIABILITY_SEED`` replays a run's edits and faults.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from connectors.factory import CAPABILITIES
from connectors.pacing import RetryPolicy
from sandbox.core import FaultRule
from sandbox.org import Sandbox
from sandbox.seed import SERVICE_ACCOUNT
from syncd.audit import events, verify
from syncd.connector import Connector
from syncd.engine import Pass, PassReport, endpoint_key
from syncd.mapping import Group, compile_group
from syncd.merge import ARCHIVED, same
from syncd.store import Store
from syncd.uncertain import MARKER_URL
from tests.syncd_env import FAST, sandbox_connectors

ROOT = Path(__file__).resolve().parent.parent.parent
GROUP = "launch-requests"
TOOLS: dict[str, str] = {"engineering": "jira", "sales": "trello", "marketing": "asana"}
MEMBERS = tuple(TOOLS)
PEOPLE = {
    "engineering": ("ana@corp.example", "ben@corp.example"),
    "sales": ("eli@corp.example", "farah@corp.example"),
    "marketing": ("gus@corp.example", "hana@corp.example"),
}
STATUSES = {
    "engineering": ("To Do", "In Progress", "Done"),
    "sales": ("Requests", "Doing", "Done"),
    "marketing": ("Backlog", "In progress", "Shipped"),
}
JIRA_CANONICAL = {"To Do": "todo", "In Progress": "doing", "Done": "done"}
"""Engineering's statuses as the shipped mapping reads them (Engineering owns status)."""
WORDS = ("alpha", "beta", "gamma", "launch", "page", "pricing", "review", "v2")
KINDS = ("rename", "move", "comment", "create")
WEIGHTS = (35, 25, 20, 20)
"""Retries as the daemon makes them, with waits short enough for a test (a Retry-After still waits >= 1 s)."""


def lost_answer_plan(share: float) -> list[FaultRule]:
    """Writes applied whose answer is lost, ``share`` of all writes: a gateway's 502 or 504, or a dropped connection."""
    return [
        FaultRule(kind="status_after", status=502, rate=share * 0.35, writes=True),
        FaultRule(kind="status_after", status=504, rate=share * 0.35, writes=True),
        FaultRule(kind="drop_after", rate=share * 0.3, writes=True),
    ]


def long_run() -> bool:
    """Whether ``SYNCD_RELIABILITY_LONG`` asks for the long settings (``make reliability-long``)."""
    return os.environ.get("SYNCD_RELIABILITY_LONG", "").strip().lower() in {"1", "true", "yes", "on"}


def run_seed(name: str, default: int) -> int:
    """The seed of this run, printed so a failure can be replayed with ``SYNCD_RELIABILITY_SEED``.

    Short runs default to a fixed seed so CI explores the same edits every commit; long runs default to a fresh
    one so each long run explores new ground.
    """
    given = os.environ.get("SYNCD_RELIABILITY_SEED")
    seed = int(given) if given else (random.SystemRandom().randrange(1, 2**31) if long_run() else default)
    print(f"{name}: seed {seed} (replay: SYNCD_RELIABILITY_SEED={seed})", flush=True)
    return seed


def shipped_group() -> Group:
    """The shipped mapping (every conflict rule once) over the sandbox's three tools."""
    return compile_group(ROOT / "mappings" / f"{GROUP}.yaml", TOOLS, CAPABILITIES)


def connectors(sandbox: Sandbox, policy: RetryPolicy = FAST) -> dict[str, Connector]:
    """The real connectors on the sandbox, with ``policy`` and budgets that never throttle (faults do that)."""
    return sandbox_connectors(sandbox, policy=policy)


@dataclass(frozen=True)
class Edit:
    """One person's change: ``value`` is the new title (create, rename), status (move) or comment token."""

    seq: int
    kind: str
    member: str
    ref: str
    value: str
    person: str


@dataclass
class Workload:
    """People editing the group's items in random tools, driven by one seeded generator.

    Every edit is made through ``act_as`` (the sandbox's own people, never the API syncd uses, so faults never hit
    them) and recorded in order. Each edit first moves the shared clock on a second, so the ``latest`` rule always
    has an unambiguous answer, as it has when real people edit.
    """

    sandbox: Sandbox
    seed: int
    edits: list[Edit] = field(default_factory=list)
    error: BaseException | None = None
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)
        self.stop = threading.Event()

    # ----- what people can pick ---------------------------------------------------------------------------

    def refs(self, member: str) -> list[str]:
        """The records of ``member`` in the group's scope (read under the emulator's lock)."""
        if member == "engineering":
            with self.sandbox.jira.lock:
                return sorted(k for k, issue in self.sandbox.jira.state.issues.items() if "launch" in issue.labels)
        if member == "sales":
            with self.sandbox.trello.lock:
                cards = self.sandbox.trello.state.cards.values()
                return sorted(card.id for card in cards if not card.closed and not card.deleted)
        with self.sandbox.asana.lock:
            return sorted(self.sandbox.asana.state.tasks)

    def _words(self, n: int) -> str:
        return " ".join(self.random.choice(WORDS) for _ in range(self.random.randint(1, 3))) + f" t{n:04d}"

    # ----- one edit ---------------------------------------------------------------------------------------

    def step(self) -> Edit:
        """Make one random edit as a random person of a random department; record and return it."""
        n = len(self.edits) + 1
        kind = self.random.choices(KINDS, WEIGHTS)[0]
        member = self.random.choice(MEMBERS)
        person = self.random.choice(PEOPLE[member])
        refs = self.refs(member)
        ref = self.random.choice(refs) if refs else ""
        if not ref:
            kind = "create"
        self.sandbox.clock.advance(1)
        if kind == "create":
            value = self._words(n)
            ref = self._create(member, person, value)
        elif kind == "rename":
            value = self._words(n)
            self._rename(member, person, ref, value)
        elif kind == "move":
            # A person moves an item somewhere else: moving it where it already is changes nothing (and Jira offers
            # no such transition), so it must not count as the latest move.
            value = self.random.choice([s for s in STATUSES[member] if s != self._status(member, ref)])
            self._move(member, person, ref, value)
        else:
            value = f"wl{n:04d}x{self.seed % 1000:03d}"
            self._comment(member, person, ref, f"Note {value}: {self._words(n)}")
        edit = Edit(n, kind, member, ref, value, person)
        self.edits.append(edit)
        return edit

    def _status(self, member: str, ref: str) -> str:
        """Where the record is now: its Jira status, Trello list or Asana section (read under the emulator's lock)."""
        if member == "engineering":
            with self.sandbox.jira.lock:
                return self.sandbox.jira.state.issues[ref].status
        if member == "sales":
            with self.sandbox.trello.lock:
                state = self.sandbox.trello.state
                return state.lists[state.cards[ref].id_list].name
        with self.sandbox.asana.lock:
            task = self.sandbox.asana.state.tasks[ref]
            return task.memberships[0].section.name if task.memberships else ""

    def _create(self, member: str, person: str, title: str) -> str:
        if member == "engineering":
            return self.sandbox.jira.act_as(person).create("ENG", title, labels=["launch"])
        if member == "sales":
            return self.sandbox.trello.act_as(person).create_card("Requests", title)
        return self.sandbox.asana.act_as(person).create_task(title, section="Backlog")

    def _rename(self, member: str, person: str, ref: str, title: str) -> None:
        if member == "engineering":
            self.sandbox.jira.act_as(person).update(ref, summary=title)
        elif member == "sales":
            self.sandbox.trello.act_as(person).update_card(ref, name=title)
        else:
            self.sandbox.asana.act_as(person).update_task(ref, name=title)

    def _move(self, member: str, person: str, ref: str, status: str) -> None:
        if member == "engineering":
            self.sandbox.jira.act_as(person).transition(ref, status, resolution="Done")
        elif member == "sales":
            self.sandbox.trello.act_as(person).move_card(ref, status)
        else:
            self.sandbox.asana.act_as(person).move(ref, status)

    def _comment(self, member: str, person: str, ref: str, text: str) -> None:
        if member == "engineering":
            self.sandbox.jira.act_as(person).comment(ref, text)
        elif member == "sales":
            self.sandbox.trello.act_as(person).comment(ref, text)
        else:
            self.sandbox.asana.act_as(person).comment(ref, text)

    # ----- many edits, in the background ----------------------------------------------------------------------

    def start(self, count: int, duration_s: float) -> None:
        """Make ``count`` edits over about ``duration_s`` seconds in a thread (random gaps, seeded choices)."""

        def play() -> None:
            mean_gap = duration_s / max(1, count)
            try:
                for _ in range(count):
                    if self.stop.wait(self.random.uniform(0, 2 * mean_gap)):
                        return
                    self.step()
            except BaseException as error:  # handed to the test by wait(): a failed edit must fail the run
                self.error = error

        self._thread = threading.Thread(target=play, name="workload", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        """Whether the background edits are still being made."""
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout_s: float = 3600) -> None:
        """Wait for the background edits to end; re-raise what stopped them."""
        if self._thread is not None:
            self._thread.join(timeout_s)
            assert not self._thread.is_alive(), "the workload did not finish"
        if self.error is not None:
            raise self.error

    def summary(self) -> str:
        """How many edits of each kind were made, and in which tool."""
        kinds = Counter(edit.kind for edit in self.edits)
        tools = Counter(edit.member for edit in self.edits)
        return f"{len(self.edits)} edits {dict(sorted(kinds.items()))} by department {dict(sorted(tools.items()))}"


# ----- settling and checking -----------------------------------------------------------------------------------


def settle(group: Group, conns: dict[str, Connector], store: Store, max_passes: int = 12) -> list[PassReport]:
    """Run passes until one writes nothing, fails nothing and recovers nothing; fail if that never happens."""
    reports: list[PassReport] = []
    for _ in range(max_passes):
        report = Pass(group, conns, store).run()
        reports.append(report)
        if report.ok and report.writes == 0 and report.recovered == 0:
            return reports
        time.sleep(0.1)
    summary = [(r.writes, r.failures, r.recovered) for r in reports]
    raise AssertionError(f"not quiet after {max_passes} passes (writes, failures, recovered): {summary}")


SCOPE_BUG = "scope"
"""syncd creates a Jira mirror of a Sales- or Marketing-born item without Engineering's scope label (`launch`): the
issue is out of scope from birth, the item's next change unlinks it, the change after that creates another one with
the same marker (a duplicate), and Jira never hears of the item's changes."""
READBACK_BUG = "read-back"
"""syncd records the version of a record as read back after its write as its own: a person's edit landing between
the write and the read-back (a slow answer) is then skipped as syncd's echo and never mirrored (a lost edit)."""


@dataclass(frozen=True)
class Problem:
    """One broken invariant, about one item (``sync_id``) at one member where known; ``bug`` names a known cause."""

    text: str
    sync_id: str | None = None
    member: str | None = None
    bug: str | None = None


LOST_UPDATE = "lost-update"
"""A person's status move in Jira overwritten by an older value: seen after a kill landed part-way along a Jira
workflow (the intermediate status was taken for Engineering's change), and when a person's edit landed between
syncd's read and its write. Both fixed; see docs/reliability.md, finding 4."""


def verdict(problems: list[Problem]) -> None:
    """Fail on any problem, naming the known cause where there is one."""
    text = "\n".join(
        f"{p.member or '-'} {p.sync_id or '-'}: {p.text}" + (f" [{p.bug}]" if p.bug else "") for p in problems
    )
    assert problems == [], text


def existing_refs(sandbox: Sandbox) -> set[str]:
    """Every issue key, card id and task gid in the sandbox now (what :func:`check_marked` leaves alone)."""
    return {*sandbox.jira.state.issues, *sandbox.trello.state.cards, *sandbox.asana.state.tasks}


def check_marked(sandbox: Sandbox, before: set[str]) -> list[Problem]:
    """Every record syncd's account made since ``before`` carries one marker, and no marker is on two of a tool's.

    Read from the emulators' state, since an Asana record as syncd reads it carries no marker (it is an attachment).
    A record syncd made without its marker is a create whose answer was lost and never adopted: a duplicate.
    """
    bot = sandbox.trello.state.member_by_email(SERVICE_ACCOUNT).id
    made_cards = {
        a.id_card for a in sandbox.trello.state.actions if a.type == "createCard" and a.id_member_creator == bot
    }
    marked: dict[str, dict[str, list[str]]] = {
        "engineering": {
            key: [str((issue.properties.get("syncd") or {}).get("sync_id"))] if "syncd" in issue.properties else []
            for key, issue in sandbox.jira.state.issues.items()
            if issue.creator == SERVICE_ACCOUNT
        },
        "sales": {
            card.id: [a.url for a in card.attachments if a.url.startswith(MARKER_URL)]
            for card in sandbox.trello.state.cards.values()
            if card.id in made_cards
        },
        "marketing": {
            task.gid: [a.url for a in sandbox.asana.state.attachments.values() if a.parent is task]
            for task in sandbox.asana.state.tasks.values()
            if task.created_by.email == SERVICE_ACCOUNT
        },
    }
    problems: list[Problem] = []
    for member, records in marked.items():
        made = {ref: markers for ref, markers in records.items() if ref not in before}
        problems += [
            Problem(f"{ref} was made by syncd with {len(m)} markers", None, member)
            for ref, m in made.items()
            if len(m) != 1
        ]
        twice = Counter(m[0] for m in records.values() if len(m) == 1)
        problems += [Problem(f"{n} records carry marker {m}", None, member) for m, n in twice.items() if n > 1]
    return problems


def check_converged(group: Group, conns: dict[str, Connector], store: Store) -> list[Problem]:
    """The state machine's invariants once edits stopped and syncd settled (see tests/test_state_machine.py)."""
    quiet = Pass(group, conns, store).run()
    problems = [Problem(f"a further pass failed: {error}", sync_id) for sync_id, error in quiet.failures.items()]
    problems += [Problem(f"a further pass is not quiet: {p.steps}", p.sync_id) for p in quiet.plans if not p.quiet]
    with store.transaction() as tx:
        problems += [Problem(f"conflict held: {c.field}", c.sync_id) for c in tx.conflicts()]
        problems += [Problem(f"quarantined: {q.error}", q.sync_id) for q in tx.quarantined()]
        problems += [Problem(f"journal leftover {e.plan_id}", e.sync_id) for e in tx.journal_pending()]
    for member in MEMBERS:
        problems += _check_member(group, conns, store, member)
    verified = verify(store)
    if not verified.ok:
        problems.append(Problem(f"audit chain: {verified}"))
    return problems


def _check_member(group: Group, conns: dict[str, Connector], store: Store, member: str) -> list[Problem]:
    key = endpoint_key(group.name, member)
    codec = group.codecs[member]
    listing = conns[member].changes(None)
    markers = Counter(record.marker for record in listing.records if record.marker)
    problems = [
        Problem(f"{count} records carry this marker", marker, member) for marker, count in markers.items() if count > 1
    ]
    in_scope = [record for record in listing.records if codec.in_scope(record)]
    # Nobody in the workload takes a record out of scope: a marked record out of scope is a mirror born there.
    problems += [
        Problem(f"{record.ref} carries the item's marker but is out of scope", record.marker, member, SCOPE_BUG)
        for record in listing.records
        if record.marker and not codec.in_scope(record)
    ]
    with store.transaction() as tx:
        links = {link.ref: link for link in tx.endpoint_links(key)}
        bases: dict[str, dict[str, Any] | None] = {link.sync_id: tx.base(link.sync_id) for link in links.values()}
    for record in in_scope:
        link = links.get(record.ref)
        if link is None:
            problems.append(Problem(f"{record.ref} is in scope but no item links it", record.marker, member))
            continue
        base = bases[link.sync_id] or {}
        view = codec.align(codec.decode(record)[0], base)
        if view.archived:
            if not base.get(ARCHIVED):
                problems.append(Problem(f"{record.ref} archived here, not in the base", link.sync_id, member))
            continue
        differing = {
            name: (value, base.get(name))
            for name, value in view.values.items()
            if name in base and not same(value, base[name])
        }
        if differing:
            # Unchanged since syncd's last write by its version, yet not what syncd wrote: an edit taken for its own.
            bug = READBACK_BUG if record.version == link.version else None
            problems.append(Problem(f"{record.ref} differs from the base: {differing}", link.sync_id, member, bug))
    return problems


def check_nothing_lost(workload: Workload, group: Group, store: Store) -> list[Problem]:
    """Every edit of the workload is where it should be: see the module docstring for what that means."""
    problems: list[Problem] = []
    with store.transaction() as tx:
        sync_ids = {
            (edit.member, edit.ref): link.sync_id
            for edit in workload.edits
            if (link := tx.find_link(endpoint_key(group.name, edit.member), edit.ref)) is not None
        }
        links = {
            sync_id: {key.split("/", 1)[1]: link.ref for key, link in tx.links(sync_id).items()}
            for sync_id in sync_ids.values()
        }
        bases = {sync_id: tx.base(sync_id) or {} for sync_id in sync_ids.values()}
    titles: dict[str, Edit] = {}
    moves: dict[str, Edit] = {}
    for edit in workload.edits:
        sync_id = sync_ids.get((edit.member, edit.ref))
        if sync_id is None:
            problems.append(Problem(f"{edit} is on a record no item links", None, edit.member))
            continue
        if edit.kind in ("create", "rename"):
            titles[sync_id] = edit
        elif edit.kind == "move":
            moves[sync_id] = edit
        if edit.kind == "create":
            problems += _created_once(store, sync_id, edit, links[sync_id])
        elif edit.kind == "comment":
            problems += _commented_once(workload.sandbox, sync_id, edit, links[sync_id])
    for sync_id, edit in titles.items():
        if bases[sync_id].get("title") != edit.value:
            problems.append(Problem(f"title {bases[sync_id].get('title')!r}, but the last rename was {edit}", sync_id))
    for sync_id, edit in moves.items():
        wanted = JIRA_CANONICAL[edit.value] if edit.member == "engineering" else None
        if wanted is not None and bases[sync_id].get("status") != wanted:
            status = bases[sync_id].get("status")
            trail = "; ".join(status_trail(workload.sandbox, links[sync_id]))
            text = f"status {status!r}, but Engineering moved it last: {edit}; moves in the tools: {trail}"
            problems.append(Problem(text, sync_id, bug=LOST_UPDATE))
    return problems


def status_trail(sandbox: Sandbox, refs: dict[str, str]) -> list[str]:
    """Every status move of one item in the three tools, in time order, with who made it (to tell syncd's apart)."""
    moves: list[tuple[datetime, str]] = []
    if "engineering" in refs:
        with sandbox.jira.lock:
            issue = sandbox.jira.state.issues.get(refs["engineering"])
            for history in issue.histories if issue is not None else []:
                for item in history.items:
                    if item.field == "status":
                        text = f"jira {history.author}: {item.from_string} -> {item.to_string}"
                        moves.append((history.created, text))
    if "sales" in refs:
        with sandbox.trello.lock:
            state = sandbox.trello.state
            for action in state.actions:
                if action.id_card == refs["sales"] and "listAfter" in action.data:
                    before, after = action.data["listBefore"]["name"], action.data["listAfter"]["name"]
                    moves.append((action.date, f"trello {action.id_member_creator}: {before} -> {after}"))
    if "marketing" in refs:
        with sandbox.asana.lock:
            for story in sandbox.asana.state.stories.values():
                if story.task.gid == refs["marketing"] and story.resource_subtype == "section_changed":
                    moves.append((story.created_at, f"asana {story.created_by.email}: {story.text}"))
    return [f"{at:%H:%M:%S.%f} {text}" for at, text in sorted(moves, key=lambda move: move[0])]


def _created_once(store: Store, sync_id: str, edit: Edit, refs: dict[str, str]) -> list[Problem]:
    problems = [
        Problem(f"created in {edit.member} ({edit}), not linked here", sync_id, m) for m in MEMBERS if m not in refs
    ]
    creates = Counter(e.event.endpoint for e in events(store, sync_id=sync_id) if e.event.kind == "create")
    for member in MEMBERS:
        expected = 0 if member == edit.member else 1
        if creates[member] != expected:
            text = f"{creates[member]} create events here for an item created in {edit.member} ({edit})"
            problems.append(Problem(text, sync_id, member))
    return problems


def _commented_once(sandbox: Sandbox, sync_id: str, edit: Edit, refs: dict[str, str]) -> list[Problem]:
    problems: list[Problem] = []
    for member in MEMBERS:
        count = comments_with(sandbox, member, refs[member], edit.value) if member in refs else 0
        if count != 1:
            problems.append(Problem(f"comment {edit.value} is here {count} times ({edit})", sync_id, member))
    return problems


def comments_with(sandbox: Sandbox, member: str, ref: str, token: str) -> int:
    """How many comments on one record (original or mirrored copy) contain ``token``."""
    if member == "engineering":
        with sandbox.jira.lock:
            issue = sandbox.jira.state.issues.get(ref)
            return 0 if issue is None else sum(token in json.dumps(c.body) for c in issue.comments)
    if member == "sales":
        with sandbox.trello.lock:
            return sum(
                1
                for action in sandbox.trello.state.actions
                if action.type == "commentCard"
                and action.id_card == ref
                and not action.deleted
                and token in str(action.data.get("text", ""))
            )
    with sandbox.asana.lock:
        return sum(
            1
            for story in sandbox.asana.state.stories.values()
            if story.task.gid == ref and story.type == "comment" and token in story.text
        )


def wait_until(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    """Poll ``condition`` every 0.1 s until it is true; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.1)
