"""When each group runs which pass: the polling schedule, webhook hints, and one pass per group at a time.

Its own module because the policy is the daemon's subtlest part and is tested alone on a fake clock
(``tests/test_daemon.py``): it does no I/O and knows nothing of passes beyond a group's name and its hints.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

HINT_LIMIT = 1000
"""Refs waiting per group; beyond this a group gets one full pass instead (it reads every change anyway)."""

Hints = dict[str, list[str]]
"""member -> refs, what :meth:`syncd.engine.Pass.run` takes as ``hints``."""


@dataclass
class _GroupSchedule:
    interval_s: float
    next_full_at: float
    full_requested: bool = False
    running: bool = False
    hints: dict[str, set[str]] = field(default_factory=dict)
    hint_count: int = 0
    first_hint_at: float | None = None


@dataclass(frozen=True)
class Job:
    """One pass to run: a full pass (``hints`` None) or a targeted one."""

    group: str
    hints: Hints | None


class Scheduler:
    """When each group runs which pass. Thread-safe; the clock is injectable so the policy is testable alone."""

    def __init__(
        self, *, debounce_s: float, hint_limit: int = HINT_LIMIT, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.debounce_s = debounce_s
        self.hint_limit = hint_limit
        self._clock = clock
        self._groups: dict[str, _GroupSchedule] = {}
        self._closed = False
        self.changed = threading.Condition()
        """Notified whenever something may have become due; the dispatcher waits on it."""

    def set_groups(self, intervals: Mapping[str, float], *, debounce_s: float | None = None) -> None:
        """Adopt the groups of a (re)loaded configuration; a group that stays keeps its schedule and its hints."""
        with self.changed:
            now = self._clock()
            if debounce_s is not None:
                self.debounce_s = debounce_s
            for name in set(self._groups) - set(intervals):
                del self._groups[name]
            for name, interval in intervals.items():
                current = self._groups.get(name)
                if current is None:
                    self._groups[name] = _GroupSchedule(interval_s=interval, next_full_at=now)
                else:
                    current.next_full_at += interval - current.interval_s
                    current.interval_s = interval
            self.changed.notify_all()

    def hint(self, group: str, member: str, refs: list[str]) -> str:
        """Queue refs for a targeted pass: "queued", or "overflow" (a full pass was requested instead)."""
        with self.changed:
            schedule = self._groups.get(group)
            if schedule is None or self._closed:
                return "ignored"
            if schedule.full_requested:
                return "overflow"
            waiting = schedule.hints.setdefault(member, set())
            fresh = [ref for ref in dict.fromkeys(refs) if ref not in waiting]
            if schedule.hint_count + len(fresh) > self.hint_limit:
                schedule.full_requested = True
                schedule.hints.clear()
                schedule.hint_count = 0
                schedule.first_hint_at = None
                self.changed.notify_all()
                return "overflow"
            waiting.update(fresh)
            schedule.hint_count += len(fresh)
            if schedule.first_hint_at is None and schedule.hint_count:
                schedule.first_hint_at = self._clock()
            self.changed.notify_all()
            return "queued"

    def poll_now(self, group: str) -> None:
        """Run a full pass of the group at once (this replica has just taken it over: catch up without waiting)."""
        with self.changed:
            schedule = self._groups.get(group)
            if schedule is None or self._closed:
                return
            schedule.full_requested = True
            schedule.hints.clear()
            schedule.hint_count = 0
            schedule.first_hint_at = None
            self.changed.notify_all()

    def take(self) -> list[Job]:
        """The passes due now (each group marked running until :meth:`done`); a full pass absorbs waiting hints."""
        jobs: list[Job] = []
        with self.changed:
            if self._closed:
                return jobs
            now = self._clock()
            for name, schedule in sorted(self._groups.items()):
                if schedule.running:
                    continue
                if schedule.full_requested or now >= schedule.next_full_at:
                    jobs.append(Job(name, None))
                elif schedule.first_hint_at is not None and now >= schedule.first_hint_at + self.debounce_s:
                    jobs.append(Job(name, {m: sorted(refs) for m, refs in schedule.hints.items() if refs}))
                else:
                    continue
                schedule.running = True
                schedule.full_requested = False
                schedule.hints = {}
                schedule.hint_count = 0
                schedule.first_hint_at = None
        return jobs

    def take_hints(self, group: str) -> Hints | None:
        """The hints queued for a group whose pass is running, handed to that pass to fold in (None: nothing).

        No debounce: the running pass takes them between its rounds, so they wait for nothing. A full pass
        requested meanwhile (the hints overflowed) stays scheduled and takes nothing here.
        """
        with self.changed:
            schedule = self._groups.get(group)
            if schedule is None or self._closed or schedule.full_requested or not schedule.hint_count:
                return None
            hints = {m: sorted(refs) for m, refs in schedule.hints.items() if refs}
            schedule.hints = {}
            schedule.hint_count = 0
            schedule.first_hint_at = None
            return hints

    def done(self, job: Job, started: float) -> None:
        """A pass ended; a full pass sets the next poll one interval after it started."""
        with self.changed:
            schedule = self._groups.get(job.group)
            if schedule is not None:
                schedule.running = False
                if job.hints is None:
                    schedule.next_full_at = started + schedule.interval_s
            self.changed.notify_all()

    def wait(self, timeout_s: float) -> None:
        """Sleep until the next pass may be due, something changed, or ``timeout_s`` passed."""
        with self.changed:
            if self._closed:
                return
            now = self._clock()
            due = [timeout_s]
            for schedule in self._groups.values():
                if schedule.running:
                    continue
                due.append(schedule.next_full_at - now)
                if schedule.first_hint_at is not None:
                    due.append(schedule.first_hint_at + self.debounce_s - now)
            delay = min(due)
            if delay > 0:
                self.changed.wait(delay)

    def close(self) -> None:
        """Take no more work (shutdown)."""
        with self.changed:
            self._closed = True
            self.changed.notify_all()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed
