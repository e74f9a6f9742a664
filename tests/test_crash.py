"""Crash safety: `syncd once` is SIGKILLed at each crash point; the next run loses nothing and duplicates nothing.

Each test mirrors the seed, has people make a new item and a rename, kills the pass at one point of the executor,
then runs again without the crash: every tool holds the new item exactly once and the rename everywhere, a third
run writes nothing, the journal is empty, every mirror has exactly one create event, and the audit chain verifies.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sandbox.org import Sandbox
from syncd.audit import events, verify
from syncd.crash import POINTS
from syncd.store import Store
from tests.syncd_env import ROOT, SYNCD, syncd

NEW = "Partner launch kit"
RENAMED = "Bulk seat pricing, after the crash"


def _titles(sandbox: Sandbox) -> dict[str, Counter[str]]:
    return {
        "engineering": Counter(issue.summary for issue in sandbox.jira.state.issues.values()),
        "sales": Counter(card.name for card in sandbox.trello.state.cards.values()),
        "marketing": Counter(task.name for task in sandbox.asana.state.tasks.values()),
    }


def _store(environment: dict[str, str]) -> Store:
    return Store(environment["SYNCD_STORE"])


@pytest.mark.parametrize("point", POINTS)
def test_a_killed_pass_is_finished_by_the_next(sandbox: Sandbox, environment: dict[str, str], point: str) -> None:
    """Killed at ``point``, then run again: converged, no duplicate, no lost edit, audit consistent."""
    assert syncd(environment, "once").returncode == 0
    card = next(c for c in sandbox.trello.state.cards.values() if c.name == "Bulk seat pricing for resellers")
    key = next(k for k, i in sandbox.jira.state.issues.items() if i.summary == card.name)
    task = next(t for t in sandbox.asana.state.tasks.values() if t.name == card.name)
    sandbox.trello.act_as("eli@corp.example").update_card(card.id, name=RENAMED)
    sandbox.jira.act_as("ana@corp.example").create("ENG", NEW, labels=["launch"])
    sandbox.jira.act_as("ana@corp.example").comment(key, "Checked with legal.")

    killed = syncd({**environment, "SYNCD_CRASH_AT": point}, "once")
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    after = syncd(environment, "once")
    assert after.returncode == 0, after.stderr
    quiet = syncd(environment, "once")
    assert quiet.returncode == 0, quiet.stderr
    assert " 0 writes" in quiet.stderr

    titles = _titles(sandbox)
    for member, counted in titles.items():
        assert counted[NEW] == 1, (member, counted[NEW])
        assert counted[RENAMED] == 1, (member, counted[RENAMED])
        assert counted["Bulk seat pricing for resellers"] == 0, member
    # The comment: once in Jira (Ana's), exactly one copy in Trello and in Asana.
    assert len(sandbox.jira.state.issues[key].comments) == 1
    trello = [a for a in sandbox.trello.state.actions if a.type == "commentCard" and a.id_card == card.id]
    asana = [s for s in sandbox.asana.state.stories.values() if s.task is task and s.type == "comment"]
    assert len(trello) == 1
    assert len(asana) == 1
    store = _store(environment)
    try:
        assert verify(store).ok
        with store.transaction() as tx:
            assert tx.journal_pending() == []
            new_item = next(
                link.sync_id
                for link in tx.endpoint_links("launch-requests/engineering")
                if sandbox.jira.state.issues[link.ref].summary == NEW
            )
            renamed_item = next(
                link.sync_id for link in tx.endpoint_links("launch-requests/sales") if link.ref == card.id
            )
        creates = Counter(e.event.endpoint for e in events(store, sync_id=new_item) if e.event.kind == "create")
        assert creates == {"sales": 1, "marketing": 1}
        # Whether the pass or the recovery after the crash wrote the event, it names who made the change.
        assert {e.event.person for e in events(store, sync_id=new_item) if e.event.kind == "create"} == {
            "ana@corp.example"
        }
        renames = [
            e.event
            for e in events(store, sync_id=renamed_item)
            if isinstance(e.event.new, dict) and e.event.new.get("title") == RENAMED
        ]
        assert {event.endpoint for event in renames} >= {"engineering", "marketing"}
        assert {(event.people or {}).get("title") for event in renames} == {"eli@corp.example"}
    finally:
        store.close()


def test_an_asana_task_killed_before_its_marker_is_adopted_not_made_twice(
    sandbox: Sandbox, environment: dict[str, str]
) -> None:
    """Killed after Asana made the task and before its marker attachment: the next run adopts it by its name.

    The task exists without the marker that would name its item; recovery finds it among the tasks syncd's account
    created since the create was sent, attaches the marker, and links it: one task, one create event, no mirror
    of it made elsewhere as if it were a person's new task.
    """
    assert syncd(environment, "once").returncode == 0
    sandbox.jira.act_as("ana@corp.example").create("ENG", NEW, labels=["launch"])
    killed = syncd({**environment, "SYNCD_CRASH_AT": "mid-create"}, "once")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (task,) = [t for t in sandbox.asana.state.tasks.values() if t.name == NEW]
    assert not [a for a in sandbox.asana.state.attachments.values() if a.parent is task]

    after = syncd(environment, "once")
    assert after.returncode == 0, after.stderr
    quiet = syncd(environment, "once")
    assert " 0 writes" in quiet.stderr, quiet.stderr
    for member, counted in _titles(sandbox).items():
        assert counted[NEW] == 1, (member, counted[NEW])
    (marker,) = [a for a in sandbox.asana.state.attachments.values() if a.parent is task]
    store = _store(environment)
    try:
        with store.transaction() as tx:
            (link,) = [link for link in tx.endpoint_links("launch-requests/marketing") if link.ref == task.gid]
        assert marker.url.endswith(link.sync_id)
        creates = Counter(e.event.endpoint for e in events(store, sync_id=link.sync_id) if e.event.kind == "create")
        assert creates == {"sales": 1, "marketing": 1}
        assert verify(store).ok
    finally:
        store.close()


def _statuses(sandbox: Sandbox, title: str) -> tuple[str, str, str]:
    """Where the item called ``title`` sits in each tool: Jira status, Trello list, Asana section."""
    issue = next(i for i in sandbox.jira.state.issues.values() if i.summary == title)
    card = next(c for c in sandbox.trello.state.cards.values() if c.name == title)
    task = next(t for t in sandbox.asana.state.tasks.values() if t.name == title)
    return issue.status, sandbox.trello.state.lists[card.id_list].name, task.memberships[0].section.name


@pytest.mark.parametrize("how", ["moved", "created"])
def test_a_status_move_cut_short_is_finished_not_taken_for_engineerings(
    sandbox: Sandbox, environment: dict[str, str], how: str
) -> None:
    """Killed one transition into a Jira move (To Do -> In Progress -> In Review -> Done), syncd finishes the move.

    Sales puts an item in Done (moving a card there, or creating one there). Jira gets there in three transitions;
    killed after the first, the issue sits In Progress, a status nobody chose. Engineering owns status, so taking
    that for Engineering's change would move Sales' card back to Doing: recovery must finish the move instead, and
    every tool must end in Done with Sales' card never moved.
    """
    assert syncd(environment, "once").returncode == 0
    farah = sandbox.trello.act_as("farah@corp.example")
    if how == "moved":
        title = "Bulk seat pricing for resellers"
        card = next(c for c in sandbox.trello.state.cards.values() if c.name == title)
        farah.move_card(card.id, "Done")
    else:
        title = "Launch webinar, already delivered"
        farah.create_card("Done", title, idLabels=[_label(sandbox, "launch")])
        card = next(c for c in sandbox.trello.state.cards.values() if c.name == title)

    killed = syncd({**environment, "SYNCD_CRASH_AT": "mid-transition"}, "once")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    issue = next(i for i in sandbox.jira.state.issues.values() if i.summary == title)
    assert issue.status == "In Progress"  # the kill landed part-way along the workflow

    after = syncd(environment, "once")
    assert after.returncode == 0, after.stderr
    assert _statuses(sandbox, title) == ("Done", "Done", "Shipped")
    quiet = syncd(environment, "once")
    assert " 0 writes" in quiet.stderr, quiet.stderr
    moves = [a for a in sandbox.trello.state.actions if a.id_card == card.id and a.data.get("listAfter")]
    assert [a.data["listAfter"]["name"] for a in moves] == (["Done"] if how == "moved" else [])

    store = _store(environment)
    try:
        assert verify(store).ok
        with store.transaction() as tx:
            assert tx.journal_pending() == []
            sync_id = next(link.sync_id for link in tx.endpoint_links("launch-requests/sales") if link.ref == card.id)
        recorded = [e.event for e in events(store, sync_id=sync_id)]
    finally:
        store.close()
    outcomes = [(e.kind, e.endpoint, e.outcome) for e in recorded]
    assert ("write", "engineering", "begun before a crash; finished on recovery") in outcomes
    # Sales' status is never written back (Jira's default priority may reach the card: that is not a move).
    to_sales = [e.new for e in recorded if e.kind == "write" and e.endpoint == "sales"]
    assert not any("status" in (new or {}) for new in to_sales), outcomes


def test_a_persons_move_made_while_syncd_was_down_is_not_overwritten_by_recovery(
    sandbox: Sandbox, environment: dict[str, str]
) -> None:
    """Killed one transition into a create, syncd does not finish the move if a person moved the issue meanwhile.

    Farah creates a card in Done; syncd creates its Jira issue and is killed on the way to Done. Before it starts
    again, Ben moves the new issue back to To Do. Recovery reads the issue's changelog: the status was last changed
    by Ben, not by syncd, so his move is his edit (Engineering owns status): every tool ends in To Do.
    """
    assert syncd(environment, "once").returncode == 0
    title = "Launch webinar, moved back by Ben"
    farah = sandbox.trello.act_as("farah@corp.example")
    farah.create_card("Done", title, idLabels=[_label(sandbox, "launch")])
    killed = syncd({**environment, "SYNCD_CRASH_AT": "mid-transition"}, "once")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    key = next(k for k, i in sandbox.jira.state.issues.items() if i.summary == title)
    sandbox.clock.advance(1)
    sandbox.jira.act_as("ben@corp.example").transition(key, "To Do", resolution="Done")

    after = syncd(environment, "once")
    assert after.returncode == 0, after.stderr
    assert _statuses(sandbox, title) == ("To Do", "Requests", "Backlog")
    assert " 0 writes" in syncd(environment, "once").stderr


def test_a_person_moving_a_new_issue_back_to_syncds_earlier_value_keeps_their_status(
    sandbox: Sandbox, environment: dict[str, str]
) -> None:
    """A new item's Jira status went Done by syncd, then part-way to Doing, then back to Done by Ana: hers stands.

    Farah creates a card in Done; syncd's create is killed part-way along Jira's workflow, and the next pass's
    recovery finishes the walk to Done (syncd's own value there: an echo, since the new item has no base yet).
    Farah has meanwhile moved the card to Doing, so that pass walks the issue away from Done and is killed one
    transition in. Ana moves it back to Done. Her move put back the echo's value, but it is hers (the history says
    so), not syncd's: Engineering owns status, every tool ends in Done (found by the replicas chaos test).
    """
    assert syncd(environment, "once").returncode == 0
    title = "Launch webinar, moved back by Ana"
    farah = sandbox.trello.act_as("farah@corp.example")
    farah.create_card("Done", title, idLabels=[_label(sandbox, "launch")])
    killed = syncd({**environment, "SYNCD_CRASH_AT": "mid-transition"}, "once")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    card = next(c for c in sandbox.trello.state.cards.values() if c.name == title)
    sandbox.clock.advance(1)
    farah.move_card(card.id, "Doing")
    killed = syncd({**environment, "SYNCD_CRASH_AT": "mid-transition:3"}, "once")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    key = next(k for k, i in sandbox.jira.state.issues.items() if i.summary == title)
    assert sandbox.jira.state.issues[key].status == "To Do"  # on its way from Done to In Progress
    sandbox.clock.advance(1)
    sandbox.jira.act_as("ana@corp.example").transition(key, "Done", resolution="Done")

    after = syncd(environment, "once")
    assert after.returncode == 0, after.stderr
    assert _statuses(sandbox, title) == ("Done", "Done", "Shipped")
    quiet = syncd(environment, "once")
    assert " 0 writes" in quiet.stderr, quiet.stderr


def _label(sandbox: Sandbox, name: str) -> str:
    return next(label.id for label in sandbox.trello.state.labels.values() if label.name == name)


def _stopped(pid: int) -> bool:
    """Whether the process is stopped (SIGSTOP), as /proc says."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rpartition(")")[2].split()[0] == "T"


