"""`syncd run` as a subprocess against the sandbox: polling, webhooks, health and metrics, signals, reloads.

The scheduling policy (debounce, de-duplication, backpressure, one pass per group) is tested in-process on a
fake clock; everything else runs the real command, as an operator would, and watches its JSON log lines.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import requests

from connectors.base import Connector
from sandbox.core import FaultRule
from sandbox.org import Sandbox
from syncd.audit import verify
from syncd.daemon import Job, Scheduler
from syncd.store import Store, guards
from tests.syncd_env import ROOT, SYNCD, syncd

GROUP = "launch-requests"
CARD = "Bulk seat pricing for resellers"
WEBHOOK_SECRET = "jira-webhook-secret-for-tests"


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll ``condition`` until it returns something truthy (and return it); fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DaemonProcess:
    """A running `syncd run`: its URL, its log lines (parsed), and signals."""

    def __init__(
        self, env: dict[str, str], mappings: Path = ROOT / "mappings", limits: Callable[[], None] | None = None
    ) -> None:
        """Start it; ``limits`` runs in the child before syncd does (resource limits the test imposes)."""
        self.secrets = [
            v for k, v in env.items() if k.startswith("SYNCD_") and ("TOKEN" in k or "SECRET" in k or "KEY" in k)
        ]
        command = [str(SYNCD), "run", "--config", env["CONFIG_DIR"], "--mappings", str(mappings)]
        # A test's resource limit is one setrlimit call in the child: it takes no lock another thread could hold.
        self.process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=limits,  # noqa: PLW1509
        )
        self.logs: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=30)
            self._reader.join(timeout=5)
            self.process.stdout.close()
            assert self.process.stderr is not None
            self.process.stderr.close()
            pytest.fail(f"syncd run exited {self.process.returncode} before listening:\n" + "".join(self.raw))
        self.url: str = json.loads(line)["listen"]

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.raw.append(line)
            try:
                self.logs.append(json.loads(line))
            except ValueError:
                self.logs.append({"event": "unparsed", "line": line})

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, timeout=10)

    def logged(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        return [e for e in list(self.logs) if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())]

    def wait_logged(self, event: str, timeout_s: float = 45, **fields: Any) -> dict[str, Any]:
        found: list[dict[str, Any]] = wait_for(lambda: self.logged(event, **fields), timeout_s, f"{event} {fields}")
        return found[-1]

    def wait_ready(self, timeout_s: float = 30) -> None:
        wait_for(lambda: self.get("/readyz").status_code == 200, timeout_s, "/readyz to answer 200")

    def signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout_s: float = 40) -> int:
        code = self.process.wait(timeout=timeout_s)
        self._reader.join(timeout=5)
        return code

    def __enter__(self) -> DaemonProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._reader.join(timeout=5)
        assert self.process.stdout is not None
        self.process.stdout.close()
        assert self.process.stderr is not None
        self.process.stderr.close()
        if exc_type is not None:
            return  # the test's own failure says more than these checks would
        logged = "".join(self.raw)
        assert "Traceback" not in logged, logged
        assert not [entry for entry in self.logs if "exception" in entry or entry["event"] == "unparsed"], logged
        assert self.secrets
        assert not [secret for secret in self.secrets if secret in logged], "a credential was logged"


def titles(sandbox: Sandbox) -> tuple[set[str], set[str], set[str]]:
    """Item titles in Jira, Trello and Asana (read under each emulator's lock)."""
    with sandbox.jira.lock:
        jira = {issue.summary for issue in sandbox.jira.state.issues.values()}
    with sandbox.trello.lock:
        trello = {card.name for card in sandbox.trello.state.cards.values()}
    with sandbox.asana.lock:
        asana = {task.name for task in sandbox.asana.state.tasks.values()}
    return jira, trello, asana


def rename_card(sandbox: Sandbox, new_name: str) -> None:
    """Eli renames the seeded card in Trello, as a person would."""
    with sandbox.trello.lock:
        card = next(c for c in sandbox.trello.state.cards.values() if c.name == CARD)
    sandbox.trello.act_as("eli@corp.example").update_card(card.id, name=new_name)


def mirrored(sandbox: Sandbox, name: str) -> bool:
    jira, _, asana = titles(sandbox)
    return name in jira and name in asana


@pytest.fixture
def quiet(tmp_path: Path) -> Path:
    """The shipped mappings, except that nothing is created: a start-up pass that reads but barely writes.

    For tests about the daemon itself, not about mirroring: the first pass of the real mapping takes seconds.
    """
    mappings = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", mappings)
    mapping = mappings / f"{GROUP}.yaml"
    text = mapping.read_text()
    assert "create_in: [engineering, sales, marketing]" in text
    mapping.write_text(text.replace("create_in: [engineering, sales, marketing]", "create_in: []"))
    return mappings


@pytest.fixture
def polling(environment: dict[str, str]) -> dict[str, str]:
    """A daemon environment: an ephemeral port and a short poll interval."""
    return {**environment, "SYNCD_LISTEN": "127.0.0.1:0", "SYNCD_POLL_INTERVAL_S": "0.5"}


class TestScheduler:
    """The scheduling policy alone, on a clock the test moves."""

    @pytest.fixture
    def clock(self) -> list[float]:
        return [100.0]

    @pytest.fixture
    def scheduler(self, clock: list[float]) -> Scheduler:
        scheduler = Scheduler(debounce_s=0.5, hint_limit=3, clock=lambda: clock[0])
        scheduler.set_groups({"g": 10.0})
        return scheduler

    def test_polls_at_start_then_one_interval_after_each_start(self, scheduler: Scheduler, clock: list[float]) -> None:
        """The first full pass is due at once; the next one interval after it started, whatever it took."""
        assert scheduler.take() == [Job("g", None)]
        assert scheduler.take() == []  # running: never two passes of one group
        clock[0] = 104.0
        scheduler.done(Job("g", None), started=100.0)
        clock[0] = 109.9
        assert scheduler.take() == []
        clock[0] = 110.0
        assert scheduler.take() == [Job("g", None)]

    def test_hints_are_debounced_deduplicated_and_wait_for_the_running_pass(
        self, scheduler: Scheduler, clock: list[float]
    ) -> None:
        """Repeated refs collapse; the targeted pass runs after the debounce and never beside a running pass."""
        scheduler.take()
        assert scheduler.hint("g", "sales", ["c1", "c1"]) == "queued"
        assert scheduler.hint("g", "sales", ["c1"]) == "queued"
        assert scheduler.hint("g", "marketing", ["t1"]) == "queued"
        clock[0] = 101.0
        assert scheduler.take() == []  # the full pass still runs: the hints wait
        scheduler.done(Job("g", None), started=100.0)
        assert scheduler.take() == [Job("g", {"sales": ["c1"], "marketing": ["t1"]})]
        scheduler.done(Job("g", {"sales": ["c1"]}), started=101.0)
        assert scheduler.hint("g", "sales", ["c2"]) == "queued"
        clock[0] = 101.2
        assert scheduler.take() == []  # debouncing
        clock[0] = 101.5
        assert scheduler.take() == [Job("g", {"sales": ["c2"]})]

    def test_a_due_full_pass_absorbs_waiting_hints(self, scheduler: Scheduler, clock: list[float]) -> None:
        """Hints waiting when a full pass starts are dropped: the change feed reads those changes anyway."""
        scheduler.take()
        scheduler.done(Job("g", None), started=100.0)
        scheduler.hint("g", "sales", ["c1"])
        clock[0] = 111.0
        assert scheduler.take() == [Job("g", None)]
        scheduler.done(Job("g", None), started=111.0)
        assert scheduler.take() == []

    def test_overflowing_hints_become_one_full_pass(self, scheduler: Scheduler, clock: list[float]) -> None:
        """Past the bound nothing more is queued; the group is flagged for an immediate full pass instead."""
        scheduler.take()
        scheduler.done(Job("g", None), started=100.0)
        assert scheduler.hint("g", "sales", ["c1", "c2"]) == "queued"
        assert scheduler.hint("g", "sales", ["c3", "c4"]) == "overflow"
        assert scheduler.hint("g", "sales", ["c5"]) == "overflow"
        assert scheduler.take() == [Job("g", None)]  # at once: no debounce, not waiting for the interval

    def test_a_running_pass_takes_the_hints_that_arrive_meanwhile(
        self, scheduler: Scheduler, clock: list[float]
    ) -> None:
        """Hints queued while the group's pass runs are handed to that pass, at once, and to no other pass."""
        scheduler.take()
        assert scheduler.take_hints("g") is None  # nothing queued
        scheduler.hint("g", "sales", ["c1", "c1"])
        scheduler.hint("g", "marketing", ["t1"])
        assert scheduler.take_hints("g") == {"sales": ["c1"], "marketing": ["t1"]}  # no debounce
        assert scheduler.take_hints("g") is None
        scheduler.done(Job("g", None), started=100.0)
        clock[0] = 101.0
        assert scheduler.take() == []  # taken by the running pass: no targeted pass follows for them

    def test_overflowed_hints_stay_a_full_pass(self, scheduler: Scheduler) -> None:
        """Once hints overflowed into a full pass, the running pass takes none: the full pass reads them all."""
        scheduler.take()
        scheduler.hint("g", "sales", ["c1", "c2", "c3", "c4"])
        assert scheduler.take_hints("g") is None
        scheduler.done(Job("g", None), started=100.0)
        assert scheduler.take() == [Job("g", None)]

    def test_a_closed_scheduler_hands_out_nothing(self, scheduler: Scheduler) -> None:
        """After shutdown begins, no pass starts and no hint is taken."""
        scheduler.close()
        assert scheduler.take() == []
        assert scheduler.hint("g", "sales", ["c1"]) == "ignored"


class TestPolling:
    def test_a_persons_edit_reaches_the_other_tools_and_is_measured(
        self, sandbox: Sandbox, polling: dict[str, str]
    ) -> None:
        """Eli renames a card in Trello; polling mirrors it to Jira and Asana; /metrics shows lag and requests."""
        with DaemonProcess(polling) as daemon:
            assert daemon.get("/healthz").status_code == 200
            daemon.wait_ready()
            rename_card(sandbox, "Renamed while polling")
            wait_for(lambda: mirrored(sandbox, "Renamed while polling"), 15, "the rename in Jira and Asana")
            daemon.wait_logged("pass", group=GROUP, kind="full", outcome="ok")
            metrics = daemon.get("/metrics").text
            assert "syncd_propagation_lag_seconds_bucket" in metrics
            lag_count = next(
                line for line in metrics.splitlines() if line.startswith("syncd_propagation_lag_seconds_count")
            )
            assert float(lag_count.split()[-1]) >= 2
            for tool in ("jira", "trello", "asana"):
                assert f'syncd_api_requests_total{{status="ok",tool="{tool}"}}' in metrics
            assert f'syncd_passes_total{{group="{GROUP}",outcome="ok"}}' in metrics
            assert "syncd_quarantined_items 0.0" in metrics
            head = next(line for line in metrics.splitlines() if line.startswith("syncd_audit_head_seq "))
            assert float(head.split()[-1]) > 0  # the rename's writes were audited
            assert not daemon.logged("webhook.registered")  # no public_url: polling only
            daemon.signal(signal.SIGTERM)
            assert daemon.wait() == 0
            daemon.wait_logged("shutdown.finished", timeout_s=1)
            checkpoint = daemon.logged("audit.head")[-1]  # logged at start and again at exit: a checkpoint
            assert checkpoint["seq"] >= float(head.split()[-1])
            assert len(checkpoint["hash"]) == 64

    def test_readyz_follows_a_tool_outage(self, sandbox: Sandbox, polling: dict[str, str], quiet: Path) -> None:
        """While Jira answers 503, /readyz is 503 naming Jira's endpoint; once it recovers, 200 again."""
        with DaemonProcess(polling, quiet) as daemon:
            daemon.wait_ready()
            sandbox.jira.faults.add(FaultRule(kind="status", status=503))
            answer = wait_for(
                lambda: (r := daemon.get("/readyz")).status_code == 503 and r.json(), 15, "/readyz to answer 503"
            )
            assert f"{GROUP}/engineering" in answer["not_ready"]
            assert answer["ready"] is False
            assert daemon.get("/healthz").status_code == 200  # alive, just not ready
            sandbox.jira.faults.clear()
            daemon.wait_ready(timeout_s=40)
            metrics = daemon.get("/metrics").text
            assert 'syncd_api_requests_total{status="ServiceUnavailable",tool="jira"}' in metrics


class TestMassChangeGuard:
    def test_readyz_names_a_held_mass_archive_and_clears_once_confirmed(
        self, sandbox: Sandbox, polling: dict[str, str], connectors: dict[str, Connector]
    ) -> None:
        """6 of 29 cards archived in Trello, over a threshold of 3: /readyz stays 200 but degraded, naming both
        guarded endpoints, the guard ids and why, and `syncd status` on its store exits 1 naming them; an Asana
        rename still reaches Jira and Trello; after `syncd guard confirm` (while the daemon runs) /readyz is no
        longer degraded, the next pass applies the held archives and `syncd status` exits 0.
        """
        # A low threshold keeps the test short: the daemon paces its requests as in production.
        guarded = {**polling, "SYNCD_MASS_CHANGE": '{"max_items": 3, "max_share": 0.1, "window_s": 600}'}
        with DaemonProcess(guarded) as daemon:
            daemon.wait_ready(timeout_s=60)
            cards = wait_for(lambda: len(open_cards(sandbox)) == 29 and open_cards(sandbox), 60, "29 mirrored cards")
            gone = [card for card in sorted(cards) if cards[card] != CARD][:6]
            eli = sandbox.trello.act_as("eli@corp.example")
            for card in gone:
                eli.archive(card)

            def readyz() -> tuple[int, dict[str, Any]]:
                answer = daemon.get("/readyz")
                return answer.status_code, answer.json()

            def grown() -> tuple[int, dict[str, Any]] | None:
                # The daemon may see the archives across two passes: the guard the first opened grows.
                now = readyz()
                return now if [guard["items"] for guard in now[1]["guards"]] == [6, 6] else None

            answer = wait_for(grown, 30, "/readyz to name the guards of all 6 archives")
            code, said = answer
            assert code == 200
            assert said["ready"] is True
            assert said["degraded"] is True
            held = {guard["endpoint"]: guard for guard in said["guards"]}
            assert sorted(held) == [f"{GROUP}/engineering", f"{GROUP}/marketing"]
            for endpoint, guard in held.items():
                assert guard["items"] == 6
                assert guard["why"] == f"6 archives at {endpoint.split('/')[1]} from sales held for a person"
                assert guard["decide"] == f"syncd guard show {guard['id']}"
            assert CARD not in said.__repr__()  # titles stay out of the unauthenticated route

            with sandbox.asana.lock:
                task = next(t.gid for t in sandbox.asana.state.tasks.values() if t.name == CARD)
            sandbox.asana.act_as("gus@corp.example").update_task(task, name="Renamed while a guard is pending")
            wait_for(
                lambda: (
                    "Renamed while a guard is pending" in titles(sandbox)[0]
                    and "Renamed while a guard is pending" in titles(sandbox)[1]
                ),
                20,
                "the Asana rename in Jira and Trello",
            )
            assert not any(archived_mirrors(connectors, guarded["SYNCD_STORE"], gone).values())
            status = syncd(guarded, "status", mappings=False)  # the CLI on the running daemon's store
            assert status.returncode == 1, status.stderr
            assert all(f"syncd guard show {guard['id']}" in status.stdout + status.stderr for guard in held.values())

            for guard in held.values():
                done = syncd(guarded, "guard", "confirm", guard["id"], "--by", "ops@corp.example", mappings=False)
                assert done.returncode == 0, done.stderr
            # /readyz lists pending guards only: once both are decided it is no longer degraded.
            settled = wait_for(lambda: not (now := readyz())[1]["guards"] and now, 30, "no guard to be pending")
            code, said = settled
            assert code == 200
            assert (said["ready"], said["not_ready"], said["degraded"]) == (True, {}, False)
            wait_for(lambda: unsettled(guarded["SYNCD_STORE"]) == 0, 30, "the next pass to apply both guards")
            assert all(archived_mirrors(connectors, guarded["SYNCD_STORE"], gone).values())
            status = syncd(guarded, "status", mappings=False)
            assert status.returncode == 0, status.stdout + status.stderr
            daemon.signal(signal.SIGTERM)
            assert daemon.wait() == 0


def open_cards(sandbox: Sandbox) -> dict[str, str]:
    """The open cards of the board: id -> name."""
    with sandbox.trello.lock:
        return {card.id: card.name for card in sandbox.trello.state.cards.values() if not card.closed}


def unsettled(store_url: str) -> int:
    """How many guards are not settled yet (pending, or decided and not applied)."""
    store = Store(store_url)
    try:
        with store.transaction() as tx:
            return len(guards.active(tx))
    finally:
        store.close()


def archived_mirrors(connectors: dict[str, Connector], store_url: str, cards: list[str]) -> dict[str, bool]:
    """Whether each Jira and Asana mirror of these cards is archived ("member:ref" -> archived), read in the tools."""
    store = Store(store_url)
    try:
        with store.transaction() as tx:
            items = [link.sync_id for link in tx.endpoint_links(f"{GROUP}/sales") if link.ref in cards]
            refs = [tx.links(sync_id) for sync_id in items]
    finally:
        store.close()
    found: dict[str, bool] = {}
    for member in ("engineering", "marketing"):
        wanted = [each[f"{GROUP}/{member}"].ref for each in refs]
        records = {record.ref: record.archived for record in connectors[member].fetch(wanted)}
        found |= {f"{member}:{ref}": records.get(ref, False) for ref in wanted}
    assert len(found) == 2 * len(cards)
    return found


class TestWebhooks:
    @pytest.fixture
    def signed(self, sandbox: Sandbox, environment: dict[str, str]) -> dict[str, str]:
        """Webhook secrets for Jira and Trello, and polls too rare to explain any mirror."""
        departments = Path(environment["CONFIG_DIR"]) / "departments"
        for name, line in (
            ("engineering", "  webhook_secret: {env: SYNCD_JIRA_WEBHOOK_SECRET}"),
            ("sales", "  secret: {env: SYNCD_TRELLO_SECRET}"),
        ):
            path = departments / f"{name}.yaml"
            path.write_text(path.read_text().replace("connection:\n", f"connection:\n{line}\n", 1))
        return {
            **environment,
            "SYNCD_LISTEN": "127.0.0.1:0",
            "SYNCD_POLL_INTERVAL_S": "600",
            "SYNCD_WEBHOOK_DEBOUNCE_S": "0.2",
            "SYNCD_JIRA_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "SYNCD_TRELLO_SECRET": sandbox.credentials()["trello"]["secret"],
        }

    def test_a_webhook_mirrors_at_once(self, sandbox: Sandbox, signed: dict[str, str]) -> None:
        """Registered at start in all three tools; a Trello edit reaches Jira and Asana with no poll due."""
        port = free_port()  # the public URL names the port, so it is chosen before the start
        hooked = {**signed, "SYNCD_LISTEN": f"127.0.0.1:{port}", "SYNCD_PUBLIC_URL": f"http://127.0.0.1:{port}"}
        with DaemonProcess(hooked) as daemon:
            for department in ("engineering", "sales", "marketing"):
                daemon.wait_logged("webhook.registered", department=department)
            daemon.wait_logged("webhook.handshake", department="marketing", timeout_s=1)
            daemon.wait_logged("pass", group=GROUP, kind="full", outcome="ok")
            rename_card(sandbox, "Renamed by webhook")
            wait_for(lambda: mirrored(sandbox, "Renamed by webhook"), 10, "the rename in Jira and Asana")
            daemon.wait_logged("webhook", department="sales", outcome="queued")
            wait_for(
                lambda: [p for p in daemon.logged("pass", kind="hinted", outcome="ok") if p["writes"] >= 2],
                5,
                "a targeted pass writing the two mirrors",
            )
            assert len(daemon.logged("pass", kind="full")) == 1  # only the start-up poll: the webhook did it

    def test_after_a_restart_asana_webhooks_are_verified_again(self, sandbox: Sandbox, signed: dict[str, str]) -> None:
        """Asana's secret is agreed at creation only and kept in the store: a restart keeps the webhook, verifies
        its deliveries with the stored secret, and never prints it."""
        port = free_port()
        hooked = {**signed, "SYNCD_LISTEN": f"127.0.0.1:{port}", "SYNCD_PUBLIC_URL": f"http://127.0.0.1:{port}"}
        with DaemonProcess(hooked) as first:
            first.wait_logged("webhook.handshake", department="marketing")
            first.wait_logged("webhook.registered", department="marketing")
            first.wait_logged("pass", group=GROUP, kind="full", outcome="ok")
            first.signal(signal.SIGTERM)
            assert first.wait() == 0
        with sandbox.asana.lock:
            hooks = {gid: hook.secret for gid, hook in sandbox.asana.state.webhooks.items()}
        assert len(hooks) == 1
        with DaemonProcess(hooked) as second:
            second.secrets.extend(hooks.values())  # a credential: in no log line (checked as the daemon exits)
            second.wait_logged("webhook.registered", department="marketing", id=next(iter(hooks)))
            second.wait_logged("pass", group=GROUP, kind="full", outcome="ok")
            with sandbox.asana.lock:
                assert {gid: hook.secret for gid, hook in sandbox.asana.state.webhooks.items()} == hooks
                task = next(t.gid for t in sandbox.asana.state.tasks.values() if t.name == "Launch blog post")
            sandbox.asana.act_as("gus@corp.example").update_task(task, name="Renamed in Asana after a restart")
            wait_for(lambda: "Renamed in Asana after a restart" in titles(sandbox)[0], 10, "the Asana rename in Jira")
            daemon_saw = second.logged("webhook", department="marketing", outcome="queued")
            assert daemon_saw, "the rename arrived by webhook, verified with the stored secret"
            assert not second.logged("webhook.handshake")  # the webhook was kept, not replaced
            assert not second.logged("webhook.secret_unknown")
            assert not second.logged("webhook", department="marketing", outcome="unauthorized")

    def test_bad_deliveries_are_refused_and_queue_nothing(self, signed: dict[str, str], quiet: Path) -> None:
        """A wrong signature is 401, an oversized body 413, a signed body naming no issue 400; HEAD is 200."""
        with DaemonProcess(
            signed, quiet
        ) as daemon:  # no public URL: nothing registered, so every delivery here is the test's
            daemon.wait_logged("pass", group=GROUP, kind="full", outcome="ok")
            hook = daemon.url + "/webhooks/engineering"

            def post(body: bytes, secret: str = WEBHOOK_SECRET, **headers: str) -> int:
                signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
                answer = requests.post(hook, data=body, headers={"X-Hub-Signature": signature, **headers}, timeout=10)
                return answer.status_code

            assert post(json.dumps({"issue": {"key": "ENG-2"}}).encode(), secret="not-the-secret") == 401
            assert requests.post(daemon.url + "/webhooks/sales", data=b'{"action": {}}', timeout=10).status_code == 401
            assert post(b"x" * 1_048_577) == 413
            assert post(b'{"no": "issue"}') == 400
            assert requests.head(daemon.url + "/webhooks/sales", timeout=10).status_code == 200
            assert requests.post(daemon.url + "/webhooks/nobody", data=b"{}", timeout=10).status_code == 404
            handshake = requests.post(daemon.url + "/webhooks/marketing", headers={"X-Hook-Secret": "mine"}, timeout=10)
            assert handshake.status_code == 403  # no registration under way: nobody may replace the secret
            assert daemon.logged("webhook", department="engineering", outcome="unauthorized")
            # A good delivery last: its targeted pass carries its one ref, so the refused ones queued nothing.
            assert post(json.dumps({"issue": {"key": "ENG-1"}}).encode()) == 200
            hinted = daemon.wait_logged("pass", kind="hinted", outcome="ok")
            assert hinted["hinted_refs"] == 1
            assert len(daemon.logged("pass", kind="hinted")) == 1
            assert (
                'syncd_webhooks_total{department="engineering",outcome="unauthorized"} 1.0'
                in daemon.get("/metrics").text
            )


class TestSignals:
    def test_sigterm_mid_pass_finishes_it_and_loses_nothing(self, sandbox: Sandbox, polling: dict[str, str]) -> None:
        """SIGTERM while the first pass mirrors the organisation: it completes, exit 0, then all converges."""
        sandbox.set_latency(15)
        with DaemonProcess(polling) as daemon:
            wait_for(lambda: len(titles(sandbox)[0]) > 12, 30, "the first mirrors in Jira")  # seeded: 12 issues
            daemon.signal(signal.SIGTERM)
            assert daemon.wait() == 0
            draining = daemon.wait_logged("shutdown.draining", timeout_s=1)
            assert draining["passes"] == 1  # it was mid-pass
            assert daemon.logged("pass", group=GROUP, outcome="ok")
            daemon.wait_logged("shutdown.finished", timeout_s=1)
        sandbox.set_latency(0)
        first = syncd(polling, "once")
        assert first.returncode == 0, first.stderr
        second = syncd(polling, "once")
        assert second.returncode == 0, second.stderr
        assert " 0 writes" in second.stderr
        store = Store(polling["SYNCD_STORE"])
        try:
            assert verify(store).ok
        finally:
            store.close()

    def test_a_second_sigterm_exits_at_once(self, sandbox: Sandbox, polling: dict[str, str]) -> None:
        """An operator who insists gets the process gone now, with a non-zero code (the journal covers the rest)."""
        sandbox.set_latency(15)
        with DaemonProcess(polling) as daemon:
            wait_for(lambda: len(titles(sandbox)[0]) > 12, 30, "the first mirrors in Jira")
            daemon.signal(signal.SIGTERM)
            daemon.wait_logged("shutdown.draining", timeout_s=5)
            daemon.signal(signal.SIGTERM)
            # Forced: exit 143 well before the graceful drain's shutdown_timeout_s (30 s) would end it with 0 or 1
            # (the exit once took over 5 s in a full CI run on this 2-core machine; not reproduced alone).
            assert daemon.wait(timeout_s=15) == 128 + signal.SIGTERM
            assert daemon.logged("shutdown.forced")
            assert not daemon.logged("shutdown.finished")

    def test_sighup_applies_a_good_config_and_keeps_running_on_a_broken_one(
        self, polling: dict[str, str], quiet: Path
    ) -> None:
        """A broken mapping is refused with its file:line error and the old one keeps syncing; a good one applies."""
        mapping = quiet / f"{GROUP}.yaml"
        good = mapping.read_text()
        with DaemonProcess(polling, quiet) as daemon:
            daemon.wait_ready()
            started = daemon.wait_logged("started")
            mapping.write_text(good.replace("rule: latest", "rule: lastest", 1))
            daemon.signal(signal.SIGHUP)
            rejected = daemon.wait_logged("reload.rejected")
            assert any(f"{GROUP}.yaml:" in error for error in rejected["errors"]), rejected
            assert rejected["kept"] == started["config_version"]
            passes = len(daemon.logged("pass", outcome="ok"))
            wait_for(lambda: len(daemon.logged("pass", outcome="ok")) > passes, 10, "passes to continue")
            assert daemon.get("/readyz").status_code == 200
            mapping.write_text(good.replace("comments: true", "comments: false"))
            daemon.signal(signal.SIGHUP)
            applied = daemon.wait_logged("reload.applied")
            assert applied["config_version"] != started["config_version"]
            passes = len(daemon.logged("pass", outcome="ok"))
            wait_for(lambda: len(daemon.logged("pass", outcome="ok")) > passes, 10, "passes after the reload")
            daemon.signal(signal.SIGTERM)
            assert daemon.wait() == 0


def test_the_command_is_documented() -> None:
    """`syncd run --help` describes the daemon (and the import stays lazy enough to answer quickly)."""
    done = subprocess.run([str(SYNCD), "run", "--help"], capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0
    assert "SIGTERM" in done.stdout
