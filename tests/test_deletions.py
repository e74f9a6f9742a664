"""A person deletes a mirrored Jira issue: the mirrors are archived within the deletion check, not an hour later.

Jira's search never shows a deleted issue, so when polling only a listing can tell; the Jira connector lists the
project's keys every ``deletion_check`` (five minutes by default) between its hourly full scans, and the engine
treats a linked key missing from that listing as deleted, under the same mass-deletion guard as a full scan. A
webhook (``jira:issue_deleted``) tells at once. Whole passes over the three sandbox tools: real connectors, the
shipped mapping (``on_delete: archive``), a real store. Time is moved on by ageing the stored cursor's record of
the last listing, as the daemon would find it five minutes later.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from connectors.base import Connector
from connectors.jira import JiraConnector
from sandbox.org import Sandbox
from sandbox.seed import SERVICE_ACCOUNT, token_for
from syncd.audit import events
from syncd.engine import Pass, endpoint_key
from syncd.mapping import Group
from syncd.store import Store, guards
from tests.connectors.receiver import Receiver
from tests.syncd_env import run

ROOT = Path(__file__).resolve().parent.parent
ANA = "ana@corp.example"


def mirrored(group: Group, connectors: dict[str, Connector], store: Store) -> list[dict[str, str]]:
    """Mirror the organisation and let it settle; every item's refs (member -> ref), linked at all three."""
    run(group, connectors, store)
    assert run(group, connectors, store) == 0
    with store.transaction() as tx:
        items = [
            {key.split("/", 1)[1]: link.ref for key, link in tx.links(link.sync_id).items()}
            for link in tx.endpoint_links(endpoint_key(group.name, "engineering"))
        ]
    return [refs for refs in items if len(refs) == len(group.codecs)]


def archived(connectors: dict[str, Connector], refs: dict[str, str]) -> dict[str, bool]:
    """Whether the item's Trello card and Asana task are archived, read through the connectors."""
    return {member: connectors[member].fetch([refs[member]])[0].archived for member in ("sales", "marketing")}


def age_deletion_check(group: Group, connectors: dict[str, Connector], store: Store) -> dict[str, str]:
    """Move the Jira cursor's last key listing one ``deletion_check`` into the past; the cursor as it was."""
    jira = connectors["engineering"]
    assert isinstance(jira, JiraConnector)
    key = endpoint_key(group.name, "engineering")
    with store.transaction() as tx:
        cursor = tx.cursor(key)
        assert cursor is not None
        aged = dict(cursor)
        aged["checked_at"] = (datetime.fromisoformat(cursor["checked_at"]) - jira.deletion_check).isoformat()
        tx.set_cursor(key, aged)
    return cursor


def jira_cursor(group: Group, store: Store) -> dict[str, str]:
    with store.transaction() as tx:
        cursor = tx.cursor(endpoint_key(group.name, "engineering"))
    assert cursor is not None
    return cursor


class TestJiraDeletions:
    def test_a_deleted_issue_is_archived_everywhere_once_the_check_is_due(
        self, sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store
    ) -> None:
        """Ana deletes a mirrored issue: polls before the check see nothing; the first after it archives both mirrors.

        The default interval (5 minutes) is the one used: the pass that archives is no full scan (``scanned_at``
        has not moved), so the deletion is seen within minutes, not at the next hourly scan.
        """
        jira = connectors["engineering"]
        assert isinstance(jira, JiraConnector)
        assert jira.deletion_check.total_seconds() == 300
        refs = mirrored(group, connectors, store)[0]
        sandbox.jira.act_as(ANA).delete(refs["engineering"])

        assert run(group, connectors, store) == 0  # not due: the feed cannot show a deletion
        assert archived(connectors, refs) == {"sales": False, "marketing": False}

        before = age_deletion_check(group, connectors, store)
        assert run(group, connectors, store) == 2
        assert archived(connectors, refs) == {"sales": True, "marketing": True}
        after = jira_cursor(group, store)
        assert after["scanned_at"] == before["scanned_at"]  # the hourly full scan is not what saw it
        assert datetime.fromisoformat(after["checked_at"]) > datetime.fromisoformat(before["checked_at"])
        with store.transaction() as tx:
            linked = {link.ref for link in tx.endpoint_links(endpoint_key(group.name, "engineering"))}
        assert refs["engineering"] not in linked
        archives = [e.event for e in events(store) if e.event.kind == "archive"]
        assert sorted(e.endpoint or "" for e in archives) == ["marketing", "sales"]
        assert all(e.message == "deleted at engineering" for e in archives)
        assert run(group, connectors, store) == 0

    def test_a_check_missing_most_issues_is_held_not_propagated(
        self, sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store
    ) -> None:
        """A listing that misses most linked issues (SideEmptied) no longer stops the group: what is confirmed gone
        is held by a mass-change guard whatever its number, nothing is archived, and the pass ends."""
        items = mirrored(group, connectors, store)
        assert len(items) >= 5
        ana = sandbox.jira.act_as(ANA)
        for refs in items:
            ana.delete(refs["engineering"])
        age_deletion_check(group, connectors, store)
        report = Pass(group, connectors, store).run()
        assert "lists 0 of" in report.emptied["engineering"]
        assert len(report.held) == len(items)
        assert not any(any(archived(connectors, refs).values()) for refs in items)
        with store.transaction() as tx:
            held = [guard for guard in guards.active(tx) if guard.state == "pending"]
        assert sorted(guard.endpoint for guard in held) == ["marketing", "sales"]
        assert all("listing emptied" in guard.reason for guard in held)

    def test_the_issue_deleted_webhook_archives_the_mirrors_at_once(
        self, sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store
    ) -> None:
        """jira:issue_deleted names the key; the hinted pass finds it gone, and archives the mirrors in that pass."""
        refs = mirrored(group, connectors, store)[0]
        hook = JiraConnector(
            base_url=sandbox.jira.url,
            user=SERVICE_ACCOUNT,
            token=token_for("jira", SERVICE_ACCOUNT),
            project_key="ENG",
            webhook_secret="hook-secret",
        )
        with Receiver() as receiver:
            hook.ensure_webhook(receiver.url)
            sandbox.jira.act_as(ANA).delete(refs["engineering"])
            (delivery,) = receiver.wait_for(1)
        assert b'"jira:issue_deleted"' in delivery.body
        keys = hook.verify_webhook(delivery.headers, delivery.body)
        assert keys == [refs["engineering"]]
        report = Pass(group, connectors, store).run(hints={"engineering": keys})
        assert report.ok, report.failures
        assert report.writes == 2
        assert archived(connectors, refs) == {"sales": True, "marketing": True}
        assert run(group, connectors, store) == 0
