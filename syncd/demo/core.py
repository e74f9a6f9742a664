"""One run of the demo: the story from the sandbox's start to the summary and the exit code.

The composition of the other modules: it starts the sandbox and the daemon, plays the scenario's edits, has a lead
decide the held conflict, checks convergence (a dry run must plan nothing) and summarises; ``run()`` is the entry
point ``syncd demo`` calls.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.text import Text
from sqlalchemy import func
from sqlalchemy import select as sql_select

from sandbox import scenario
from sandbox.org import Sandbox
from syncd.audit import query
from syncd.demo.child import Command, Daemon
from syncd.demo.compare import TOOL_NAMES, TOOLS, first_line, mismatches
from syncd.demo.prepare import WEB_USER, add_web_page, daemon_environment, prepare_config, shipped, syncd_command
from syncd.demo.stops import DaemonExited, Interrupted, OutOfTime
from syncd.demo.timing import EDIT_GAP_S, PAIR_GAP_S, POLL_INTERVAL_S, QUIET_S, TICK_S
from syncd.demo.view import View, short
from syncd.demo.watch import Snapshot, StoreWatcher
from syncd.errors import DemoError
from syncd.store import Store
from syncd.store.schema import links

WRITE_KINDS = ("write", "create", "archive", "comment")
"""Audit event kinds that are remote writes in a tool."""
RULES = ("latest", "owner:engineering", "prefer:engineering,marketing,sales", "union", "merge-text", "manual")
"""The rules of the shipped mapping, in the order the scenario exercises them (the summary lists each)."""
LEAD = "lead@corp.example"
"""Who decides the held ``manual`` conflict, for the audit log."""


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
            self.token_file = self.tmp / "web-token"
            self.env["SYNCD_WEB_SESSION_SECRET"] = add_web_page(self.tmp / "config", self.token_file)
            self.view = View(self.console, self.sandbox, self.tools, duration_s=self.duration_s, lead=LEAD)
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
            except Interrupted:
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
        view.note(
            f"the web page: {self.daemon.url}/ui/ (sign in as {WEB_USER} with the token in {self.token_file}); "
            "the held conflict waits there for a lead"
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
        except Interrupted:
            self.outcome.interrupted = self.signalled
            view.note("stopping", phase="stopping")
        except OutOfTime:
            self.outcome.out_of_time = True
            view.note(f"{self.duration_s:g} s are up", phase="time is up")
        except DaemonExited:
            self.outcome.daemon_exit = self.daemon.process.returncode
            view.note(f"syncd run exited on its own with {self.outcome.daemon_exit}", phase="syncd run exited")

    def _wait(self, seconds: float) -> None:
        """Keep the view live for ``seconds``; raise when a signal asks to stop or the duration is up."""
        end = time.monotonic() + seconds
        while True:
            self._tick()
            if self.signalled is not None:
                raise Interrupted
            if self.daemon.process.poll() is not None:
                raise DaemonExited
            now = time.monotonic()
            if self.deadline is not None and now >= self.deadline:
                raise OutOfTime
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
        """The edits by field: an edit alone is simply carried; two on one field are a conflict for their rule.

        For a conflict the two tools are held still from the first edit to the second. In real life the two edits
        would both happen within one sync interval; here syncd would mirror the first before the second otherwise
        (webhooks are fast). Holding the two emulators' locks makes syncd's requests to them wait, so its next pass
        sees both edits. Before each group the daemon is let finish what it was doing, so no pass that read one
        tool before the first edit writes to the other after it.
        """
        assert self.refs is not None
        pairs = [list(edits) for _, edits in itertools.groupby(scenario.EDITS, key=lambda edit: edit.field)]
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
                self.view.note(first_line(out) or f"conflict {conflict_id} decided")
            else:
                del self.resolving[conflict_id]  # tried again on the next tick while it is still open
                self.view.note(f"syncd conflicts resolve failed ({code}): {first_line(err)}")

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
            self.outcome.plan_problem = f"syncd plan failed with {code}: {short(first_line(err), 100)}"
        elif out.strip():
            planned = out.strip().splitlines()
            example = short(planned[0], 100)
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
