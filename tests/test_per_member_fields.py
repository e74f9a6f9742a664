"""A field held by some members only, over the sandbox: labels shared by Jira and Trello, Asana's tags left alone.

Real connectors and a real store, with a copy of the shipped group whose ``labels`` say ``except: [marketing]``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.base import Connector
from connectors.factory import CAPABILITIES
from sandbox.asana import edits
from sandbox.org import Sandbox
from syncd.audit import verify
from syncd.mapping import Group, compile_group
from syncd.store import Store
from tests.syncd_env import ROOT, run

SHIPPED = "  labels: {rule: union}"


@pytest.fixture
def group(tmp_path: Path) -> Group:
    """The shipped group, its labels held by Engineering and Sales only."""
    text = (ROOT / "mappings" / "launch-requests.yaml").read_text()
    line = next(line for line in text.splitlines() if line.startswith(SHIPPED))
    path = tmp_path / "launch-requests.yaml"
    path.write_text(text.replace(line, "  labels: {rule: union, except: [marketing]}"))
    tools = {"engineering": "jira", "sales": "trello", "marketing": "asana"}
    return compile_group(path, tools, CAPABILITIES)


def _tags(sandbox: Sandbox) -> dict[str, list[str]]:
    return {gid: sorted(tag.name for tag in task.tags) for gid, task in sandbox.asana.state.tasks.items()}


def _labels(group: Group, connectors: dict[str, Connector], store: Store, member: str) -> dict[str, list[str]]:
    """sync_id -> the labels the member's mirror holds, decoded as syncd reads them."""
    codec = group.codecs[member]
    with store.transaction() as tx:
        links = {link.ref: link.sync_id for link in tx.endpoint_links(f"{group.name}/{member}")}
    return {
        links[record.ref]: codec.decode(record)[0].values.get("labels", [])
        for record in connectors[member].changes(None).records
        if record.ref in links
    }


class TestLabelsHeldByJiraAndTrello:
    def test_labels_mirror_between_jira_and_trello_and_asana_keeps_its_tags(
        self, sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store
    ) -> None:
        """Jira and Trello agree on every item's labels; Asana's tags are as its people left them, and syncd's
        own Asana tasks have none. A tag Gus adds, and a label Ana adds, each reach only where labels are held;
        a pass with no edits is quiet.
        """
        seeded = _tags(sandbox)
        assert any(seeded.values())  # the seed tags Asana tasks: they must stay as they are
        run(group, connectors, store)
        assert run(group, connectors, store) == 0
        jira, trello = (_labels(group, connectors, store, m) for m in ("engineering", "sales"))
        assert jira == trello
        assert len(jira) > len(seeded)  # every item is in both, Asana's included
        assert {"api", "launch"} <= {label for labels in jira.values() for label in labels}
        tags = _tags(sandbox)
        assert {gid: tags[gid] for gid in seeded} == seeded
        assert all(tags[gid] == [] for gid in tags.keys() - seeded.keys())

        task = next(t for t in sandbox.asana.state.tasks.values() if t.name == "Dark mode for the dashboard")
        gus = sandbox.asana.act_as("gus@corp.example")
        with sandbox.asana.lock:
            press = sandbox.asana.state.find_tag("press")
            assert press is not None
            edits.add_tag(sandbox.asana.state, gus.user, task, press)  # as POST /tasks/{gid}/addTag does
        assert run(group, connectors, store) == 0
        assert [t.name for t in task.tags] == ["press"]

        key = next(k for k, i in sandbox.jira.state.issues.items() if i.summary == "Dark mode for the dashboard")
        sandbox.jira.act_as("ana@corp.example").update(key, labels=["launch", "ui"])
        assert run(group, connectors, store) == 1  # Trello only
        assert run(group, connectors, store) == 0
        card = next(c for c in sandbox.trello.state.cards.values() if c.name == "Dark mode for the dashboard")
        assert sorted(sandbox.trello.state.labels[label].name for label in card.id_labels) == ["launch", "ui"]
        assert [t.name for t in task.tags] == ["press"]
        assert verify(store).ok
