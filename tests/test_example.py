"""The shipped example (config/ + mappings/launch-requests.yaml) on the sandbox seed: every conflict rule decides.

People in three tools make the scripted edits of :mod:`sandbox.scenario`; `syncd once` runs as operators run
it; the held `manual` conflict is resolved with `syncd conflicts resolve`; then every tool holds the expected item,
the audit log names each rule that decided, and a further pass writes nothing.
"""

from __future__ import annotations

import json

from sandbox import scenario
from sandbox.org import Sandbox
from syncd.audit import events, verify
from syncd.demo.compare import EXPECTED_PRIORITY, subject_values
from syncd.store import Store
from tests.syncd_env import syncd


def test_every_rule_decides_its_conflict_on_the_shipped_example(sandbox: Sandbox, environment: dict[str, str]) -> None:
    assert syncd(environment, "once").returncode == 0
    refs = scenario.find(sandbox)
    scenario.play(sandbox, refs)
    first = syncd(environment, "once")
    assert first.returncode == 0, first.stderr

    # manual: the two dates wait for a person; nothing was overwritten.
    listed = syncd(environment, "status", "--format", "json", mappings=False)
    assert listed.returncode == 1  # something waits for a person
    assert json.loads(listed.stdout)["open_conflicts"] == 1
    store = Store(environment["SYNCD_STORE"])
    try:
        with store.transaction() as tx:
            (held,) = tx.conflicts()
        assert held.field == "due"
        assert held.values == {"sales": "2027-02-01", "marketing": "2027-02-03"}
        assert str(sandbox.jira.state.issues[refs.jira].duedate) == "2027-01-15"
        decided = syncd(
            environment, "conflicts", "resolve", held.id, "--take", scenario.MANUAL_TAKE, "--by", "lead", mappings=False
        )
        assert decided.returncode == 0, decided.stderr
        assert syncd(environment, "once").returncode == 0
        quiet = syncd(environment, "once")
        assert " 0 writes" in quiet.stderr

        issue = sandbox.jira.state.issues[refs.jira]
        card = sandbox.trello.state.cards[refs.trello]
        task = sandbox.asana.state.tasks[refs.asana]
        expected = scenario.EXPECTED
        assert issue.summary == card.name == task.name == expected["title"]
        assert (issue.status, card.id_list, task_section(sandbox, refs)) == (
            "Done",
            next(lst.id for lst in sandbox.trello.state.lists.values() if lst.name == "Done"),
            "Shipped",
        )
        assert issue.assignee == "ben@corp.example"
        assert task.assignee is not None
        assert task.assignee.email == "ben@corp.example"
        assert sorted(issue.labels) == expected["labels"]
        assert sorted(t.name for t in task.tags) == expected["labels"]
        assert (str(issue.duedate), str(task.due_on)) == (expected["due"], expected["due"])
        # priority (medium): Jira's own field, Trello's and Asana's Priority custom fields
        assert {tool: values["priority"] for tool, values in subject_values(sandbox, refs).items()} == EXPECTED_PRIORITY
        for line in scenario.DESCRIPTION_EDITS:
            assert line in card.desc

        with store.transaction() as tx:
            (item,) = {
                link.sync_id for link in tx.endpoint_links("launch-requests/engineering") if link.ref == refs.jira
            }
            assert tx.conflicts() == []
        rules = {e.event.rule for e in events(store, sync_id=item) if e.event.kind in {"conflict", "resolve"}}
        assert {
            "latest",
            "owner:engineering",
            "prefer:engineering,marketing,sales",
            "union",
            "merge-text",
            "manual",
        } <= rules
        assert verify(store).ok
    finally:
        store.close()


def task_section(sandbox: Sandbox, refs: scenario.Refs) -> str:
    """The section (status) of the subject's Asana task in its project."""
    return sandbox.asana.state.tasks[refs.asana].memberships[0].section.name
