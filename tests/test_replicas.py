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
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

import pytest
import requests

from sandbox.org import Sandbox
from syncd.store import Store
from tests.store.conftest import fresh_postgres_database
from tests.syncd_env import ROOT, syncd
from tests.test_daemon import (
    GROUP,
    WEBHOOK_SECRET,
    DaemonProcess,
    free_port,
    mirrored,
    rename_card,
    titles,
    wait_for,
)

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


class Balancer:
    """A load balancer in front of the replicas on 127.0.0.1: each request goes to ``backend``, switched at will."""

    HOP = frozenset({"host", "content-length", "connection", "transfer-encoding", "keep-alive"})

    def __init__(self) -> None:
        self.backend = ""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in Balancer.HOP}
                answer = requests.post(owner.backend + self.path, data=body, headers=headers, timeout=30)
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in Balancer.HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Balancer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()


def asana_hooks(sandbox: Sandbox) -> dict[str, str]:
    """Webhook gid -> secret, in the Asana emulator."""
    with sandbox.asana.lock:
        return {gid: hook.secret for gid, hook in sandbox.asana.state.webhooks.items()}


def rename_task(sandbox: Sandbox, old_name: str, new_name: str) -> None:
    """Gus renames a task in Asana, as a person would."""
    with sandbox.asana.lock:
        task = next(t.gid for t in sandbox.asana.state.tasks.values() if t.name == old_name)
    sandbox.asana.act_as("gus@corp.example").update_task(task, name=new_name)


def balanced(url: str, daemons: list[DaemonProcess]) -> dict[str, str] | None:
    """Group -> replica once every group is held once, each by its preferred owner (no hand-over to come)."""
    held = settled(url, daemons)
    views = [e["owners"] for e in daemons[0].logged("replicas") if len(e["live"]) == len(daemons)]
    return held if held is not None and views and views[-1] == held else None


def sign(body: bytes) -> str:
    return "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()


