"""Credentials never leave the process: not on stdout or stderr, in a log line, an audit event, /metrics or an error.

Distinctive values are planted where the configuration names credentials (environment variables and a
``{file: ...}`` credential), every command that touches them runs, and everything they print is searched. Wrong
values make every tool answer 401, the path where an error message is most tempted to quote what it sent; the
sandbox's real values drive the runs that must succeed, and must not show up either.
"""

from __future__ import annotations

import base64
import signal
import sqlite3
import traceback
from pathlib import Path
from urllib.parse import quote

import pytest

from connectors.factory import connector_for
from sandbox.core import FaultRule
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


def real_values(sandbox: Sandbox) -> dict[str, str]:
    """The sandbox's own credentials in the variables the configuration names (they work: every call succeeds)."""
    credentials = sandbox.credentials()
    return {
        "SYNCD_TRELLO_KEY": credentials["trello"]["key"],
        "SYNCD_TRELLO_TOKEN": credentials["trello"]["token"],
        "SYNCD_ASANA_TOKEN": credentials["asana"]["token"],
        "SYNCD_JIRA_WEBHOOK_SECRET": f"jira-webhook-{MARK}-real",
        "SYNCD_TRELLO_SECRET": credentials["trello"]["secret"],
    }


def every_form(secrets: list[str], jira_user: str) -> list[str]:
    """Each secret, URL-encoded, and Jira's ``Authorization: Basic`` value (base64 of user:token hides the token)."""
    forms = [*secrets, *(quote(secret, safe="") for secret in secrets)]
    return forms + [base64.b64encode(f"{jira_user}:{secret}".encode()).decode() for secret in secrets]


def store_dump(database: Path) -> list[str]:
    """Every row of every table of the SQLite store, as text."""
    with sqlite3.connect(database) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return [repr(row) for table in tables for row in connection.execute(f'SELECT * FROM "{table}"')]  # noqa: S608 - names from sqlite_master


def test_an_error_page_that_echoes_the_request_is_never_quoted(sandbox: Sandbox, tmp_path: Path) -> None:
    """Every refusal quotes the request (Trello's URL with key and token, the others' Authorization header), as
    many proxies' error pages do: once, status, the audit export, the daemon's log, /readyz, /metrics and every
    table of the store show the refusal, never a credential."""
    real = real_values(sandbox)
    jira = sandbox.credentials()["jira"]
    env = configure(sandbox, tmp_path, jira["token"], real)
    secrets = every_form([*real.values(), jira["token"]], jira["email"])
    echoed = FaultRule(kind="status", status=401, echo=True)
    sandbox.trello.faults.add(echoed)
    texts: list[str] = []
    # Trello refuses every read: it is down, the items wait for it (a strike each, quoting why).
    down = syncd(env, "once")
    assert down.returncode == 2, down.stderr
    assert "not read" in down.stderr
    assert "AuthFailed" in down.stderr
    assert "key=***" in down.stderr  # the echoed URL is there, masked: the fault did quote it
    texts += [down.stdout, down.stderr]
    # Trello reads again; Jira and Asana refuse every write with the request quoted: items fail until held.
    sandbox.trello.faults.clear()
    for emulator in (sandbox.jira, sandbox.asana):
        emulator.faults.add(FaultRule(kind="status", status=400, writes=True, echo=True))
    for _ in range(3):
        failed = syncd(env, "once")
        assert failed.returncode == 1, failed.stderr
        assert "failed" in failed.stderr
        texts += [failed.stdout, failed.stderr]
    for args in (("status", "--format", "json"), ("quarantine", "list"), ("audit", "--format", "jsonl")):
        shown = syncd(env, *args, mappings=False)
        assert shown.returncode in (0, 1), shown.stderr
        texts += [shown.stdout, shown.stderr]
    assert '"quarantine"' in texts[-2]  # held items are audited, their message quoting the refusal
    sandbox.trello.faults.add(echoed)
    texts += run_daemon(env, "error")  # /readyz, /metrics, the log of passes with Trello down
    texts += store_dump(tmp_path / "syncd.db")
    assert any("Authorization: ***" in text for text in texts)  # the headers were quoted too, masked
    assert not leaks(texts, secrets)


def test_readyz_names_the_endpoint_and_error_class_only(sandbox: Sandbox, tmp_path: Path) -> None:
    """/readyz is unauthenticated: a failing endpoint is named with its error's class, never the tool's text."""
    real = real_values(sandbox)
    env = configure(sandbox, tmp_path, sandbox.credentials()["jira"]["token"], real)
    sandbox.trello.faults.add(FaultRule(kind="status", status=401, echo=True))
    with DaemonProcess(env) as daemon:
        daemon.wait_logged("pass", outcome="error", timeout_s=30)
        answer = daemon.get("/readyz").json()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    failing = {key: why for key, why in answer["not_ready"].items() if key.endswith("/sales")}
    assert failing, answer
    assert set(failing.values()) == {"last poll failed: AuthFailed"}


def test_a_store_url_password_is_not_quoted_by_check(tmp_path: Path) -> None:
    """A store URL syncd cannot use, with a password in it: `syncd check` refuses it without the password."""
    password = f"pw-{MARK}-store"
    (tmp_path / "departments").mkdir()
    (tmp_path / "syncd.yaml").write_text(f"store: mysql://syncd:{password}@db.example/syncd\n")
    for env in (
        {"CONFIG_DIR": str(tmp_path)},
        {"CONFIG_DIR": str(tmp_path), "SYNCD_STORE": f"oracle://u:{password}@h/d"},
    ):
        done = syncd(env, "check", mappings=False)
        assert done.returncode == 2
        assert "store" in done.stderr
        assert not leaks([done.stdout, done.stderr], [password, MARK])


def test_a_credential_written_as_the_variable_name_is_not_echoed(sandbox: Sandbox, tmp_path: Path) -> None:
    """`token: {env: <the token itself>}`: the variable is not set, and the message does not print its "name"."""
    env = configure(sandbox, tmp_path, sandbox.credentials()["jira"]["token"], real_values(sandbox))
    token = PLANTED["SYNCD_ASANA_TOKEN"]
    marketing = Path(env["CONFIG_DIR"]) / "departments" / "marketing.yaml"
    marketing.write_text(marketing.read_text().replace("{env: SYNCD_ASANA_TOKEN}", f"{{env: {token}}}"))
    texts: list[str] = []
    for args in (("check",), ("check", "--online"), ("once",)):
        done = syncd(env, *args)
        texts += [done.stdout, done.stderr]
    assert "marketing: the environment variable named in 'env'" in texts[3]
    assert not leaks(texts, [token, MARK])