@contextmanager
def _paused_once(env: dict[str, str], point: str) -> Iterator[subprocess.Popen[str]]:
    """`syncd once`, stopped (SIGSTOP) at a crash point, for the block to edit and :func:`_resume`; killed if left."""
    command = [str(SYNCD), "once", "--config", env["CONFIG_DIR"], "--mappings", str(ROOT / "mappings")]
    paused = subprocess.Popen(
        command, env={**env, "SYNCD_STOP_AT": point}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not _stopped(paused.pid):
            if paused.poll() is not None or time.monotonic() > deadline:
                paused.kill()
                pytest.fail(f"the pass never reached {point}: {paused.communicate()}")
            time.sleep(0.05)
        yield paused
    finally:
        if paused.poll() is None:
            paused.kill()
            paused.communicate()


def _resume(paused: subprocess.Popen[str]) -> str:
    """SIGCONT the paused `syncd once` and wait for it to end; what it said on standard error."""
    paused.send_signal(signal.SIGCONT)
    return paused.communicate(timeout=60)[1]


def test_a_new_issue_a_person_moves_before_syncd_does_keeps_their_status(
    sandbox: Sandbox, environment: dict[str, str]
) -> None:
    """Jira creates an issue in its first status; syncd then moves it. A person's move in between is kept.

    Farah creates a card in Done; syncd creates its Jira issue (To Do) and is paused before moving it. Ben moves
    the issue to In Progress meanwhile. Resumed, syncd leaves it there instead of walking it on to Done over Ben's
    move, and since Engineering owns status the next pass carries In Progress to the others.
    """
    assert syncd(environment, "once").returncode == 0
    title = "Launch webinar, moved on by Ben"
    sandbox.trello.act_as("farah@corp.example").create_card("Done", title, idLabels=[_label(sandbox, "launch")])
    with _paused_once(environment, "new-issue") as paused:
        key, issue = next((k, i) for k, i in sandbox.jira.state.issues.items() if i.summary == title)
        assert issue.status == "To Do"
        sandbox.clock.advance(1)
        sandbox.jira.act_as("ben@corp.example").transition(key, "In Progress")
        stderr = _resume(paused)
    moves = [(h.author, item.to_string) for h in issue.histories for item in h.items if item.field == "status"]
    assert moves == [("ben@corp.example", "In Progress")], moves
    assert paused.returncode in {0, 1}, stderr

    after = syncd(environment, "once")
    assert after.returncode == 0, after.stderr
    assert _statuses(sandbox, title) == ("In Progress", "Doing", "In progress")
    assert " 0 writes" in syncd(environment, "once").stderr


def test_a_person_moving_an_issue_while_syncd_walks_it_ends_the_walk(
    sandbox: Sandbox, environment: dict[str, str]
) -> None:
    """A Jira move takes several transitions; a person's move between two of them is an edit, not a stop on the way.

    Farah moves a card to Done; syncd walks the issue To Do -> In Progress -> In Review -> Done and is paused after
    the first transition. Ben moves the issue back to To Do meanwhile. Resumed, syncd finds the issue where it did
    not leave it: it stops walking and plans the item again, where Ben's move (Engineering owns status) wins.
    """
    assert syncd(environment, "once").returncode == 0
    title = "Bulk seat pricing for resellers"
    card = next(c for c in sandbox.trello.state.cards.values() if c.name == title)
    sandbox.trello.act_as("farah@corp.example").move_card(card.id, "Done")
    with _paused_once(environment, "mid-transition") as paused:
        key, issue = next((k, i) for k, i in sandbox.jira.state.issues.items() if i.summary == title)
        assert issue.status == "In Progress"
        sandbox.clock.advance(1)
        sandbox.jira.act_as("ben@corp.example").transition(key, "To Do", resolution="Done")
        seen = len(issue.histories)
        stderr = _resume(paused)
    assert issue.histories[seen:] == [], [(h.author, h.items) for h in issue.histories[seen:]]
    assert paused.returncode == 1, stderr
    assert "was moved while syncd moved it" in stderr, stderr

    after = syncd(environment, "once")
    assert after.returncode == 0, after.stderr
    assert _statuses(sandbox, title) == ("To Do", "Requests", "Backlog")
    assert " 0 writes" in syncd(environment, "once").stderr


def test_a_rename_made_while_syncd_walks_an_issue_is_not_overwritten(
    sandbox: Sandbox, environment: dict[str, str]
) -> None:
    """syncd writes a Jira issue's other fields right after its version check, before the walk's transitions.

    Farah renames a card and moves it to Done; syncd writes the title and walks the issue to Done, and is paused
    after the first transition. Ben renames the issue meanwhile. Written after the walk, syncd's title would
    overwrite his (its version check is several requests old by then); written first, his rename stands, and
    the next pass carries it to the others (the later rename wins).
    """
    assert syncd(environment, "once").returncode == 0
    title = "Bulk seat pricing for resellers"
    card = next(c for c in sandbox.trello.state.cards.values() if c.name == title)
    key, issue = next((k, i) for k, i in sandbox.jira.state.issues.items() if i.summary == title)
    farah = sandbox.trello.act_as("farah@corp.example")
    farah.update_card(card.id, name="Seat pricing, Farah's title")
    farah.move_card(card.id, "Done")
    with _paused_once(environment, "mid-transition") as paused:
        assert issue.summary == "Seat pricing, Farah's title"  # written before the walk
        sandbox.clock.advance(1)
        sandbox.jira.act_as("ben@corp.example").update(key, summary="Seat pricing, Ben's title")
        stderr = _resume(paused)
    assert issue.summary == "Seat pricing, Ben's title", stderr
    assert issue.status == "Done"

    after = syncd(environment, "once")
    assert after.returncode == 0, after.stderr
    assert _titles(sandbox)["sales"]["Seat pricing, Ben's title"] == 1
    assert _statuses(sandbox, "Seat pricing, Ben's title") == ("Done", "Done", "Shipped")
    assert " 0 writes" in syncd(environment, "once").stderr


def test_a_pass_paused_past_its_lease_sends_nothing_when_it_resumes(
    sandbox: Sandbox, environment: dict[str, str]
) -> None:
    """A process frozen mid-write past its lease must not finish that write over what its heir and a person did.

    Farah moves a card to Done; a `syncd once` with a 2 s lease is frozen (SIGSTOP) one transition into Jira's
    move, between two requests. Another `syncd once` waits the lease out, takes the group, finishes the move, and
    then Ben moves the issue back to To Do (Engineering owns status). The frozen process, resumed, must send
    nothing: its remaining transitions would walk Ben's move forward with no audit event (the store fences its
    commit, the tools know no fence). It stops, saying its lease ran out; the next pass carries Ben's move to all.
    """
    env = {**environment, "SYNCD_LEASE_TTL_S": "2"}
    assert syncd(env, "once").returncode == 0
    title = "Bulk seat pricing for resellers"
    card = next(c for c in sandbox.trello.state.cards.values() if c.name == title)
    sandbox.trello.act_as("farah@corp.example").move_card(card.id, "Done")
    with _paused_once(env, "mid-transition") as paused:
        key, issue = next((k, i) for k, i in sandbox.jira.state.issues.items() if i.summary == title)
        assert issue.status == "In Progress"

        heir = syncd(env, "once", "--wait", "30")  # waits out the frozen process's lease
        assert heir.returncode == 0, heir.stderr
        assert _statuses(sandbox, title) == ("Done", "Done", "Shipped")
        sandbox.clock.advance(1)
        sandbox.jira.act_as("ben@corp.example").transition(key, "To Do", resolution="Done")
        seen = len(issue.histories)

        stderr = _resume(paused)
    assert issue.histories[seen:] == [], [(h.author, h.items) for h in issue.histories[seen:]]
    assert issue.status == "To Do"
    assert paused.returncode == 2, stderr
    # Stopped by the first of its threads to resume: a request checked against the lease by the process's clock
    # ("ran out ...: nothing more is sent to the tools"), or a commit the store fenced ("was lost").
    assert re.search(r"lease \d+ (ran out|was lost)", stderr), stderr

    after = syncd(env, "once")
    assert after.returncode == 0, after.stderr
    assert _statuses(sandbox, title) == ("To Do", "Requests", "Backlog")
    assert " 0 writes" in syncd(env, "once").stderr