class TestReplicas:
    def test_groups_are_shared_webhooks_reach_the_owner_and_a_killed_owner_is_taken_over(
        self, sandbox: Sandbox, shared: tuple[dict[str, str], Path]
    ) -> None:
        """Two replicas: each group held by exactly one, both hold some; a delivery to either runs on the owner.
        Then the shipped group's owner is SIGKILLed: the other takes it within ~2 TTLs and syncs a later edit.

        One test, so the two replicas start and share the groups once (the sharing is most of its time).
        """
        env, mappings = shared
        with DaemonProcess(env, mappings) as one, DaemonProcess(env, mappings) as two:
            # Balanced, not only settled: a group about to be handed over would leave ``owner`` mid-test.
            held = wait_for(lambda: balanced(env["SYNCD_STORE"], [one, two]), 90, "each group with its owner")
            metrics = one.get("/metrics").text
            assert "syncd_replicas_live 2.0" in metrics
            for group in (GROUP, *QUIET):
                mine = 1.0 if held[group] == replica(one) else 0.0
                assert f'syncd_group_owned{{group="{group}"}} {mine}' in metrics
            owner, other = (one, two) if held[GROUP] == replica(one) else (two, one)
            owner.wait_logged("pass", group=GROUP, kind="full", outcome="ok", timeout_s=90)
            before = len(other.logged("pass", group=GROUP))  # it may have held the group before it was shared
            settled_passes = len(owner.logged("pass", group=GROUP, outcome="ok"))
            body = json.dumps({"issue": {"key": "ENG-1"}}).encode()
            answer = requests.post(
                other.url + "/webhooks/engineering", data=body, headers={"X-Hub-Signature": sign(body)}, timeout=10
            )
            # Engineering is in the quiet groups too: queued for those held here, forwarded for the rest.
            assert answer.status_code == 200
            expected = "queued" if replica(other) in {held[group] for group in QUIET} else "forwarded"
            assert answer.json() == {"outcome": expected}
            # The owner hears it by NOTIFY, or takes the change at its next poll (a notification sent before its
            # listener's LISTEN is not delivered, as PostgreSQL documents): either way its pass follows.
            wait_for(
                lambda: (
                    owner.logged("hint.forwarded", group=GROUP, member="engineering")
                    or len(owner.logged("pass", group=GROUP, outcome="ok")) > settled_passes
                ),
                90,
                "the owner to hear the hint or poll",
            )
            # Queued there: run as a targeted pass, folded into the running one, or absorbed by a due full pass
            # (polls are 0.5 s apart here); either way a pass of the owner's follows, and none of the other's.
            passes = len(owner.logged("pass", group=GROUP, outcome="ok"))
            wait_for(lambda: len(owner.logged("pass", group=GROUP, outcome="ok")) > passes, 90, "the owner's pass")
            assert len(other.logged("pass", group=GROUP)) == before
            assert not other.logged("hint.forwarded", group=GROUP)
            status = json.loads(syncd(env, "status", "--format", "json", mappings=False).stdout)
            assert {row["replica"] for row in status["replicas"] if row["live"]} == {replica(one), replica(two)}
            assert {name: each["owner"]["replica"] for name, each in status["groups"].items()} == held

            taken = len(other.logged("lease.taken", group=GROUP))  # it may have held the group before it was shared
            killed = time.monotonic()
            owner.process.kill()
            owner.wait()
            rename_card(sandbox, "Renamed after the owner died")
            wait_for(lambda: len(other.logged("lease.taken", group=GROUP)) > taken, 4 * TTL_S, "the group taken over")
            took_s = time.monotonic() - killed
            assert took_s < 2 * TTL_S + 1.0, took_s  # its lease and registry row lapse within one TTL
            wait_for(lambda: mirrored(sandbox, "Renamed after the owner died"), 20, "the rename in Jira and Asana")
            wait_for(lambda: sorted(owned(other)) == sorted((GROUP, *QUIET)), 4 * TTL_S, "the survivor owning all")
            other.signal(signal.SIGTERM)
            assert other.wait() == 0

    def test_asana_handshake_on_one_replica_deliveries_verified_on_another(
        self, sandbox: Sandbox, shared: tuple[dict[str, str], Path]
    ) -> None:
        """Behind one load balancer: the handshake reaches replica A, the secret goes to the store, a delivery to
        replica B verifies there and the change is synced by the group's owner; a webhook B registers again later
        has its handshake answered by A, and A verifies the next delivery with the new secret. Never printed."""
        env, mappings = shared
        with Balancer() as balancer:
            port = free_port()
            balancer.backend = f"http://127.0.0.1:{port}"  # everything reaches A, its own registration's handshake too
            hooked = {**env, "SYNCD_PUBLIC_URL": balancer.url}
            with DaemonProcess({**hooked, "SYNCD_LISTEN": f"127.0.0.1:{port}"}, mappings) as one:
                one.wait_logged("webhook.registered", department="marketing")
                one.wait_logged("webhook.handshake", department="marketing", registering="here")
                with DaemonProcess(hooked, mappings) as two:
                    first = asana_hooks(sandbox)
                    two.wait_logged("webhook.registered", department="marketing", id=next(iter(first)))
                    assert asana_hooks(sandbox) == first  # kept with the stored secret: no second webhook
                    held = wait_for(lambda: balanced(env["SYNCD_STORE"], [one, two]), 90, "each group with its owner")
                    owner = one if held[GROUP] == replica(one) else two
                    owner.wait_logged("pass", group=GROUP, kind="full", outcome="ok", timeout_s=90)

                    balancer.backend = two.url  # deliveries now reach B
                    rename_task(sandbox, "Launch blog post", "Renamed in Asana, delivered to B")
                    wait_for(lambda: "Renamed in Asana, delivered to B" in titles(sandbox)[0], 15, "the rename in Jira")
                    verified = two.wait_logged("webhook", department="marketing", timeout_s=10)
                    assert verified["outcome"] in {"queued", "forwarded"}, verified
                    if owner is one:
                        one.wait_logged("hint.forwarded", group=GROUP, member="marketing", timeout_s=10)

                    # Asana drops the webhook; B registers a new one (SIGHUP), its handshake reaching A.
                    with sandbox.asana.lock:
                        sandbox.asana.state.webhooks.clear()
                    balancer.backend = one.url
                    two.signal(signal.SIGHUP)
                    wait_for(lambda: asana_hooks(sandbox), 20, "a new Asana webhook")
                    second = asana_hooks(sandbox)
                    two.wait_logged("webhook.registered", department="marketing", id=next(iter(second)))
                    one.wait_logged("webhook.handshake", department="marketing", registering="elsewhere")
                    rename_task(sandbox, "Renamed in Asana, delivered to B", "Renamed in Asana, delivered to A")
                    wait_for(lambda: "Renamed in Asana, delivered to A" in titles(sandbox)[0], 15, "the rename in Jira")
                    wait_for(
                        lambda: [e for e in one.logged("webhook", department="marketing") if e["outcome"] != "no_refs"],
                        10,
                        "A verifying a delivery with the new secret",
                    )
                    for daemon in (one, two):
                        assert not daemon.logged("webhook", department="marketing", outcome="unauthorized")
                        daemon.secrets.extend([*first.values(), *second.values()])  # checked at exit: never logged
                    two.signal(signal.SIGTERM)
                    assert two.wait() == 0
                one.signal(signal.SIGTERM)
                assert one.wait() == 0
