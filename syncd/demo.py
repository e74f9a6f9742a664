"""``syncd demo``: the embedded default, syncd at work on the sandbox organisation in one command.

A newcomer with no account anywhere runs one command and watches syncd do its job: the three emulators start with
the seeded organisation, ``syncd run`` mirrors it with the shipped ``config/`` and ``mappings/`` (webhooks on,
polling as the safety net), people make the scripted edits of :mod:`sandbox.scenario` (a conflict for every
rule), a lead decides the one the ``manual`` rule holds, and a live view shows the subject item in each tool side
by side with the tail of the audit log. ``--duration`` turns it into a bounded, non-interactive run that ends with a
summary and says whether everything converged.

The daemon, the lead's decision and the final dry run are the real commands, run as subprocesses the way an
operator runs them: the demo shows syncd, it does not re-implement any of it. Tool state is read straight from the
emulators (cheap, and no API request to disturb the daemon or the rate limits).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO, Any
from zoneinfo import ZoneInfo

import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text
from sqlalchemy import func
from sqlalchemy import select as sql_select
from sqlalchemy.exc import SQLAlchemyError

from sandbox import scenario
from sandbox.jira.richtext import adf_to_wiki
from sandbox.org import Sandbox
from syncd.audit import AuditEvent, Recorded, query
from syncd.config import ConfigError, load_config
from syncd.errors import DemoError as DemoError  # noqa: PLC0414 - re-exported: its callers import it from here
from syncd.store import HeldConflict, Store
from syncd.store.schema import links

TOOLS = ("jira", "trello", "asana")
TOOL_NAMES = {"jira": "Jira", "trello": "Trello", "asana": "Asana"}
FIELDS = ("title", "status", "assignees", "labels", "due", "description")
"""The rows of the live view: the subject's fields the scenario edits (the description by its first line)."""
WRITE_KINDS = ("write", "create", "archive", "comment")
"""Audit event kinds that are remote writes in a tool."""
RULES = ("latest", "owner:engineering", "prefer:engineering,marketing,sales", "union", "merge-text", "manual")
"""The rules of the shipped mapping, in the order the scenario exercises them (the summary lists each)."""
LEAD = "lead@corp.example"
"""Who decides the held ``manual`` conflict, for the audit log."""
EXPECTED_STATUS = {"jira": "Done", "trello": "Done", "asana": "Shipped"}
"""``scenario.EXPECTED['status']`` (done) as each tool names it under the shipped mapping's status map."""
DUE_ZONE = ZoneInfo("Europe/Berlin")
"""The shipped mapping reads Trello's due datetime as a date in this zone."""

GROUP = "launch-requests"
"""The shipped group the scenario plays in."""
MEMBERS = ("engineering", "sales", "marketing")

POLL_INTERVAL_S = 3.0
"""Polling is the safety net: webhooks bring changes in well under a second."""
WEBHOOK_DEBOUNCE_S = 0.3
SHUTDOWN_TIMEOUT_S = 5.0
PAIR_GAP_S = 0.3
"""Seconds between the two edits of one conflict (the two tools are held still meanwhile: see ``Demo._play``)."""
EDIT_GAP_S = 1.0
"""Seconds from one conflict's second edit to the next one's first: about one edit a second overall."""
TICK_S = 0.25
"""How often the live view is redrawn (and the store watched)."""
TAIL = 10
"""Audit events in the live view: enough for one conflict's decision and the writes it caused."""
QUIET_S = 0.5
"""No API request for this long means the daemon is between passes."""
LISTEN_TIMEOUT_S = 60.0


