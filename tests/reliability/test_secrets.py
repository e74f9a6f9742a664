"""Credentials never leave the process: not on stdout or stderr, in a log line, an audit event, /metrics or an error.

Distinctive values are planted where the configuration names credentials (environment variables and a
``{file: ...}`` credential), every command that touches them runs, and everything they print is searched. Wrong
values make every tool answer 401, the path where an error message is most tempted to quote what it sent; the
sandbox's real values drive the runs that must succeed, and must not show up either.
"""

from __future__ import annotations

import signal
import traceback
from pathlib import Path

import pytest

from connectors.factory import connector_for
from sandbox.org import Sandbox
from syncd.config import load_config
from syncd.errors import SyncdError
from tests.reliability import sandbox_environment
from tests.syncd_env import syncd
from tests.test_daemon import DaemonProcess, wait_for

MARK = "4c1d9e"
"""In every planted value: a partial or re-encoded leak still contains it."""
PLANTED = {
    "SYNCD_TRELLO_KEY": f"tok-SECRET-{MARK}-trello-key",
    "SYNCD_TRELLO_TOKEN": f"tok-SECRET-{MARK}-trello-token",
    "SYNCD_ASANA_TOKEN": f"tok-SECRET-{MARK}-asana-token",
    "SYNCD_JIRA_WEBHOOK_SECRET": f"tok-SECRET-{MARK}-jira-webhook",
    "SYNCD_TRELLO_SECRET": f"tok-SECRET-{MARK}-trello-secret",
}
JIRA_FILE_TOKEN = f"tok-SECRET-{MARK}-jira-file"


def configure(sandbox: Sandbox, tmp_path: Path, jira_token: str, values: dict[str, str]) -> dict[str, str]:
    """The sandbox configuration with Jira's token read from a file, webhook secrets named, and ``values`` set."""
    env = sandbox_environment(sandbox, tmp_path)
    token_file = tmp_path / "jira-token"
    token_file.write_text(jira_token + "\n")
    departments = Path(env["CONFIG_DIR"]) / "departments"
    jira = departments / "engineering.yaml"
    jira.write_text(
        jira.read_text().replace("{env: SYNCD_JIRA_TOKEN}", f"{{file: {token_file}}}")
        + "  webhook_secret: {env: SYNCD_JIRA_WEBHOOK_SECRET}\n"
    )
    trello = departments / "sales.yaml"
    trello.write_text(
        trello.read_text().replace("connection:\n", "connection:\n  secret: {env: SYNCD_TRELLO_SECRET}\n")
    )
    env.pop("SYNCD_JIRA_TOKEN")  # only the file holds Jira's token
    return {**env, **values, "SYNCD_LISTEN": "127.0.0.1:0", "SYNCD_POLL_INTERVAL_S": "0.5"}


def run_daemon(env: dict[str, str], outcome: str) -> list[str]:
    """`syncd run` until a pass ends with ``outcome``, a SIGHUP reload, another pass, /metrics and /readyz."""
    texts: list[str] = []
    with DaemonProcess(env) as daemon:
        daemon.wait_logged("pass", outcome=outcome, timeout_s=30)
        daemon.signal(signal.SIGHUP)
        daemon.wait_logged("reload.applied")
        count = len(daemon.logged("pass"))
        wait_for(lambda: len(daemon.logged("pass")) > count, 15, "a pass after the reload")
        texts += [daemon.get("/metrics").text, daemon.get("/readyz").text, daemon.get("/healthz").text]
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
        texts += daemon.raw
    return texts


def leaks(texts: list[str], secrets: list[str]) -> list[str]:
    """Each secret found in any text, with the start of the text it was found in."""
    return [f"{secret!r} in {text[:200]!r}" for text in texts for secret in secrets if secret in text]


def test_wrong_credentials_are_never_printed(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Planted values, refused by every tool: check, check --online, once, run (failing passes, a reload), audit."""
    env = configure(sandbox, tmp_path, JIRA_FILE_TOKEN, PLANTED)
    texts: list[str] = []
    offline = syncd(env, "check")
    assert offline.returncode == 0, offline.stderr
    online = syncd(env, "check", "--online")
    assert online.returncode == 2
    for name in ("engineering", "sales", "marketing"):
        assert f"{name}:" in online.stderr  # each refusal is named...
    once = syncd(env, "once")
    assert once.returncode == 2
    assert "Traceback" not in once.stderr
    audit = syncd(env, "audit", "--format", "jsonl", mappings=False)
    assert audit.returncode == 0, audit.stderr
    for done in (offline, online, once, audit):
        texts += [done.stdout, done.stderr]
    texts += run_daemon(env, "error")
    # The exceptions themselves, as a caller embedding syncd would log them (message, repr, traceback).
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = load_config(env["CONFIG_DIR"])
    for department in config.departments.values():
        with pytest.raises(SyncdError) as raised:
            connector_for(department).describe()
        texts += [str(raised.value), repr(raised.value), "".join(traceback.format_exception(raised.value))]
    secrets = [*PLANTED.values(), JIRA_FILE_TOKEN, MARK]
    assert sum("401" in text or "refused" in text or "rejected" in text for text in texts) >= 3, texts
    assert not leaks(texts, secrets)  # ...and no value is quoted, whole or in part


def test_real_credentials_are_never_printed(sandbox: Sandbox, tmp_path: Path) -> None:
    """The sandbox's own values, through runs that succeed: once (twice), audit jsonl, run with a reload."""
    credentials = sandbox.credentials()
    real = {
        "SYNCD_TRELLO_KEY": credentials["trello"]["key"],
        "SYNCD_TRELLO_TOKEN": credentials["trello"]["token"],
        "SYNCD_ASANA_TOKEN": credentials["asana"]["token"],
        "SYNCD_JIRA_WEBHOOK_SECRET": f"jira-webhook-{MARK}-real",
        "SYNCD_TRELLO_SECRET": credentials["trello"]["secret"],
    }
    env = configure(sandbox, tmp_path, credentials["jira"]["token"], real)
    texts: list[str] = []
    for args in (("check", "--online"), ("once",), ("once",)):
        done = syncd(env, *args)
        assert done.returncode == 0, done.stderr
        texts += [done.stdout, done.stderr]
    audit = syncd(env, "audit", "--format", "jsonl", mappings=False)
    assert audit.returncode == 0, audit.stderr
    assert audit.stdout.count("\n") > 40  # the first pass's creates and writes, each an event
    texts += [audit.stdout, audit.stderr]
    texts += run_daemon(env, "ok")
    assert not leaks(texts, [*real.values(), credentials["jira"]["token"], MARK])


def test_a_credential_typed_inline_is_not_echoed_beside_another_mistake(tmp_path: Path) -> None:
    """`tool: monday` and an inline token: both refused, the token's value never printed."""
    departments = tmp_path / "config" / "departments"
    departments.mkdir(parents=True)
    (tmp_path / "mappings").mkdir()
    (departments / "ops.yaml").write_text(f"connection:\n  tool: monday\n  token: {JIRA_FILE_TOKEN}\n")
    done = syncd({"CONFIG_DIR": str(tmp_path / "config")}, "check", mappings=False)
    assert done.returncode == 2
    assert "ops.yaml:2:" in done.stderr
    assert not leaks([done.stdout, done.stderr], [JIRA_FILE_TOKEN, MARK])
