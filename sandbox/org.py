"""The three emulators of one seeded organisation, started and stopped together on one shared clock."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from sandbox.asana import AsanaEmulator
from sandbox.core import Clock, Emulator
from sandbox.jira import JiraEmulator
from sandbox.seed import Seed, load_seed
from sandbox.trello import TrelloEmulator


class Sandbox:
    """The three emulators of one seeded organisation, started and stopped together."""

    def __init__(
        self,
        seed: Seed | Path | str | None = None,
        *,
        latency_ms: int = 0,
        fault_seed: int | None = None,
    ) -> None:
        self.seed = seed if isinstance(seed, Seed) else load_seed(seed)
        self.clock = Clock()
        options: dict[str, Any] = {"latency_ms": latency_ms, "clock": self.clock, "fault_seed": fault_seed}
        self.jira = JiraEmulator(self.seed, **options)
        self.trello = TrelloEmulator(self.seed, **options)
        self.asana = AsanaEmulator(self.seed, **options)

    @property
    def emulators(self) -> tuple[Emulator, ...]:
        """Jira, Trello and Asana, in that order."""
        return (self.jira, self.trello, self.asana)

    def start(self) -> Sandbox:
        """Serve all three on ephemeral ports of 127.0.0.1."""
        started: list[Emulator] = []
        try:
            for emulator in self.emulators:
                emulator.start()
                started.append(emulator)
        except BaseException:
            for emulator in started:
                emulator.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop all three."""
        for emulator in self.emulators:
            emulator.stop()

    def credentials(self) -> dict[str, dict[str, str]]:
        """The service account's connection info per tool (what ``syncd sandbox serve`` prints)."""
        return {
            "jira": self.jira.credentials(),
            "trello": self.trello.credentials(),
            "asana": self.asana.credentials(),
        }

    def set_latency(self, latency_ms: int) -> None:
        """Add this many milliseconds to every API request of every emulator."""
        for emulator in self.emulators:
            emulator.latency_ms = latency_ms

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
