"""Bad input: wrong configuration and mapping files, hostile webhook deliveries, odd data from the tools' APIs.

Each case states what a person or a tool might really send and what syncd must do with it: refuse a file with
its path, line and fix (and touch nothing), answer a delivery with the right status and queue nothing, report a
value it cannot map and leave it out rather than guess. docs/reliability.md has the catalogue as a table; a case
marked ``xfail(strict=True)`` asserts the behaviour syncd should have and does not yet (a finding).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import resource
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from connectors.base import Connector
from connectors.factory import CAPABILITIES
from connectors.pacing import RetryPolicy
from sandbox.jira.model import Status
from sandbox.org import Sandbox
from syncd.audit import verify
from syncd.cli import app
from syncd.engine import Pass, PassReport
from syncd.mapping import Group, compile_group
from syncd.store import Store, guards
from tests.reliability import sandbox_environment
from tests.syncd_env import ROOT, SYNCD, sandbox_connectors
from tests.test_daemon import DaemonProcess, wait_for

# ----- configuration and mapping files ---------------------------------------------------------------------

SYNCD_YAML = "config/syncd.yaml"
JIRA_YAML = "config/departments/engineering.yaml"
TRELLO_YAML = "config/departments/sales.yaml"
MAPPING = "mappings/launch-requests.yaml"


@dataclass(frozen=True)
class BadFile:
    """One broken file: which shipped file, the edit, and where and how syncd must point at the mistake."""

    file: str
    old: str
    new: str
    line: int
    fix: tuple[str, ...]
    """Words of the message that tell the person what to change."""
    encoding: str = "utf-8"
    """How the edited file is saved (a person's editor may save Latin-1 or UTF-16)."""


def case(id_: str, bad: BadFile, finding: str | None = None) -> object:
    """A parametrised case; ``finding`` marks one syncd gets wrong today (the test asserts the right behaviour)."""
    marks = [pytest.mark.xfail(strict=True, reason=finding)] if finding else []
    return pytest.param(bad, id=id_, marks=marks)


APPEND = "\x00append"
"""``old`` meaning: add ``new`` at the end of the file."""
EMPTY = "\x00empty"
"""``old`` meaning: replace the whole file by ``new``."""
LAUGHS = "lol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"lol{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]\n" for n in range(1, 9)
)
"""A 'billion laughs' file: nine levels of nine aliases, 387 million strings once expanded, in 484 bytes."""

