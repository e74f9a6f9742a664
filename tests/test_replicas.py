"""Several `syncd run` replicas on one PostgreSQL store: groups shared, a dead replica's taken over, webhooks anywhere.

Real processes on the sandbox, each test on a database of its own. Besides the shipped group, two quiet groups
(Engineering alone, each scoped to a label nobody uses, creating nothing) give the replicas something to share.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sandbox.org import Sandbox
from syncd.store import Store
from tests.store.conftest import fresh_postgres_database
from tests.syncd_env import ROOT, syncd
from tests.test_daemon import GROUP, WEBHOOK_SECRET, DaemonProcess, mirrored, rename_card, wait_for

QUIET = ("quiet-a", "quiet-b")
TTL_S = 2.0

QUIET_MAPPING = """members:
  engineering: {{scope: {{labels: [{group}]}}}}
create_in: []
fields:
  title: {{rule: latest}}
"""


@pytest.fixture
def shared(environment: dict[str, str], tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """A PostgreSQL store of its own, a 2 s lease TTL, quick polls, a Jira webhook secret; three groups."""
    departments = Path(environment["CONFIG_DIR"]) / "departments"
    path = departments / "engineering.yaml"
    line = "  webhook_secret: {env: SYNCD_JIRA_WEBHOOK_SECRET}"
    path.write_text(path.read_text().replace("connection:\n", f"connection:\n{line}\n", 1))
    mappings = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", mappings)
    for group in QUIET:
        (mappings / f"{group}.yaml").write_text(QUIET_MAPPING.format(group=group))
    with fresh_postgres_database() as url:
        yield (
            {
                **environment,
                "SYNCD_STORE": url,
                "SYNCD_LEASE_TTL_S": str(TTL_S),
                "SYNCD_LISTEN": "127.0.0.1:0",
                "SYNCD_POLL_INTERVAL_S": "0.5",
                "SYNCD_WEBHOOK_DEBOUNCE_S": "0.2",
                "SYNCD_JIRA_WEBHOOK_SECRET": WEBHOOK_SECRET,
            },
            mappings,
        )


def owners(url: str) -> dict[str, str]:
    """Each group's live lease holder, from the store."""
    store = Store(url)
    try:
        now, rows = store.holders()
    finally:
        store.close()
    return {row.group: row.holder for row in rows if row.live(now)}


def owned(daemon: DaemonProcess) -> list[str]:
    answer: list[str] = daemon.get("/readyz").json()["groups_owned"]
    return answer


def replica(daemon: DaemonProcess) -> str:
    """The replica id a daemon logged at start."""
    found: str = daemon.wait_logged("started")["replica"]
    return found


def settled(url: str, daemons: list[DaemonProcess]) -> dict[str, str] | None:
    """Group -> replica once each group is held by exactly one of ``daemons`` (store and /readyz agree), each
    daemon holding some."""
    held = owners(url)
    claimed = {replica(daemon): owned(daemon) for daemon in daemons}
    by_readyz = {group: replica for replica, groups in claimed.items() for group in groups}
    everyone = (GROUP, *QUIET)
    if sorted(g for groups in claimed.values() for g in groups) != sorted(everyone) or held != by_readyz:
        return None
    if set(held.values()) != set(claimed):
        return None  # not spread yet (3 groups, 2 replicas: at most 2 each, so each owns one at least)
    return held


def sign(body: bytes) -> str:
    return "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()


class TestReplicas:
    def test_groups_are_shared_and_webhooks_reach_the_owner(self, shared: tuple[dict[str, str], Path]) -> None:
        """Two replicas: each group held by exactly one, both hold some; a delivery to either runs on the owner."""
        env, mappings = shared
        with DaemonProcess(env, mappings) as one, DaemonProcess(env, mappings) as two:
            held = wait_for(lambda: settled(env["SYNCD_STORE"], [one, two]), 30, "every group owned once")
            metrics = one.get("/metrics").text
            assert "syncd_replicas_live 2.0" in metrics
            for group in (GROUP, *QUIET):
                mine = 1.0 if held[group] == replica(one) else 0.0
                assert f'syncd_group_owned{{group="{group}"}} {mine}' in metrics
            owner, other = (one, two) if held[GROUP] == replica(one) else (two, one)
            owner.wait_logged("pass", group=GROUP, kind="full", outcome="ok", timeout_s=30)
            before = len(other.logged("pass", group=GROUP))  # it may have held the group before it was shared
            body = json.dumps({"issue": {"key": "ENG-1"}}).encode()
            answer = requests.post(
                other.url + "/webhooks/engineering", data=body, headers={"X-Hub-Signature": sign(body)}, timeout=10
            )
            # Engineering is in the quiet groups too: queued for those held here, forwarded for the rest.
            assert answer.status_code == 200
            expected = "queued" if replica(other) in {held[group] for group in QUIET} else "forwarded"
            assert answer.json() == {"outcome": expected}
            owner.wait_logged("hint.forwarded", group=GROUP, member="engineering", timeout_s=10)
            # Queued there: run as a targeted pass, folded into the running one, or absorbed by a due full pass
            # (polls are 0.5 s apart here); either way a pass of the owner's follows, and none of the other's.
            passes = len(owner.logged("pass", group=GROUP, outcome="ok"))
            wait_for(lambda: len(owner.logged("pass", group=GROUP, outcome="ok")) > passes, 10, "the owner's pass")
            assert len(other.logged("pass", group=GROUP)) == before
            assert not other.logged("hint.forwarded", group=GROUP)
            status = json.loads(syncd(env, "status", "--format", "json", mappings=False).stdout)
            assert {row["replica"] for row in status["replicas"] if row["live"]} == {replica(one), replica(two)}
            assert {name: each["owner"]["replica"] for name, each in status["groups"].items()} == held
            for daemon in (one, two):
                daemon.signal(signal.SIGTERM)
            assert [one.wait(), two.wait()] == [0, 0]

    def test_a_killed_owner_is_taken_over_within_two_ttls(
        self, sandbox: Sandbox, shared: tuple[dict[str, str], Path]
    ) -> None:
        """SIGKILL the shipped group's owner: the other replica takes it within ~2 TTLs and syncs a later edit."""
        env, mappings = shared
        with DaemonProcess(env, mappings) as one, DaemonProcess(env, mappings) as two:
            held = wait_for(lambda: settled(env["SYNCD_STORE"], [one, two]), 30, "every group owned once")
            owner, survivor = (one, two) if held[GROUP] == replica(one) else (two, one)
            owner.wait_logged("pass", group=GROUP, kind="full", outcome="ok", timeout_s=30)
            killed = time.monotonic()
            owner.process.kill()
            owner.wait()
            rename_card(sandbox, "Renamed after the owner died")
            survivor.wait_logged("lease.taken", group=GROUP, timeout_s=4 * TTL_S)
            took_s = time.monotonic() - killed
            assert took_s < 2 * TTL_S + 1.0, took_s  # its lease and registry row lapse within one TTL
            wait_for(lambda: mirrored(sandbox, "Renamed after the owner died"), 20, "the rename in Jira and Asana")
            wait_for(lambda: sorted(owned(survivor)) == sorted((GROUP, *QUIET)), 4 * TTL_S, "the survivor owning all")
            survivor.signal(signal.SIGTERM)
            assert survivor.wait() == 0