class _Interrupted(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Ctrl-C or SIGTERM: unwind (releasing emulator locks) and stop everything."""


class _OutOfTime(Exception):  # noqa: N818 - a control-flow signal, not an error
    """``--duration`` is up."""


class _DaemonExited(Exception):  # noqa: N818 - a control-flow signal, not an error
    """``syncd run`` ended on its own: nothing will sync any more, so the demo stops and says why."""


def shipped(name: str) -> Path:
    """The repository's ``config/`` or ``mappings/``: beside the package in a checkout, else in the working directory.

    They are not package data (operators edit them), so an installed package finds them only where it was built from.
    """
    beside = Path(__file__).resolve().parent.parent / name
    return beside if beside.is_dir() else Path(name)


def syncd_command() -> list[str]:
    """How to run ``syncd`` as a subprocess with this interpreter (the console script beside it, if installed)."""
    script = Path(sys.executable).with_name("syncd")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", "from syncd.cli import main; main()"]


# ----- configuration and daemon --------------------------------------------------------------------------------

_WEBHOOK_SECRETS = {
    "jira": ("webhook_secret", "SYNCD_JIRA_WEBHOOK_SECRET"),
    "trello": ("secret", "SYNCD_TRELLO_SECRET"),
}
"""Per tool, the connection setting naming the webhook secret and the variable that holds it (Asana: handshake)."""


def prepare_config(source: Path, target: Path, sandbox: Sandbox) -> dict[str, str]:
    """Copy ``source`` to ``target`` with each department pointed at its emulator and its webhook secret named.

    Line edits rather than a YAML round trip keep the copy reading like the original (comments, layout). Returns
    department -> tool. A broken configuration is reported with every ``file:line`` problem.
    """
    try:
        load_config(source)
    except ConfigError as error:
        raise DemoError(str(error)) from error
    shutil.copytree(source, target)
    urls = {"jira": sandbox.jira.url, "trello": sandbox.trello.url, "asana": sandbox.asana.url}
    for path in sorted((target / "departments").glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        tool = str(yaml.safe_load(text)["connection"]["tool"])
        lines: list[str] = []
        for line in text.splitlines():
            if line.startswith("  ") and line.strip().split(":", 1)[0] in {"base_url", "webhook_secret", "secret"}:
                continue  # replaced below: never the real service, and the demo's own secrets
            lines.append(line)
            if line.rstrip() == "connection:":
                lines.append(f"  base_url: {urls[tool]}")
                if tool in _WEBHOOK_SECRETS:
                    setting, variable = _WEBHOOK_SECRETS[tool]
                    lines.append(f"  {setting}: {{env: {variable}}}")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        config = load_config(target)
    except ConfigError as error:
        raise DemoError(str(error)) from error
    return {name: department.connection.tool for name, department in config.departments.items()}


def daemon_environment(sandbox: Sandbox, store_url: str) -> dict[str, str]:
    """The environment of every syncd subprocess: the sandbox's credentials and the demo's settings.

    The caller's own ``SYNCD_*`` variables are left out, so a production store or token in the shell is never used.
    """
    credentials = sandbox.credentials()
    env = {key: value for key, value in os.environ.items() if not key.startswith("SYNCD_")}
    env.update(
        {
            "SYNCD_STORE": store_url,
            "SYNCD_JIRA_TOKEN": credentials["jira"]["token"],
            "SYNCD_TRELLO_KEY": credentials["trello"]["key"],
            "SYNCD_TRELLO_TOKEN": credentials["trello"]["token"],
            "SYNCD_ASANA_TOKEN": credentials["asana"]["token"],
            "SYNCD_JIRA_WEBHOOK_SECRET": secrets.token_urlsafe(24),
            "SYNCD_TRELLO_SECRET": credentials["trello"]["secret"],
            "SYNCD_POLL_INTERVAL_S": str(POLL_INTERVAL_S),
            "SYNCD_WEBHOOK_DEBOUNCE_S": str(WEBHOOK_DEBOUNCE_S),
            "SYNCD_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S),
        }
    )
    return env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Daemon:
    """``syncd run`` as a subprocess, in its own session.

    Its own session keeps a Ctrl-C in the terminal away from it: the demo sends it exactly one SIGTERM, so it drains
    (a second signal would make it exit at once, leaving work for crash recovery).
    """

    def __init__(self, process: subprocess.Popen[str], url: str, log: IO[str]) -> None:
        self.process = process
        self.url = url
        self.log = log

    @classmethod
    def start(cls, command: list[str], env: dict[str, str], log_path: Path, interrupted: Callable[[], bool]) -> Daemon:
        """Start it on a free port, also its public URL (the tools deliver webhooks there); wait until it listens.

        The port is chosen before the start, so another process may take it first: then another one is tried.
        """
        for _ in range(3):
            port = _free_port()
            hooked = {**env, "SYNCD_LISTEN": f"127.0.0.1:{port}", "SYNCD_PUBLIC_URL": f"http://127.0.0.1:{port}"}
            log = log_path.open("a", encoding="utf-8")
            process = subprocess.Popen(  # noqa: S603 - our own command, fixed arguments, no shell
                command, env=hooked, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True
            )
            daemon = cls(process, "", log)
            try:
                url = daemon._listening(interrupted)
            except BaseException:
                daemon.stop(lambda: True)
                raise
            if url is not None:
                daemon.url = url
                return daemon
            daemon.stop(lambda: True)
            logged = log_path.read_text(encoding="utf-8", errors="replace")
            if "in use" not in logged:
                tail = "\n".join(logged.strip().splitlines()[-10:])
                raise DemoError(f"syncd run exited with {process.returncode} before listening:\n{tail}")
        raise DemoError("syncd run found no free port to listen on (tried 3)")

    def _listening(self, interrupted: Callable[[], bool]) -> str | None:
        """The URL from the daemon's first line of output, or None if it exited first."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + LISTEN_TIMEOUT_S
        while time.monotonic() < deadline:
            if interrupted():
                raise _Interrupted
            readable, _, _ = select.select([self.process.stdout], [], [], TICK_S)
            if readable:
                line = self.process.stdout.readline()
                if not line:
                    self.process.wait(timeout=30)
                    return None
                return str(json.loads(line)["listen"])
        raise DemoError(f"syncd run did not listen within {LISTEN_TIMEOUT_S:.0f} s")

    def ready(self) -> bool:
        """Whether ``/readyz`` answers 200: every endpoint's full pass succeeded (the first one is the backfill)."""
        try:
            with urllib.request.urlopen(self.url + "/readyz", timeout=2) as answer:  # noqa: S310 - our own http URL
                return int(answer.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, hurry: Callable[[], bool]) -> None:
        """SIGTERM and wait for the drain; kill if it takes too long or ``hurry()`` says so (a second Ctrl-C)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + SHUTDOWN_TIMEOUT_S + 10
            while self.process.poll() is None and time.monotonic() < deadline and not hurry():
                time.sleep(0.1)
            if self.process.poll() is None:
                self.process.kill()
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.log.close()


@dataclass
class Command:
    """A short syncd command (the lead's decision, the dry run) running beside the view, output in files."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    @classmethod
    def start(cls, argv: list[str], env: dict[str, str], directory: Path, name: str) -> Command:
        """Start it; its output goes to files, so a long plan can never fill a pipe and block it."""
        stdout, stderr = directory / f"{name}.out", directory / f"{name}.err"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(argv, env=env, stdout=out, stderr=err)  # noqa: S603 - our own command
        return cls(process, stdout, stderr)

    def result(self) -> tuple[int, str, str] | None:
        """Exit code, standard output and standard error once it finished; None while it runs."""
        code = self.process.poll()
        if code is None:
            return None
        read = {"encoding": "utf-8", "errors": "replace"}
        return code, self.stdout.read_text(**read), self.stderr.read_text(**read)

    def kill(self) -> None:
        """Stop it if it still runs (the demo ends)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


# ----- the store, watched from a thread ------------------------------------------------------------------------


@dataclass
class Snapshot:
    """What the store says at one moment: conflicts not closed, failing items, and whether the subject is linked."""

    conflicts: list[HeldConflict] = field(default_factory=list)
    quarantined: int = 0
    retrying: int = 0
    subject: str | None = None
    """The subject's sync_id once it is linked in all three tools and no plan of it is pending."""
    backfilled: bool = False
    """Whether the first full pass is over (every member's cursor is stored): the people may start editing."""


class StoreWatcher:
    """Reads the store in its own thread and hands the main thread the newest snapshot and the new audit events.

    Never from the main thread: a pass holds SQLite's write lock while it fetches from a tool, and the main thread
    holds emulator locks while people edit, so a read there could wait for a pass that waits for it.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.refs: scenario.Refs | None = None
        self._lock = threading.Lock()
        self._snapshot = Snapshot()
        self._events: list[Recorded] = []
        self._last_seq = 0
        self._last_at: datetime | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="syncd-demo-store", daemon=True)

    def start(self) -> None:
        """Start watching (the daemon has migrated the store by the time it listens)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop watching and wait for the thread."""
        self._stop.set()
        self._thread.join(timeout=15)

    def take(self) -> tuple[Snapshot, list[Recorded]]:
        """The newest snapshot and the audit events recorded since the last call (the view shows each once)."""
        with self._lock:
            events, self._events = self._events, []
            return self._snapshot, events

    @property
    def snapshot(self) -> Snapshot:
        """The newest snapshot, leaving the new audit events to :meth:`take`."""
        with self._lock:
            return self._snapshot

    def _run(self) -> None:
        while not self._stop.wait(TICK_S):
            with contextlib.suppress(SQLAlchemyError):  # busy or not migrated yet: the next round reads it
                self._read()

    def _read(self) -> None:
        # Events are read from a little before the last one seen: an event is timed when built, appended a moment
        # later, so one committed after a later-timed one must not be missed. Sequence numbers drop repeats.
        since = None if self._last_at is None else self._last_at - _SLACK
        new = [recorded for recorded in query(self.store, since=since) if recorded.seq > self._last_seq]
        snapshot = Snapshot()
        with self.store.transaction() as tx:
            snapshot.conflicts = tx.conflicts()
            failing = tx.quarantined()
            snapshot.quarantined = sum(1 for entry in failing if entry.held)
            snapshot.retrying = len(failing) - snapshot.quarantined
            snapshot.backfilled = all(tx.cursor(f"{GROUP}/{member}") is not None for member in MEMBERS)
            if self.refs is not None:
                refs = [self.refs.jira, self.refs.trello, self.refs.asana]
                rows = tx.connection.execute(sql_select(links.c.sync_id).where(links.c.ref.in_(refs))).all()
                items = {row.sync_id for row in rows}
                pending = {entry.sync_id for entry in tx.journal_pending()}
                if len(rows) == len(refs) and len(items) == 1 and not items & pending:
                    snapshot.subject = items.pop()
        with self._lock:
            self._snapshot = snapshot
            self._events.extend(new)
            if new:
                self._last_seq, self._last_at = new[-1].seq, max(recorded.event.at for recorded in new)


_SLACK = timedelta(seconds=5)


# ----- the subject in each tool --------------------------------------------------------------------------------


def _joined(values: Iterable[str]) -> str:
    return ", ".join(sorted(values))


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def subject_values(sandbox: Sandbox, refs: scenario.Refs) -> dict[str, dict[str, str]]:
    """The subject's raw values per tool and field, as each tool holds them (read under each emulator's lock)."""
    with sandbox.jira.lock:
        issue = sandbox.jira.state.issues[refs.jira]
        jira = {
            "title": issue.summary,
            "status": issue.status,
            "assignees": issue.assignee or "",
            "labels": _joined(issue.labels),
            "due": str(issue.duedate or ""),
            "description": _first_line(adf_to_wiki(issue.description)),
        }
    with sandbox.trello.lock:
        board = sandbox.trello.state
        card = board.cards[refs.trello]
        trello = {
            "title": card.name,
            "status": board.lists[card.id_list].name,
            "assignees": _joined(board.members[member].email for member in card.id_members),
            "labels": _joined(board.labels[label].name for label in card.id_labels),
            "due": card.due.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if card.due else "",
            "description": _first_line(card.desc),
        }
    with sandbox.asana.lock:
        task = sandbox.asana.state.tasks[refs.asana]
        asana = {
            "title": task.name,
            "status": task.memberships[0].section.name if task.memberships else "",
            "assignees": task.assignee.email if task.assignee else "",
            "labels": _joined(tag.name for tag in task.tags),
            "due": str(task.due_on or task.due_at or ""),
            "description": _first_line(task.notes),
        }
    return {"jira": jira, "trello": trello, "asana": asana}


def mismatches(sandbox: Sandbox, refs: scenario.Refs) -> list[str]:
    """How the subject differs from ``scenario.EXPECTED`` in each tool (empty: it matches everywhere)."""
    values = subject_values(sandbox, refs)
    expected = scenario.EXPECTED
    wanted: dict[str, dict[str, str]] = {
        "title": dict.fromkeys(TOOLS, expected["title"]),
        "status": EXPECTED_STATUS,
        "assignees": dict.fromkeys(TOOLS, _joined(expected["assignees"])),
        "labels": dict.fromkeys(TOOLS, _joined(expected["labels"])),
        "due": {"jira": expected["due"], "asana": expected["due"]},
    }
    found = [
        f"{TOOL_NAMES[tool]} {name} is {values[tool][name]!r}, expected {value!r}"
        for name, per_tool in wanted.items()
        for tool, value in per_tool.items()
        if values[tool][name] != value
    ]
    with sandbox.trello.lock:
        card = sandbox.trello.state.cards[refs.trello]
        due = card.due.astimezone(DUE_ZONE).date().isoformat() if card.due else ""
        description = card.desc
    if due != expected["due"]:
        found.append(f"Trello due is {due or 'empty'} in {DUE_ZONE.key}, expected {expected['due']}")
    found += [f"Trello description lacks {line!r}" for line in scenario.DESCRIPTION_EDITS if line not in description]
    return found


# ----- showing it ------------------------------------------------------------------------------------------------


def _short(value: Any, width: int = 40) -> str:  # noqa: ANN401 - any canonical (JSON-like) value
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _change(event: AuditEvent) -> str:
    """What an event changed, in one short line: the field and its new value, or the fields a write wrote."""
    if event.kind == "decision":
        return f"{event.field}: take {event.origin}'s value"
    if event.field is not None:
        return _short(f"{event.field}={_short(event.new, 30)}", 50)
    if isinstance(event.new, dict):
        return _short(", ".join(f"{name}={_short(value, 20)}" for name, value in event.new.items()), 50)
    return _short(event.new if event.new is not None else event.message or "", 50)


def _clock(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).astimezone().strftime("%H:%M:%S")


class View:
    """What the demo shows: a live Rich view in a terminal, plain lines otherwise (a log file, CI, a test).

    The live view is redrawn by the main loop (no refresh thread): the main thread is the one holding emulator
    locks while people edit, and reading the tools' state under a lock it already holds never waits.
    """

    def __init__(self, console: Console, sandbox: Sandbox, tools: dict[str, str], *, duration_s: float | None) -> None:
        self.console = console
        self.started = time.monotonic()
        self.duration_s = duration_s
        self.sandbox = sandbox
        self.tools = tools
        self.live = console.is_terminal
        self.phase = "starting"
        self.refs: scenario.Refs | None = None
        self.story: list[Text] = []
        self.tail: list[Recorded] = []
        self.people = {person.email: person.name.split()[0] for person in sandbox.seed.people}
        self.people[LEAD] = "A lead"
        self._values: dict[str, dict[str, str]] = {}
        self._changed: dict[tuple[str, str], float] = {}
        self._live: Live | None = None

    def __enter__(self) -> View:
        if self.live:
            self._live = Live(self._render(), console=self.console, auto_refresh=False, transient=False)
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._render(), refresh=True)
            self._live.stop()
            self._live = None

    def _plain(self, line: str) -> None:
        if not self.live:
            self.console.print(Text(line), soft_wrap=True)

    def note(self, message: str, *, phase: str | None = None) -> None:
        """Something the demo did or waits for."""
        if phase is not None:
            self.phase = phase
        self.story.append(Text(f"{_clock()} {message}", style="dim"))
        self._plain(f"{_clock()} demo   {message}")

    def edit(self, person: str, tool: str, what: str, rule: str) -> None:
        """A person's edit (or the lead's decision), as it happens."""
        who = self.people.get(person, person)
        line = f"{_clock()} {who} ({tool}) {what} [{rule}]"
        self.story.append(Text(line))
        self._plain(f"{_clock()} edit   {who} ({tool}) {what} [{rule}]")

    def events(self, new: list[Recorded]) -> None:
        """New audit events: the tail of the live view, or a plain line each."""
        self.tail = (self.tail + new)[-TAIL:]
        for recorded in new:
            event = recorded.event
            parts = [f"{_clock(event.at)} audit  #{recorded.seq} {self._kind(event)} {self._where(event)}"]
            parts += [_change(event)]
            parts += [f"rule={event.rule}"] if event.rule else []
            parts += [f"by={event.person}"] if event.person else []
            self._plain(" ".join(part for part in parts if part))

    @staticmethod
    def _kind(event: AuditEvent) -> str:
        return event.kind if event.outcome == "applied" else f"{event.kind} ({event.outcome})"

    def _where(self, event: AuditEvent) -> str:
        """The tool written, or for a decision the department whose value won."""
        name = event.endpoint or event.origin or ""
        tool = self.tools.get(name)
        where = f"{name} ({TOOL_NAMES.get(tool, tool)})" if tool else name
        return f"won by {where}" if where and event.endpoint is None and event.kind == "conflict" else where

    def refresh(self) -> None:
        """Redraw the live view (the tools' current state included)."""
        if self.refs is not None:
            values = subject_values(self.sandbox, self.refs)
            now = time.monotonic()
            for tool, fields in values.items():
                for name, value in fields.items():
                    if self._values and self._values[tool][name] != value:
                        self._changed[(tool, name)] = now
            self._values = values
        if self._live is not None:
            self._live.update(self._render(), refresh=True)

    def _render(self) -> Group:
        """The subject in each tool, the story so far and the audit tail, sized to the terminal's height."""
        elapsed = f"{time.monotonic() - self.started:.0f} s" + (f" of {self.duration_s:g}" if self.duration_s else "")
        header = Text.assemble(
            ("syncd demo", "bold"), f" · {self.sandbox.seed.organisation} · {elapsed} · ", (self.phase, "cyan")
        )
        subject = Table(title=f"{scenario.SUBJECT!r} in each tool", title_justify="left", expand=True)
        subject.add_column("field", style="bold", no_wrap=True)
        for tool in TOOLS:
            subject.add_column(TOOL_NAMES[tool], overflow="ellipsis", no_wrap=True)
        recent = time.monotonic() - 3  # a value that just changed stands out for a moment
        for name in FIELDS:
            cells = [
                Text(
                    self._values[tool][name] if self._values else "…",
                    style="bold yellow" if self._changed.get((tool, name), 0) > recent else "",
                )
                for tool in TOOLS
            ]
            subject.add_row(name, *cells)
        audit = Table(title="audit log (newest last)", title_justify="left", expand=True)
        for heading in ("time", "kind", "where", "change", "rule", "person"):
            audit.add_column(heading, overflow="ellipsis", no_wrap=True)
        for recorded in self.tail:
            event = recorded.event
            row = (_clock(event.at), self._kind(event), self._where(event), _change(event), event.rule, event.person)
            audit.add_row(*(Text(cell or "") for cell in row))
        # Everything but the story takes about 30 lines; the story gets what the terminal has left.
        story = self.story[-max(3, min(14, self.console.height - 30)) :]
        return Group(header, subject, Text("people and syncd", style="bold"), *story, audit)


# ----- the run ----------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """How the run went, for the summary and the exit code."""

    played: int = 0
    resolved: bool = False
    verified: bool = False
    """The dry run planned nothing while everything else looked converged."""
    out_of_time: bool = False
    interrupted: int | None = None
    daemon_exit: int | None = None
    """The daemon's exit code if it ended on its own."""
    plan_problem: str = ""
    """What the last dry run said instead of nothing."""


class Demo:
    """One run of the demo: the sandbox, a temporary configuration and store, the daemon, the scenario, the view."""

    def __init__(
        self, *, duration_s: float | None, latency_ms: int, config_dir: Path, mappings_dir: Path, console: Console
    ) -> None:
        self.duration_s = duration_s
        self.latency_ms = latency_ms
        self.config_dir = config_dir
        self.mappings_dir = mappings_dir
        self.console = console
        self.command = syncd_command()
        self.outcome = Outcome()
        self.signalled: int | None = None
        self.hurry = False
        self.started = time.monotonic()
        self.deadline = None if duration_s is None else self.started + duration_s
        self.commands: list[Command] = []
        self.resolving: dict[str, Command] = {}
        self.attempts: Counter[str] = Counter()
        self.refs: scenario.Refs | None = None

    # --- signals

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """The first Ctrl-C / SIGTERM stops the demo cleanly; another one makes the cleanup hurry (kill the daemon)."""
        if self.signalled is None:
            self.signalled = signum
        else:
            self.hurry = True

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        previous = {signum: signal.signal(signum, self._on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    # --- the whole run

    def run(self) -> int:
        """Run it; the exit code: 0 if converged (``--duration``) or stopped by a person (without), 1 otherwise."""
        with self._signals(), contextlib.ExitStack() as cleanup:
            self.tmp = Path(tempfile.mkdtemp(prefix="syncd-demo-"))
            cleanup.callback(shutil.rmtree, self.tmp, ignore_errors=True)
            self.sandbox = Sandbox(latency_ms=self.latency_ms).start()
            cleanup.callback(self.sandbox.stop)
            self.tools = prepare_config(self.config_dir, self.tmp / "config", self.sandbox)
            self.env = daemon_environment(self.sandbox, f"sqlite:///{self.tmp / 'syncd.db'}")
            self.view = View(self.console, self.sandbox, self.tools, duration_s=self.duration_s)
            self.view.note(
                f"sandbox {self.sandbox.seed.organisation}: Jira {self.sandbox.jira.url}, Trello "
                f"{self.sandbox.trello.url}, Asana {self.sandbox.asana.url} ({self.latency_ms} ms per request)",
                phase="starting the daemon",
            )
            try:
                self.daemon = Daemon.start(
                    [*self.command, "run", *self._dirs()],
                    self.env,
                    self.tmp / "daemon.log",
                    lambda: self.signalled is not None,
                )
            except _Interrupted:
                return 0 if self.duration_s is None else 128 + (self.signalled or signal.SIGINT)
            cleanup.callback(self.daemon.stop, lambda: self.hurry)
            self.store = Store(self.env["SYNCD_STORE"])
            cleanup.callback(self.store.close)
            self.watcher = StoreWatcher(self.store)
            self.watcher.start()
            cleanup.callback(self.watcher.stop)
            cleanup.callback(self._kill_commands)
            with self.view:
                self._story()
            self._kill_commands()
            self.daemon.stop(lambda: self.hurry)
            self.watcher.stop()
            return self._summary()

    def _dirs(self) -> list[str]:
        return ["--config", str(self.tmp / "config"), "--mappings", str(self.mappings_dir)]

    def _kill_commands(self) -> None:
        for command in self.commands:
            command.kill()

    def _story(self) -> None:
        """Backfill, scenario, the lead's decision, then convergence (or running until stopped)."""
        view = self.view
        view.note(
            f"syncd run listens on {self.daemon.url}: webhooks from all three tools, a full pass every "
            f"{POLL_INTERVAL_S:g} s",
            phase="first pass: mirroring the organisation",
        )
        try:
            self.refs = self._wait_for_subject()
            view.refs = self.watcher.refs = self.refs
            view.note(
                f"{scenario.SUBJECT!r} is mirrored: Jira {self.refs.jira}, Trello card {self.refs.trello}, "
                f"Asana task {self.refs.asana}",
                phase="people edit; each rule decides a conflict",
            )
            self._play()
            view.note("waiting for the conflict the manual rule holds for a person", phase="waiting for a lead")
            while not self.outcome.resolved:
                self._wait(TICK_S)
            if self.duration_s is None:
                view.note("every rule has decided; syncd keeps running: Ctrl-C stops", phase="running (Ctrl-C stops)")
                while True:
                    self._wait(3600)
            view.note("checking convergence: no conflict, nothing quarantined, nothing to write", phase="converging")
            self._converge()
        except _Interrupted:
            self.outcome.interrupted = self.signalled
            view.note("stopping", phase="stopping")
        except _OutOfTime:
            self.outcome.out_of_time = True
            view.note(f"{self.duration_s:g} s are up", phase="time is up")
        except _DaemonExited:
            self.outcome.daemon_exit = self.daemon.process.returncode
            view.note(f"syncd run exited on its own with {self.outcome.daemon_exit}", phase="syncd run exited")

    def _wait(self, seconds: float) -> None:
        """Keep the view live for ``seconds``; raise when a signal asks to stop or the duration is up."""
        end = time.monotonic() + seconds
        while True:
            self._tick()
            if self.signalled is not None:
                raise _Interrupted
            if self.daemon.process.poll() is not None:
                raise _DaemonExited
            now = time.monotonic()
            if self.deadline is not None and now >= self.deadline:
                raise _OutOfTime
            if now >= end:
                return
            time.sleep(min(TICK_S, end - now))

    def _tick(self) -> None:
        """Show what the store recorded, decide the held conflict as a lead, redraw."""
        snapshot, events = self.watcher.take()
        self.view.events(events)
        if self.refs is not None:
            self._lead(snapshot)
        self.view.refresh()

    def _wait_for_subject(self) -> scenario.Refs:
        """The subject's refs once the first pass has mirrored and committed it in all three tools.

        Editing earlier could race syncd's own writes to the new mirrors, which is not what the scenario is about.
        """
        while True:
            with contextlib.ExitStack() as locked:
                for emulator in self.sandbox.emulators:
                    locked.enter_context(emulator.lock)
                try:
                    refs = scenario.find(self.sandbox)
                except StopIteration:
                    refs = None
            if refs is not None:
                self.watcher.refs = refs
                snapshot = self.watcher.snapshot
                # Edits start after the whole first pass: its writes (comment copies, say) would otherwise move
                # the subject's modification times and blur what "latest" means for the first conflict.
                if snapshot.subject is not None and snapshot.backfilled:
                    return refs
            self._wait(TICK_S)

    def _play(self) -> None:
        """Each rule's two edits, a conflict each: the two tools are held still from the first edit to the second.

        In real life the two edits would both happen within one sync interval; here syncd would mirror the first
        before the second otherwise (webhooks are fast). Holding the two emulators' locks makes syncd's requests to
        them wait, so its next pass sees both edits. Before each pair the daemon is let finish what it was doing,
        so no pass that read one tool before the first edit writes to the other after it.
        """
        assert self.refs is not None
        pairs = [list(edits) for _, edits in itertools.groupby(scenario.EDITS, key=lambda edit: edit.rule)]
        backfilled = False
        for pair in pairs:
            if not backfilled:
                backfilled = self.daemon.ready()
                self.view.phase = (
                    "people edit; each rule decides a conflict"
                    if backfilled
                    else "people edit; syncd's first pass still mirrors the organisation, then it sees their edits"
                )
            if backfilled:
                self._wait_quiet()
            involved = {edit.tool for edit in pair}
            with contextlib.ExitStack() as held:
                for tool, emulator in zip(TOOLS, self.sandbox.emulators, strict=True):
                    if tool in involved:
                        held.enter_context(emulator.lock)  # always in the same order: no deadlock
                for index, edit in enumerate(pair):
                    if index:
                        self._wait(PAIR_GAP_S)
                    self.sandbox.clock.advance(60)
                    edit.apply(self.sandbox, self.refs)
                    self.outcome.played += 1
                    self.view.edit(edit.person, TOOL_NAMES[edit.tool], edit.what, edit.rule)
            self._wait(EDIT_GAP_S)

    def _wait_quiet(self) -> None:
        """Wait (a few seconds at most) until no emulator has served a request for a moment."""
        end = time.monotonic() + 4 * QUIET_S + POLL_INTERVAL_S
        count, since = self._requests(), time.monotonic()
        while time.monotonic() < end:
            self._wait(0.1)
            now, current = time.monotonic(), self._requests()
            if current != count:
                count, since = current, now
            elif now - since >= QUIET_S:
                return

    def _requests(self) -> int:
        return sum(emulator.request_count() for emulator in self.sandbox.emulators)

    def _lead(self, snapshot: Snapshot) -> None:
        """A lead decides each conflict held for a person, with ``syncd conflicts resolve`` (audited there)."""
        for conflict in snapshot.conflicts:
            if conflict.state != "open" or conflict.id in self.resolving or conflict.sync_id != snapshot.subject:
                continue
            if self.attempts[conflict.id] >= 3:
                continue  # its error is shown; the summary will say the conflict is still held
            self.attempts[conflict.id] += 1
            argv = [*self.command, "conflicts", "resolve", conflict.id, "--take", scenario.MANUAL_TAKE, "--by", LEAD]
            command = Command.start([*argv, "--config", str(self.tmp / "config")], self.env, self.tmp, "resolve")
            self.commands.append(command)
            self.resolving[conflict.id] = command
            value = conflict.values.get(scenario.MANUAL_TAKE)
            what = f"decides the held {conflict.field} conflict: takes {scenario.MANUAL_TAKE}' value {value}"
            self.view.edit(LEAD, f"syncd conflicts resolve --by {LEAD}", what, "manual")
        for conflict_id, command in list(self.resolving.items()):
            result = command.result()
            if result is None or self.outcome.resolved:
                continue
            code, out, err = result
            if code == 0:
                self.outcome.resolved = True
                self.view.note(_first_line(out) or f"conflict {conflict_id} decided")
            else:
                del self.resolving[conflict_id]  # tried again on the next tick while it is still open
                self.view.note(f"syncd conflicts resolve failed ({code}): {_first_line(err)}")

    def _converged_so_far(self) -> bool:
        """Everything a look at the store and the tools can tell: the dry run is the last, slower check."""
        snapshot = self.watcher.snapshot
        return (
            self.outcome.resolved
            and not snapshot.conflicts
            and not snapshot.quarantined
            and not snapshot.retrying
            and self.refs is not None
            and not mismatches(self.sandbox, self.refs)
        )

    def _converge(self) -> None:
        """Until the time is up: once all looks converged, a dry run (``syncd plan``) must plan nothing."""
        planning: Command | None = None
        while True:
            self._wait(1.0)
            if planning is None:
                if self._converged_so_far():
                    planning = Command.start([*self.command, "plan", *self._dirs()], self.env, self.tmp, "plan")
                    self.commands.append(planning)
                continue
            result = planning.result()
            if result is None:
                continue
            planning = None
            if self._plan_clean(*result) and self._converged_so_far():
                self.outcome.verified = True
                self.view.note("converged: syncd plan writes nothing", phase="converged")
                return

    def _final_plan(self) -> bool:
        """The dry run after the daemon stopped (a stable state): True if it plans nothing."""
        try:
            done = subprocess.run(  # noqa: S603 - our own command, fixed arguments
                [*self.command, "plan", *self._dirs()],
                env=self.env,
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
        except subprocess.TimeoutExpired:
            self.outcome.plan_problem = "syncd plan did not finish within 120 s"
            return False
        return self._plan_clean(done.returncode, done.stdout, done.stderr)

    def _plan_clean(self, code: int, out: str, err: str) -> bool:
        """Whether a dry run's result means nothing is left to write; if not, remember what it said."""
        if code != 0:
            self.outcome.plan_problem = f"syncd plan failed with {code}: {_short(_first_line(err), 100)}"
        elif out.strip():
            planned = out.strip().splitlines()
            example = _short(planned[0], 100)
            self.outcome.plan_problem = f"syncd plan would still do {len(planned)} things, e.g. {example}"
        else:
            return True
        return False

    # --- the summary

    def _summary(self) -> int:
        """Print what happened and whether it converged; the exit code."""
        outcome = self.outcome
        recorded = query(self.store)
        kinds = Counter(entry.event.kind for entry in recorded)
        decided: Counter[str] = Counter()
        for entry in recorded:
            event = entry.event
            if event.kind == "conflict" and event.outcome == "decided" and event.rule:
                # A held conflict a person decided is recorded as "manual:<department taken>".
                decided[event.rule.partition(":")[0] if event.rule.startswith("manual") else event.rule] += 1
        per_tool: Counter[str] = Counter()
        with self.store.transaction() as tx:
            rows = tx.connection.execute(sql_select(links.c.endpoint, func.count()).group_by(links.c.endpoint)).all()
            held = tx.conflicts()
            failing = tx.quarantined()
        for endpoint, count in rows:
            per_tool[self.tools.get(str(endpoint).rpartition("/")[2], "?")] += int(count)
        wrong = mismatches(self.sandbox, self.refs) if self.refs is not None else ["it was not mirrored"]
        quarantined = sum(1 for entry in failing if entry.held)
        elapsed = time.monotonic() - self.started
        total = len(scenario.EDITS)

        lines = [
            f"summary after {elapsed:.0f} s",
            "  items mirrored: " + ", ".join(f"{TOOL_NAMES[tool]} {per_tool[tool]}" for tool in TOOLS),
            f"  remote writes: {sum(kinds[kind] for kind in WRITE_KINDS)} ("
            + ", ".join(f"{kind} {kinds[kind]}" for kind in WRITE_KINDS)
            + ")",
            "  conflicts decided: "
            + ", ".join(f"{rule} {decided[rule]}" for rule in [*RULES, *sorted(set(decided) - set(RULES))]),
            f"  held conflicts left: {len(held)}",
            f"  quarantined items: {quarantined} (failing and retried: {len(failing) - quarantined})",
            f"  edits played: {outcome.played} of {total}",
            "  subject matches the expected item in Jira, Trello and Asana: "
            + ("yes" if not wrong else "no: " + "; ".join(wrong[:3]))
            + (f"; and {len(wrong) - 3} more" if len(wrong) > 3 else ""),
        ]
        if outcome.daemon_exit is not None:
            logged = (self.tmp / "daemon.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()
            lines.append(f"syncd run exited on its own with {outcome.daemon_exit}; its last log lines:")
            lines += [f"    {line}" for line in logged[-5:]]
        if outcome.interrupted is not None:
            lines.append(f"stopped by {signal.Signals(outcome.interrupted).name}")
            self._print(lines)
            return 0 if self.duration_s is None else 128 + outcome.interrupted
        if outcome.out_of_time and outcome.played < total:
            lines.append(
                f"the scenario needs more time: {outcome.played} of {total} edits were played in "
                f"{self.duration_s:g} s; run with a longer --duration"
            )
        converged = (
            outcome.played == total
            and outcome.resolved
            and not held
            and not failing
            and not wrong
            and (outcome.verified or self._final_plan())
        )
        if outcome.out_of_time and outcome.played == total and not converged:
            lines.append(f"  {self.duration_s:g} s were not enough for everything to converge")
        if not converged and outcome.plan_problem:
            lines.append(f"  {outcome.plan_problem}")
        lines.append("converged" if converged else "NOT converged")
        self._print(lines)
        return 0 if converged else 1

    def _print(self, lines: list[str]) -> None:
        for line in lines:
            self.console.print(Text(line), soft_wrap=True)


def run(*, duration_s: float | None, latency_ms: int, config_dir: Path | None, mappings_dir: Path | None) -> int:
    """Run the demo (see the module docstring); the exit code. Raises DemoError when it cannot start."""
    config = config_dir if config_dir is not None else shipped("config")
    mappings = mappings_dir if mappings_dir is not None else shipped("mappings")
    for kind, directory in (("configuration", config), ("mappings", mappings)):
        if not directory.is_dir():
            raise DemoError(
                f"no {kind} directory at {directory}: pass --config and --mappings "
                "(the demo runs the syncd repository's config/ and mappings/)"
            )
    demo = Demo(
        duration_s=duration_s,
        latency_ms=latency_ms,
        config_dir=config.resolve(),
        mappings_dir=mappings.resolve(),
        console=Console(soft_wrap=False),
    )
    return demo.run()
