"""What the demo shows: the live Rich view in a terminal, plain lines elsewhere, and how a value reads in either.

Kept apart from the run so the story (what happens when) and its presentation change independently.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sandbox import scenario
from sandbox.org import Sandbox
from syncd.audit import AuditEvent, Recorded
from syncd.demo.compare import TOOL_NAMES, TOOLS, subject_values

FIELDS = ("title", "status", "assignees", "labels", "due", "priority", "description")
"""The rows of the live view: the subject's fields the scenario edits (the description by its first line)."""
TAIL = 10
"""Audit events in the live view: enough for one conflict's decision and the writes it caused."""


def short(value: Any, width: int = 40) -> str:  # noqa: ANN401 - any canonical (JSON-like) value
    """A value on one line of at most ``width`` characters, so a long one never breaks the view's layout."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def change(event: AuditEvent) -> str:
    """What an event changed, in one short line: the field and its new value, or the fields a write wrote."""
    if event.kind == "decision":
        return f"{event.field}: take {event.origin}'s value"
    if event.field is not None:
        return short(f"{event.field}={short(event.new, 30)}", 50)
    if isinstance(event.new, dict):
        return short(", ".join(f"{name}={short(value, 20)}" for name, value in event.new.items()), 50)
    return short(event.new if event.new is not None else event.message or "", 50)


def clock(moment: datetime | None = None) -> str:
    """A moment (default: now) as local wall-clock time, as the person watching reads it."""
    return (moment or datetime.now(UTC)).astimezone().strftime("%H:%M:%S")


class View:
    """What the demo shows: a live Rich view in a terminal, plain lines otherwise (a log file, CI, a test).

    The live view is redrawn by the main loop (no refresh thread): the main thread is the one holding emulator
    locks while people edit, and reading the tools' state under a lock it already holds never waits.
    """

    def __init__(
        self, console: Console, sandbox: Sandbox, tools: dict[str, str], *, duration_s: float | None, lead: str
    ) -> None:
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
        self.people[lead] = "A lead"
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
        self.story.append(Text(f"{clock()} {message}", style="dim"))
        self._plain(f"{clock()} demo   {message}")

    def edit(self, person: str, tool: str, what: str, rule: str) -> None:
        """A person's edit (or the lead's decision), as it happens."""
        who = self.people.get(person, person)
        line = f"{clock()} {who} ({tool}) {what} [{rule}]"
        self.story.append(Text(line))
        self._plain(f"{clock()} edit   {who} ({tool}) {what} [{rule}]")

    def events(self, new: list[Recorded]) -> None:
        """New audit events: the tail of the live view, or a plain line each."""
        self.tail = (self.tail + new)[-TAIL:]
        for recorded in new:
            event = recorded.event
            parts = [f"{clock(event.at)} audit  #{recorded.seq} {self._kind(event)} {self._where(event)}"]
            parts += [change(event)]
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
            row = (clock(event.at), self._kind(event), self._where(event), change(event), event.rule, event.person)
            audit.add_row(*(Text(cell or "") for cell in row))
        # Everything but the story takes about 30 lines; the story gets what the terminal has left.
        story = self.story[-max(3, min(14, self.console.height - 30)) :]
        return Group(header, subject, Text("people and syncd", style="bold"), *story, audit)