BAD_FILES = [
    case("unknown-key", BadFile(SYNCD_YAML, "poll_interval_s: 30", "poll_intervall_s: 30", 3, ("'poll_intervall_s' is not a known setting", "remove it or check its spelling"))),  # noqa: E501
    case("wrong-type", BadFile(SYNCD_YAML, APPEND, "workers: many\n", 5, ("'workers'", "should be a valid integer"))),
    case("negative-poll-interval", BadFile(SYNCD_YAML, "poll_interval_s: 30", "poll_interval_s: -5", 3, ("'poll_interval_s'", "should be greater than 0"))),  # noqa: E501
    case("negative-webhook-limit", BadFile(SYNCD_YAML, APPEND, "max_webhook_bytes: -1\n", 5, ("'max_webhook_bytes'", "should be greater than 0"))),  # noqa: E501
    case("yaml-syntax", BadFile(SYNCD_YAML, "poll_interval_s: 30", "poll_interval_s: [30", 4, ("not valid YAML", "expected ',' or ']'"))),  # noqa: E501
    case("yaml-syntax-at-end", BadFile(SYNCD_YAML, APPEND, "listen: [127.0.0.1\n", 5, ("not valid YAML", "expected ',' or ']'"))),  # noqa: E501
    case("bad-store-url", BadFile(SYNCD_YAML, "store: sqlite:///var/syncd.db", "store: mysql//db.internal/syncd", 2, ("'store'", "sqlite:///", "postgresql+psycopg://"))),  # noqa: E501
    case("unknown-tool", BadFile(JIRA_YAML, "tool: jira", "tool: monday", 4, ("'jira', 'trello', 'asana'",))),
    case("missing-required-key", BadFile(JIRA_YAML, "  project: ENG\n", "", 4, ("'connection.project' is required but missing", "add it"))),  # noqa: E501
    case("inline-credential", BadFile(JIRA_YAML, "{env: SYNCD_JIRA_TOKEN}", "tok-typed-into-the-file", 7, ("{env: VARIABLE} or {file: PATH}",))),  # noqa: E501
    case("credential-env-and-file", BadFile(JIRA_YAML, "{env: SYNCD_JIRA_TOKEN}", "{env: SYNCD_JIRA_TOKEN, file: /run/secrets/jira}", 7, ("name exactly one of 'env'",))),  # noqa: E501
    case("people-not-by-email", BadFile(TRELLO_YAML, "  eli@corp.example: eli", "  eli: eli", 10, ("keyed by e-mail address", "not an e-mail: eli"))),  # noqa: E501
    case("zero-department-poll", BadFile(JIRA_YAML, APPEND, "poll_interval_s: 0\n", 11, ("'poll_interval_s'", "should be greater than 0"))),  # noqa: E501
    case("tab-indentation", BadFile(JIRA_YAML, "  project: ENG", "\tproject: ENG", 8, ("tab", "spaces"))),
    case("duplicate-key", BadFile(JIRA_YAML, APPEND, "connection:\n  tool: jira\n", 11, ("'connection'", "more than once"))),  # noqa: E501
    case("empty-department-file", BadFile(JIRA_YAML, EMPTY, "", 1, ("'connection' is required but missing", "add it"))),
    case("unknown-department", BadFile(MAPPING, "  marketing: {}\n", "  marketing: {}\n  finance: {}\n", 7, ("['finance'] have no file in config/departments/", "add one or fix the name"))),  # noqa: E501
    case("unknown-canonical-field", BadFile(MAPPING, "comments: true", "  colour: {rule: latest}\ncomments: true", 34, ("unknown fields ['colour']", "syncd mirrors"))),  # noqa: E501
    case("rule-names-non-member", BadFile(MAPPING, "owner: engineering", "owner: finance", 13, ("['finance'] are not members", "add them under 'members' or fix the name"))),  # noqa: E501
    case("unknown-rule", BadFile(MAPPING, "title: {rule: latest}", "title: {rule: lastest}", 10, ("'latest', 'union', 'merge-text' or 'manual'",))),  # noqa: E501
    case("bad-time-zone", BadFile(MAPPING, "Europe/Berlin", "Europe/Berlyn", 22, ("unknown time zone 'Europe/Berlyn'", "use an IANA name"))),  # noqa: E501
    case("value-map-non-string-key", BadFile(MAPPING, "{Requests: todo,", "{1: todo, Requests: todo,", 16, ("'fields.status.map.sales.1.[key]'", "should be a valid string"))),  # noqa: E501
    case("members-as-a-list", BadFile(MAPPING, "members:\n  engineering: {scope: {labels: [launch]}}\n  sales: {}\n  marketing: {}", "members: [engineering, sales, marketing]", 3, ("'members'", "should be a valid dictionary"))),  # noqa: E501
    case("unknown-on-delete", BadFile(MAPPING, "on_delete: archive", "on_delete: destroy", 8, ("'on_delete'", "'archive' or 'unlink'"))),  # noqa: E501
    case("owner-and-prefer", BadFile(MAPPING, "{owner: engineering}", "{owner: engineering, prefer: [sales]}", 13, ("a rule is a name", "{owner: dept} or {prefer: [...]}"))),  # noqa: E501
    case("mapping-tab-indentation", BadFile(MAPPING, "  labels: {rule: union}", "\tlabels: {rule: union}", 23, ("tab", "spaces"))),  # noqa: E501
    case("infinite-poll-interval", BadFile(SYNCD_YAML, "poll_interval_s: 30", "poll_interval_s: .inf", 3, ("'poll_interval_s'", "finite number"))),  # noqa: E501
    case("nan-shutdown-timeout", BadFile(SYNCD_YAML, APPEND, "shutdown_timeout_s: .nan\n", 5, ("'shutdown_timeout_s'", "finite number"))),  # noqa: E501
    case("poll-interval-over-a-day", BadFile(SYNCD_YAML, "poll_interval_s: 30", "poll_interval_s: 1e9", 3, ("'poll_interval_s'", "less than or equal to 86400"))),  # noqa: E501
    case("ten-thousand-workers", BadFile(SYNCD_YAML, APPEND, "workers: 10000\n", 5, ("'workers'", "less than or equal to 64"))),  # noqa: E501
    case("listen-without-port", BadFile(SYNCD_YAML, "listen: 127.0.0.1:8787", "listen: 127.0.0.1", 4, ("'listen'", "write host:port"))),  # noqa: E501
    case("listen-port-out-of-range", BadFile(SYNCD_YAML, "listen: 127.0.0.1:8787", "listen: 127.0.0.1:99999", 4, ("'listen'", "port 0 to 65535"))),  # noqa: E501
    case("public-url-not-a-url", BadFile(SYNCD_YAML, APPEND, "public_url: syncd.corp.example\n", 5, ("'public_url'", "write https://host"))),  # noqa: E501
    case("base-url-without-scheme", BadFile(JIRA_YAML, "base_url: http://127.0.0.1:8081", "base_url: jira.corp.example", 5, ("'connection.base_url'", "not an http(s) URL"))),  # noqa: E501
    case("base-url-with-password", BadFile(JIRA_YAML, "base_url: http://127.0.0.1:8081", "base_url: https://bot:pw@jira.corp.example", 5, ("'connection.base_url'", "no user or password"))),  # noqa: E501
    case("credential-file-dev-zero", BadFile(JIRA_YAML, "{env: SYNCD_JIRA_TOKEN}", "{file: /dev/zero}", 7, ("/dev/zero is not a regular file",))),  # noqa: E501
    case("credential-file-a-directory", BadFile(JIRA_YAML, "{env: SYNCD_JIRA_TOKEN}", "{file: /etc}", 7, ("/etc is not a regular file",))),  # noqa: E501
    case("billion-laughs", BadFile(SYNCD_YAML, APPEND, LAUGHS, 9, ("aliases expand to more than 10000 values", "use fewer aliases"))),  # noqa: E501
    case("alias-inside-itself", BadFile(SYNCD_YAML, APPEND, "loop: &loop [*loop]\n", 5, ("alias *loop is inside the collection it names",))),  # noqa: E501
    case("5000-nested-lists", BadFile(SYNCD_YAML, APPEND, "deep: " + "[" * 5000 + "]" * 5000 + "\n", 5, ("nested more than 100 levels deep", "flatten it"))),  # noqa: E501
    case("integer-of-5000-digits", BadFile(SYNCD_YAML, APPEND, "workers: " + "9" * 5000 + "\n", 5, ("a value cannot be read", "4300 digits"))),  # noqa: E501
    case("nul-byte", BadFile(JIRA_YAML, "project: ENG", "project: EN\x00G", 8, ("NUL byte", "save the file as UTF-8"))),
    case("control-character", BadFile(JIRA_YAML, "project: ENG", "project: EN\x07G", 8, ("control character U+0007", "remove it"))),  # noqa: E501
    case("latin-1", BadFile(TRELLO_YAML, "  eli@corp.example: eli", "  eli@corp.example: \u00e9li", 14, ("byte 0xe9 is not UTF-8", "save the file as UTF-8"), "latin-1")),  # noqa: E501
    case("utf-16", BadFile(MAPPING, APPEND, "", 1, ("saved as UTF-16", "save the file as UTF-8"), "utf-16")),
    case("larger-than-1-mib", BadFile(MAPPING, APPEND, "# " + "x" * 1_100_000 + "\n", 35, ("larger than 1024 KiB",))),
    case("write-target-not-in-map", BadFile(MAPPING, "engineering: {doing: In Progress}", "engineering: {doing: Done}", 19, ("engineering would write 'Done' for 'doing'", "write one of ['Blocked', 'In Progress', 'In Review']"))),  # noqa: E501
    case("mapping-duplicate-field", BadFile(MAPPING, "comments: true", "  title: {rule: manual}\ncomments: true", 34, ("'title'", "more than once"))),  # noqa: E501
]  # fmt: skip


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes: what must not change when a file is merely loaded."""
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("bad", BAD_FILES)
def test_a_bad_file_fails_check_with_its_line_and_fix(
    bad: BadFile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`syncd check` exits 2 naming the file, the line and the fix, and nothing on disk changes (no store made)."""
    for name in [name for name in os.environ if name.startswith("SYNCD_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # the shipped store URL is relative: a stray write would land here
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copytree(ROOT / "mappings", tmp_path / "mappings")
    path = tmp_path / bad.file
    text = path.read_text()
    if bad.old == APPEND:
        edited = text + bad.new
    elif bad.old == EMPTY:
        edited = bad.new
    else:
        assert text.count(bad.old) == 1, f"the edit must be unambiguous in {bad.file}"
        edited = text.replace(bad.old, bad.new)
    path.write_bytes(edited.encode(bad.encoding))
    before = snapshot(tmp_path)
    result = CliRunner().invoke(app, ["check", "--config", "config", "--mappings", "mappings"])
    assert snapshot(tmp_path) == before
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    problems = [line for line in result.stderr.splitlines() if bad.file in line]
    assert problems, result.stderr
    located = [line for line in problems if f"{bad.file}:{bad.line}: " in line]
    assert located, f"no problem at {bad.file}:{bad.line}:\n{result.stderr}"
    for words in bad.fix:
        assert any(words in line for line in located), f"{words!r} not in {located}"
    if "tok-typed-into-the-file" in edited:
        assert "tok-typed-into-the-file" not in result.output  # a credential typed in is never echoed back


# ----- the configuration as a whole ------------------------------------------------------------------------


def copy_file(source: str, target: str, edit: Callable[[str], str] = lambda text: text) -> Callable[[Path], None]:
    """An edit of the tree: ``source`` copied to ``target`` (a person's copy-and-rename), changed by ``edit``."""

    def apply(root: Path) -> None:
        (root / target).write_text(edit((root / source).read_text()))

    return apply


def big_credential_file(root: Path) -> None:
    """Engineering's token read from a 70,000-byte file (a log, a dump: anything but a token)."""
    (root / "token").write_text("x" * 70_000)
    department = root / JIRA_YAML
    department.write_text(department.read_text().replace("{env: SYNCD_JIRA_TOKEN}", f"{{file: {root / 'token'}}}"))


def fifo(file: str) -> Callable[[Path], None]:
    """An edit of the tree: ``file`` replaced by a named pipe nobody writes (opening it to read would block)."""

    def apply(root: Path) -> None:
        (root / file).unlink()
        os.mkfifo(root / file)

    return apply


@dataclass(frozen=True)
class BadTree:
    """A configuration whose files are each right but wrong together, and the one line that must say so."""

    edit: Callable[[Path], None]
    args: tuple[str, ...]
    located: str
    """``file:line`` (or the directory) the message starts with."""
    fix: tuple[str, ...]


BAD_TREES = {
    "department-copied-same-endpoint": BadTree(
        copy_file("config/departments/marketing.yaml", "config/departments/marketing-copy.yaml"),
        ("--config", "config", "--mappings", "mappings"),
        "config/departments/marketing.yaml:6: ",
        ("syncs the same asana project as 'marketing-copy'", "one department per project"),
    ),
    "mapping-copied": BadTree(
        copy_file(MAPPING, "mappings/launch-requests-copy.yaml"),
        ("--config", "config", "--mappings", "mappings"),
        "mappings/launch-requests.yaml:4: ",
        ("both sync ['engineering', 'sales', 'marketing']", "an item of engineering can be in both", "disjoint scopes"),
    ),
    "two-mappings-one-group-name": BadTree(
        copy_file(MAPPING, "mappings/other.yaml", lambda _: "group: launch-requests\nmembers: {engineering: {}}\nfields: {title: {}}\n"),  # noqa: E501
        ("--config", "config", "--mappings", "mappings"),
        "mappings/other.yaml:1: ",
        ("group 'launch-requests' is also defined in", "give each group its own name"),
    ),
    "credential-file-over-64-kib": BadTree(
        big_credential_file,
        ("--config", "config", "--mappings", "mappings"),
        f"{JIRA_YAML}:7: ",
        ("is larger than 64 KiB: not a credential",),
    ),
    "syncd-yaml-a-named-pipe": BadTree(
        fifo(SYNCD_YAML), ("--config", "config", "--mappings", "mappings"), f"{SYNCD_YAML}: ", ("not a regular file",)
    ),
    "mappings-directory-missing": BadTree(
        lambda root: None, ("--config", "config", "--mappings", "/nonexistent"), "/nonexistent: ", ("no such mappings directory",)  # noqa: E501
    ),
    "config-directory-missing": BadTree(
        lambda root: None, ("--config", "/nonexistent", "--mappings", "mappings"), "/nonexistent: ", ("no such configuration directory",)  # noqa: E501
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(BAD_TREES))
def test_a_configuration_wrong_as_a_whole_fails_check(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copies that mirror a project into itself or sync items twice, missing directories: exit 2 and file:line."""
    bad = BAD_TREES[name]
    for variable in [variable for variable in os.environ if variable.startswith("SYNCD_")]:
        monkeypatch.delenv(variable)
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copytree(ROOT / "mappings", tmp_path / "mappings")
    bad.edit(tmp_path)
    result = CliRunner().invoke(app, ["check", *bad.args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    located = [line for line in result.stderr.splitlines() if line.startswith(f"error: {bad.located}")]
    assert located, result.stderr
    for words in bad.fix:
        assert any(words in line for line in located), f"{words!r} not in {located}"


def test_scopes_that_split_the_items_are_two_groups(tmp_path: Path) -> None:
    """Two groups over the same members with disjoint label scopes are not copies: `syncd check` accepts them."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copytree(ROOT / "mappings", tmp_path / "mappings")
    text = (tmp_path / MAPPING).read_text()
    (tmp_path / MAPPING).write_text(text.replace("  sales: {}\n", "  sales: {scope: {labels: [launch]}}\n"))
    infra = "members:\n  engineering: {scope: {labels: [infra]}}\n  sales: {scope: {labels: [infra]}}\n"
    (tmp_path / "mappings" / "infra.yaml").write_text(infra + "fields: {title: {}}\n")
    result = CliRunner().invoke(
        app, ["check", "--config", str(tmp_path / "config"), "--mappings", str(tmp_path / "mappings")]
    )
    assert result.exit_code == 0, result.output
    assert "2 sync groups" in result.stderr


BAD_VARIABLES = {
    "infinite-poll-interval-variable": ("SYNCD_POLL_INTERVAL_S", "inf", "Input should be a finite number (got 'inf')"),
    "workers-not-a-number-variable": ("SYNCD_WORKERS", "many", "Input should be a valid integer"),
}


@pytest.mark.parametrize("name", list(BAD_VARIABLES))
def test_a_bad_environment_setting_is_named_by_its_variable(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SYNCD_<NAME> overrides syncd.yaml, so its error names the variable, not the file's line (which is right)."""
    variable, value, words = BAD_VARIABLES[name]
    for each in [each for each in os.environ if each.startswith("SYNCD_")]:
        monkeypatch.delenv(each)
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copytree(ROOT / "mappings", tmp_path / "mappings")
    monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(app, ["check", "--config", "config", "--mappings", "mappings"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {variable}: {words}"), line
    assert "syncd.yaml" not in line


# ----- a store that cannot be opened ---------------------------------------------------------------------------

UNREACHABLE = "postgresql+psycopg://nobody:hunter2@127.0.0.1:1/syncd"


STORE_COMMANDS = [
    "once", "plan", "status", "run", "web",
    "audit", "audit verify", "audit head", "audit reindex",
    "conflicts list", "conflicts show X",
    "quarantine list", "quarantine retry X",
    "guard list", "guard show X", "guard confirm X --by a", "guard reject X --by a",
]  # fmt: skip


@pytest.mark.parametrize("command", STORE_COMMANDS)
def test_an_unavailable_store_is_one_line_and_exit_2(command: str, tmp_path: Path) -> None:
    """Every command that opens the store says so in one line, password masked, exit 2 (not 480 lines of traceback)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")},
        "SYNCD_STORE": UNREACHABLE,
        "SYNCD_LISTEN": "127.0.0.1:0",
        **{f"SYNCD_{name}": "unused" for name in ("JIRA_TOKEN", "TRELLO_KEY", "TRELLO_TOKEN", "ASANA_TOKEN")},
    }
    takes_mappings = command in {"once", "plan", "run"}
    args = ["--config", str(ROOT / "config"), *(["--mappings", str(ROOT / "mappings")] if takes_mappings else [])]
    done = subprocess.run(
        [str(SYNCD), *command.split(), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert len(errors) == 1
    assert errors[0].startswith(
        "error: cannot open the store postgresql+psycopg://nobody:***@127.0.0.1:1/syncd: connection failed"
    ), done.stderr
    assert "hunter2" not in done.stderr + done.stdout


def test_a_store_path_under_a_file_is_one_line(tmp_path: Path) -> None:
    """sqlite under a path that is a file (no directory can be made there): one line, exit 2."""
    (tmp_path / "a-file").write_text("")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")},
        "SYNCD_STORE": f"sqlite:///{tmp_path}/a-file/syncd.db",
    }
    done = subprocess.run(
        [str(SYNCD), "status", "--config", str(ROOT / "config")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"error: cannot create the store's directory {tmp_path}/a-file: File exists"]


def file_size_limit(limit: int) -> Callable[[], None]:
    """For a child process: no file it writes may grow past ``limit`` bytes (RLIMIT_FSIZE, as a full disk would).

    The write fails with EFBIG (Python ignores SIGXFSZ); SQLite reports it as "disk I/O error".
    """

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.fixture
def unwritable(sandbox: Sandbox, tmp_path: Path) -> tuple[dict[str, str], int]:
    """The sandbox's environment and a migrated store; the size its file has (no file may grow past it)."""
    for emulator in sandbox.emulators:
        emulator.rate_limits_enabled = False
    env = {**sandbox_environment(sandbox, tmp_path), "SYNCD_LISTEN": "127.0.0.1:0", "SYNCD_POLL_INTERVAL_S": "1"}
    store = Store(env["SYNCD_STORE"])
    store.migrate()
    store.close()
    return env, (tmp_path / "syncd.db").stat().st_size


def test_a_store_that_cannot_grow_mid_pass_is_one_line_and_exit_2(unwritable: tuple[dict[str, str], int]) -> None:
    """The store's files may not grow past what migrating left: `once` takes the lease, and the first pass's
    writes fail part-way through; one line naming the store and the database's reason, exit 2, no traceback.
    `plan` writes nothing, so it still plans (exit 0)."""
    env, size = unwritable
    args = ["--config", env["CONFIG_DIR"], "--mappings", str(ROOT / "mappings")]
    done = subprocess.run(
        [str(SYNCD), "once", *args], env=env, capture_output=True, text=True, timeout=120, check=False,
        preexec_fn=file_size_limit(size),
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2, done.stderr
    assert errors == [f"error: cannot write to the store {env['SYNCD_STORE']}: disk I/O error"], done.stderr
    plan = subprocess.run(
        [str(SYNCD), "plan", *args], env=env, capture_output=True, text=True, timeout=120, check=False,
        preexec_fn=file_size_limit(size),
    )  # fmt: skip
    assert plan.returncode == 0, plan.stderr


def test_a_daemon_whose_store_cannot_grow_says_so_and_keeps_trying(unwritable: tuple[dict[str, str], int]) -> None:
    """`syncd run` on the same store: each pass fails in one log line naming the database's reason (no traceback),
    /readyz is 503 naming StoreUnavailable for every endpoint, and the daemon keeps polling (space freed, it
    resumes: a full disk is no reason to exit); SIGTERM still exits 0."""
    env, size = unwritable
    with DaemonProcess(env, limits=file_size_limit(size)) as running:
        failed = running.wait_logged("pass", kind="full", outcome="error", timeout_s=60)
        assert failed["error"] == "cannot write to the store: disk I/O error"
        answer = wait_for(lambda: (r := running.get("/readyz")).status_code == 503 and r.json(), 20, "/readyz 503")
        assert set(answer["not_ready"].values()) == {"last poll failed: StoreUnavailable"}
        wait_for(lambda: len(running.logged("lease", outcome="error")) >= 2, 20, "later turns to try again")
        assert running.process.poll() is None
        running.signal(signal.SIGTERM)
        assert running.wait(timeout_s=30) == 0
    # DaemonProcess's exit checks: no log line carries an exception or a traceback


def test_sigterm_is_prompt_while_an_alias_bomb_is_reloaded(tmp_path: Path) -> None:
    """SIGHUP with a 'billion laughs' file: rejected at once, the daemon keeps running; a SIGTERM then drains it."""
    config, env = idle_daemon_environment(tmp_path)
    with DaemonProcess(env, tmp_path / "mappings") as running:
        (config / "syncd.yaml").write_text((config / "syncd.yaml").read_text() + LAUGHS)
        started = time.monotonic()
        running.signal(signal.SIGHUP)
        rejected = running.wait_logged("reload.rejected", timeout_s=10)
        assert time.monotonic() - started < 5
        assert "aliases expand to more than 10000 values" in " ".join(rejected["errors"])
        assert running.get("/healthz").status_code == 200
        running.signal(signal.SIGHUP)
        running.signal(signal.SIGTERM)
        started = time.monotonic()
        assert running.wait(timeout_s=20) == 0
        assert time.monotonic() - started < 10


def test_sigterm_is_prompt_while_a_slow_reload_is_still_reading(tmp_path: Path) -> None:
    """SIGHUP with a 1 MiB syncd.yaml of 60,000 small lists (valid YAML, under every limit, seconds of parsing),
    then SIGTERM while the reload thread still parses it: the daemon exits 0 within 3 s, the reload unfinished."""
    config, env = idle_daemon_environment(tmp_path)
    lists = "".join(f"  - [{n}, {n}, {n}, {n}]\n" for n in range(60_000))
    big = ((config / "syncd.yaml").read_text() + "spare:\n" + lists)[:1_040_000]
    with DaemonProcess(env, tmp_path / "mappings") as running:
        (config / "syncd.yaml").write_text(big[: big.rindex("\n") + 1])
        running.signal(signal.SIGHUP)
        running.wait_logged("reload.started", timeout_s=10)
        time.sleep(0.5)  # well into the parse
        running.signal(signal.SIGTERM)
        started = time.monotonic()
        assert running.wait(timeout_s=30) == 0
        assert time.monotonic() - started < 3
        assert not running.logged("reload.rejected"), "the reload finished before the SIGTERM: make it slower"
        assert not running.logged("reload.applied")


def idle_daemon_environment(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of config/ and the environment of a daemon with no group, so no pass is in flight to drain: only a
    reload could hold a SIGTERM."""
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    (tmp_path / "mappings").mkdir()
    return config, {
        **{k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")},
        "CONFIG_DIR": str(config),
        "SYNCD_STORE": f"sqlite:///{tmp_path / 'syncd.db'}",
        "SYNCD_LISTEN": "127.0.0.1:0",
        "SYNCD_POLL_INTERVAL_S": "600",
        **{f"SYNCD_{name}": "unused" for name in ("JIRA_TOKEN", "TRELLO_KEY", "TRELLO_TOKEN", "ASANA_TOKEN")},
    }


# ----- webhook deliveries to a running daemon ----------------------------------------------------------------

WEBHOOK_SECRET = "reliability-jira-webhook-secret"
MAX_BYTES = 4096


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """`syncd run` on the sandbox, Jira deliveries signed, a small body limit; its mapping creates nothing.

    Polls are ten minutes apart and nothing registers webhooks (no public_url), so every hinted pass in its log
    comes from a delivery a test posted.
    """
    directory = tmp_path_factory.mktemp("daemon")
    with Sandbox() as sandbox:
        for emulator in sandbox.emulators:
            emulator.rate_limits_enabled = False
        env = sandbox_environment(sandbox, directory)
        jira = Path(env["CONFIG_DIR"]) / "departments" / "engineering.yaml"
        jira.write_text(jira.read_text() + "  webhook_secret: {env: SYNCD_JIRA_WEBHOOK_SECRET}\n")
        mappings = directory / "mappings"
        shutil.copytree(ROOT / "mappings", mappings)
        mapping = mappings / "launch-requests.yaml"
        mapping.write_text(mapping.read_text().replace("create_in: [engineering, sales, marketing]", "create_in: []"))
        env |= {
            "SYNCD_LISTEN": "127.0.0.1:0",
            "SYNCD_POLL_INTERVAL_S": "600",
            "SYNCD_WEBHOOK_DEBOUNCE_S": "0.2",
            "SYNCD_MAX_WEBHOOK_BYTES": str(MAX_BYTES),
            "SYNCD_JIRA_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
        with DaemonProcess(env, mappings) as running:
            running.wait_logged("pass", kind="full", outcome="ok", timeout_s=30)
            yield running


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    """Jira's X-Hub-Signature header for ``body``."""
    return {"X-Hub-Signature": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def delivered(daemon: DaemonProcess, department: str, outcome: str) -> float:
    """syncd_webhooks_total for one department and outcome (0 before the first such delivery)."""
    wanted = f'syncd_webhooks_total{{department="{department}",outcome="{outcome}"}} '
    lines = [line for line in daemon.get("/metrics").text.splitlines() if line.startswith(wanted)]
    return float(lines[0].split()[-1]) if lines else 0.0


def hinted_passes(daemon: DaemonProcess) -> int:
    return len(daemon.logged("pass", kind="hinted"))


ISSUE = json.dumps({"webhookEvent": "jira:issue_updated", "issue": {"key": "ENG-1"}}).encode()


@dataclass(frozen=True)
class Delivery:
    """One POST to the daemon: where, what, with which headers, and the answer it must get."""

    department: str
    body: bytes | Callable[[], Iterator[bytes]]
    headers: dict[str, str]
    status: int
    outcome: str
    label: str | None = None
    """The metric's department label, when not the department (unknown paths share "other")."""


DELIVERIES = {
    "bad-signature": Delivery("engineering", ISSUE, sign(ISSUE, "not-the-secret"), 401, "unauthorized"),
    "missing-signature": Delivery("engineering", ISSUE, {}, 401, "unauthorized"),
    "malformed-json-good-signature": Delivery(
        "engineering", b'{"issue": {"key": ', sign(b'{"issue": {"key": '), 400, "malformed"
    ),
    "oversized": Delivery("engineering", b" " * (MAX_BYTES + 1), sign(b" " * (MAX_BYTES + 1)), 413, "too_large"),
    "oversized-chunked": Delivery(
        "engineering", lambda: iter([b" " * MAX_BYTES, b" " * 10]), sign(b" " * (MAX_BYTES + 10)), 413, "too_large"
    ),
    "unknown-department": Delivery("finance", ISSUE, sign(ISSUE), 404, "unknown_department", label="other"),
}


@pytest.mark.parametrize("name", list(DELIVERIES))
def test_a_bad_delivery_is_refused_and_queues_nothing(daemon: DaemonProcess, name: str) -> None:
    """The right status and outcome counter; no hinted pass follows; the daemon stays healthy."""
    delivery = DELIVERIES[name]
    label = delivery.label or delivery.department
    counted, passes = delivered(daemon, label, delivery.outcome), hinted_passes(daemon)
    body = delivery.body() if callable(delivery.body) else delivery.body
    answer = requests.post(
        f"{daemon.url}/webhooks/{delivery.department}", data=body, headers=delivery.headers, timeout=10
    )
    assert answer.status_code == delivery.status, answer.text
    assert delivered(daemon, label, delivery.outcome) == counted + 1
    time.sleep(0.6)  # three debounce intervals: a queued hint would have run by now
    assert hinted_passes(daemon) == passes
    assert daemon.get("/healthz").status_code == 200
    assert daemon.process.poll() is None


def test_a_replayed_delivery_queues_nothing_the_second_time(daemon: DaemonProcess) -> None:
    """Jira redelivers with the same identifier: the first queues one targeted pass, the replay none."""
    headers = {**sign(ISSUE), "X-Atlassian-Webhook-Identifier": "reliability-delivery-1"}
    passes = hinted_passes(daemon)
    first = requests.post(f"{daemon.url}/webhooks/engineering", data=ISSUE, headers=headers, timeout=10)
    assert (first.status_code, first.json()) == (200, {"outcome": "queued"})
    wait_for(lambda: hinted_passes(daemon) == passes + 1, 10, "the delivery's targeted pass")
    assert daemon.logged("pass", kind="hinted")[-1]["hinted_refs"] == 1
    again = requests.post(f"{daemon.url}/webhooks/engineering", data=ISSUE, headers=headers, timeout=10)
    assert (again.status_code, again.json()) == (200, {"outcome": "no_refs"})
    time.sleep(0.6)
    assert hinted_passes(daemon) == passes + 1
    assert delivered(daemon, "engineering", "no_refs") == 1
    assert daemon.get("/healthz").status_code == 200


# ----- odd data from the tools' APIs -------------------------------------------------------------------------

FAST = RetryPolicy(attempts=3, max_total_s=10, initial_s=0.05, max_wait_s=1)
RENAMED = "Bulk seat pricing for resellers"


@pytest.fixture
def connectors(sandbox: Sandbox) -> dict[str, Connector]:
    """The real connectors on the sandbox, as tests/test_engine.py builds them (generous buckets)."""
    return sandbox_connectors(sandbox, policy=FAST)


@pytest.fixture
def group() -> Group:
    return compile_group(ROOT / "mappings" / "launch-requests.yaml", {"engineering": "jira", "sales": "trello", "marketing": "asana"}, CAPABILITIES)  # fmt: skip  # noqa: E501


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path / 'syncd.db'}")
    opened.migrate()
    yield opened
    opened.close()


@dataclass
class World:
    """The sandbox, one group over the real connectors and a store: enough to run passes and look at the tools."""

    sandbox: Sandbox
    group: Group
    connectors: dict[str, Connector]
    store: Store

    def run(self) -> PassReport:
        return Pass(self.group, self.connectors, self.store).run()

    def card(self, name: str) -> str:
        with self.sandbox.trello.lock:
            return next(c.id for c in self.sandbox.trello.state.cards.values() if c.name == name)

    def statuses(self, title: str) -> tuple[str, str, str]:
        """The item's Jira status, Trello list and Asana section, by its title."""
        with self.sandbox.jira.lock:
            issue = next(i.status for i in self.sandbox.jira.state.issues.values() if i.summary == title)
        with self.sandbox.trello.lock:
            state = self.sandbox.trello.state
            card = next(state.lists[c.id_list].name for c in state.cards.values() if c.name == title)
        with self.sandbox.asana.lock:
            task = next(t for t in self.sandbox.asana.state.tasks.values() if t.name == title)
            section = task.memberships[0].section.name
        return issue, card, section

    def rename_elsewhere(self) -> None:
        """A harmless edit beside the bad one: it must still sync in the same pass."""
        self.sandbox.trello.act_as("eli@corp.example").update_card(self.card(RENAMED), name=RENAMED + ", v2")

    def renamed_everywhere(self) -> bool:
        with self.sandbox.jira.lock:
            jira = any(i.summary == RENAMED + ", v2" for i in self.sandbox.jira.state.issues.values())
        with self.sandbox.asana.lock:
            asana = any(t.name == RENAMED + ", v2" for t in self.sandbox.asana.state.tasks.values())
        return jira and asana


@pytest.fixture
def world(sandbox: Sandbox, group: Group, connectors: dict[str, Connector], store: Store) -> World:
    return World(sandbox, group, connectors, store)


def settle(world: World) -> None:
    """The first pass mirrors the organisation; the second must be quiet (the starting point of every case)."""
    assert world.run().ok
    assert world.run().writes == 0


def trello_list(sandbox: Sandbox, name: str) -> None:
    """Add a list to the Sales board, as a person would in Trello."""
    with sandbox.trello.lock:
        state = sandbox.trello.state
        board = next(iter(state.boards.values()))
        state.create_list(board, name, "bottom", next(iter(state.members.values())))


def assert_reported_and_rest_quiet(world: World, report: PassReport, endpoint: str, field: str, value: str) -> None:
    """The bad value is a problem naming the fix; the harmless edit synced; the chain holds; the next pass is quiet."""
    assert report.ok, report.failures
    assert [(p.endpoint, p.field, p.value) for p in report.problems] == [(endpoint, field, value)]
    assert f"fields.{field}.map.{endpoint}" in report.problems[0].message
    assert world.renamed_everywhere()
    assert verify(world.store).ok
    assert world.run().writes == 0


def test_a_jira_status_the_mapping_lacks_is_reported_not_guessed(world: World) -> None:
    """An admin adds "Parking" to the workflow and parks an issue: reported; the mirrors keep their status."""
    title = "SSO for enterprise trials"
    settle(world)
    before = world.statuses(title)
    sandbox = world.sandbox
    with sandbox.jira.lock:
        sandbox.jira.state.statuses["Parking"] = Status(id="99001", name="Parking", category="indeterminate")
        issue = next(i for i in sandbox.jira.state.issues.values() if i.summary == title)
        issue.status, issue.updated = "Parking", sandbox.clock.now()
    world.rename_elsewhere()
    sandbox.clock.advance(120)
    report = world.run()
    assert_reported_and_rest_quiet(world, report, "engineering", "status", "Parking")
    assert world.statuses(title) == ("Parking", *before[1:])


def test_a_trello_list_the_mapping_lacks_is_reported_not_guessed(world: World) -> None:
    """Eli moves a card to a "Parking lot" list: reported; Jira and Asana keep the item's status."""
    title = "Partner portal demo account"
    trello_list(world.sandbox, "Parking lot")
    settle(world)
    before = world.statuses(title)
    world.sandbox.trello.act_as("eli@corp.example").move_card(world.card(title), "Parking lot")
    world.rename_elsewhere()
    report = world.run()
    assert_reported_and_rest_quiet(world, report, "sales", "status", "Parking lot")
    assert world.statuses(title) == (before[0], "Parking lot", before[2])


def test_a_trello_list_created_while_running_is_reported(world: World) -> None:
    """The same move, but the list appears after the connector first read the board (a daemon's life)."""
    title = "Partner portal demo account"
    settle(world)
    trello_list(world.sandbox, "Parking lot")
    world.sandbox.trello.act_as("eli@corp.example").move_card(world.card(title), "Parking lot")
    world.rename_elsewhere()
    report = world.run()
    assert_reported_and_rest_quiet(world, report, "sales", "status", "Parking lot")


def test_a_trello_label_created_while_running_is_not_mirrored_as_its_id(world: World) -> None:
    """Eli creates a label "vip" and puts it on a card: its name or a problem, never the label's id."""
    title = "Renewal deck Q4"
    settle(world)
    sandbox = world.sandbox
    with sandbox.trello.lock:
        board = next(iter(sandbox.trello.state.boards.values()))
        label = sandbox.trello.state.create_label(board, "vip", "red")
    sandbox.trello.act_as("eli@corp.example").add_label(world.card(title), "vip")
    report = world.run()
    with sandbox.asana.lock:
        tags = {tag.name for task in sandbox.asana.state.tasks.values() for tag in task.tags}
    assert label.id not in tags
    assert "vip" in tags or any(problem.endpoint == "sales" for problem in report.problems)
    assert verify(world.store).ok


def test_an_unparseable_asana_date_is_reported_and_the_rest_syncs(world: World) -> None:
    """A task whose due_on reads "next tuesday": that item reported, the value never guessed, the rest syncing."""
    settle(world)
    sandbox = world.sandbox
    with sandbox.asana.lock:
        task = next(t for t in sandbox.asana.state.tasks.values() if t.name == "Brand refresh of the pricing page")
    sandbox.asana.act_as("gus@corp.example").update_task(task.gid, notes="Check the hero image.")
    with sandbox.asana.lock:
        task.due_on = "next tuesday"  # type: ignore[assignment]  # what a broken API answer would hold
    world.rename_elsewhere()
    report = world.run()
    assert report.problems or report.failures
    assert world.renamed_everywhere()
    assert verify(world.store).ok


# ----- mass changes (issue 17) ------------------------------------------------------------------------------


def _archive(sandbox: Sandbox, card: str) -> None:
    sandbox.trello.act_as("eli@corp.example").archive(card)


def _delete(sandbox: Sandbox, card: str) -> None:
    sandbox.trello.act_as("eli@corp.example").delete(card)


@pytest.mark.parametrize("change", [_archive, _delete], ids=["archive 24 of 29 cards", "delete 24 of 29 cards"])
def test_a_mass_change_in_trello_is_held_and_the_rest_keeps_syncing(
    world: World, tmp_path: Path, change: Callable[[Sandbox, str], None]
) -> None:
    """Eli archives (or deletes) 24 of the 29 cards while another card is renamed: the rename syncs, no Jira issue
    moves to Done and no Asana task leaves its project, the pass is not ok, and `syncd status` exits 1 naming the
    guards and the command to decide (it used to exit 0 and say ok)."""
    settle(world)
    environment = sandbox_environment(world.sandbox, tmp_path)
    with world.store.transaction() as tx:
        refs = [
            {key.split("/", 1)[1]: each.ref for key, each in tx.links(link.sync_id).items()}
            for link in tx.endpoint_links(f"{world.group.name}/sales")
        ]
    renamed = world.card(RENAMED)
    chosen = [each for each in refs if each["sales"] != renamed][:24]
    for each in chosen:
        change(world.sandbox, each["sales"])
    world.rename_elsewhere()

    report = world.run()

    assert len(report.held) == 24
    assert not report.ok
    assert world.renamed_everywhere()
    for member in ("engineering", "marketing"):
        records = world.connectors[member].fetch([each[member] for each in chosen])
        assert [record.archived for record in records] == [False] * 24
    result = CliRunner().invoke(app, ["status", "--config", environment["CONFIG_DIR"]], env=environment)
    assert result.exit_code == 1
    with world.store.transaction() as tx:
        held = [guard for guard in guards.active(tx) if guard.state == "pending"]
    assert sorted(guard.endpoint for guard in held) == ["engineering", "marketing"]
    assert all(f"syncd guard show {guard.id}" in result.output for guard in held)
    assert verify(world.store).ok
