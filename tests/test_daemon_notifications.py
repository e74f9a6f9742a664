"""`syncd run` delivering notifications: after a crash between commit and delivery the event is sent once on
restart; a target that refuses is retried with back-off while syncing goes on; its URL is never logged.

The daemon runs as a subprocess against the sandbox, as an operator runs it; Jira refusing its token is the event (an
endpoint failing for longer than the target's threshold, 0 s here), an HTTP receiver on 127.0.0.1 the target.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.core import FaultRule
from sandbox.org import Sandbox
from tests.notify_receivers import HttpReceiver
from tests.syncd_env import syncd
from tests.test_daemon import DaemonProcess, rename_card, titles, wait_for

TOKEN = "notify-receiver-token-7f3a9c"


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as running:
        yield running


def notifying(environment: dict[str, str], receiver: HttpReceiver) -> dict[str, str]:
    """A daemon environment whose Engineering department is told at once when its tool cannot be read."""
    departments = Path(environment["CONFIG_DIR"]) / "departments"
    path = departments / "engineering.yaml"
    section = "notify:\n  - {url: {env: SYNCD_NOTIFY_TOKEN_URL}, events: [endpoint_failing], failing_after_s: 0}\n"
    path.write_text(path.read_text().rstrip("\n") + "\n" + section)
    return {
        **environment,
        "SYNCD_LISTEN": "127.0.0.1:0",
        "SYNCD_POLL_INTERVAL_S": "0.5",
        "SYNCD_LEASE_TTL_S": "2",
        "SYNCD_NOTIFY_DIGEST_S": "0",
        "SYNCD_PUBLIC_URL": "https://syncd.corp.example",
        "SYNCD_NOTIFY_TOKEN_URL": receiver.url("/eng", TOKEN),
    }


def test_a_crash_between_commit_and_delivery_delivers_once_after_restart(
    sandbox: Sandbox, environment: dict[str, str], receiver: HttpReceiver
) -> None:
    """Killed just before sending, the daemon has committed the event; the next one sends it, exactly once."""
    env = notifying(environment, receiver)
    sandbox.jira.faults.add(FaultRule(kind="status", status=401))  # the token was revoked
    with DaemonProcess({**env, "SYNCD_CRASH_AT": "before-notify"}) as crashing:
        assert crashing.wait(timeout_s=60) == -signal.SIGKILL
    assert receiver.at("/eng") == []
    with DaemonProcess(env) as daemon:
        wait_for(lambda: receiver.at("/eng"), 40, "the notification after the restart")
        time.sleep(3)  # more rounds and passes, Jira still failing: nothing more is sent
        (sent,) = receiver.at("/eng")
        assert "engineering's tool cannot be read in group launch-requests" in sent["message"]
        assert len(daemon.logged("notify", outcome="sent")) == 1
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
        assert TOKEN not in "".join(daemon.raw)


def test_a_refusing_target_is_retried_and_syncing_goes_on(
    sandbox: Sandbox, environment: dict[str, str], receiver: HttpReceiver
) -> None:
    """The receiver answers 500 four times: the message is retried at once, then after a back-off, and arrives
    once; meanwhile a rename in Trello still reaches Asana; the logs name the target, never its URL."""
    receiver.refuse = 4
    env = notifying(environment, receiver)
    with DaemonProcess(env) as daemon:
        daemon.wait_ready()
        sandbox.jira.faults.add(FaultRule(kind="status", status=401))  # the token was revoked
        daemon.wait_logged("notify", outcome="retry", target="engineering/1")
        assert "syncd_notifications_unsent 1.0" in daemon.get("/metrics").text  # waiting out its back-off
        status = syncd(env, "status", "--format", "json", mappings=False)
        (waiting,) = json.loads(status.stdout)["notifications"]
        assert waiting["target"] == "engineering/1"
        assert (waiting["unsent"], waiting["attempts"]) == (1, 1)
        assert TOKEN not in status.stdout
        rename_card(sandbox, "Renamed while notifications fail")
        wait_for(lambda: "Renamed while notifications fail" in titles(sandbox)[2], 20, "the rename in Asana")
        wait_for(lambda: receiver.at("/eng"), 30, "the notification after its back-off")
        assert receiver.refused == 4
        wait_for(lambda: "syncd_notifications_unsent 0.0" in daemon.get("/metrics").text, 5, "the gauge at 0")
        (retry, *_) = daemon.logged("notify", outcome="retry")
        assert retry["attempts"] == 1
        assert retry["retry_in_s"] == 5.0
        assert retry["error"]  # what Apprise said, redacted
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
        logged = "".join(daemon.raw)
        assert TOKEN not in logged
        assert len(receiver.at("/eng")) == 1
