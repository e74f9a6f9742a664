"""syncd as the demo's child processes: the daemon, and the short commands a person runs beside it.

Each is the real command run the way an operator runs it (the demo shows syncd, it does not re-implement it); what
is owned here is starting them safely, reading them without blocking the live view, and stopping them cleanly.
"""

from __future__ import annotations

import contextlib
import json
import select
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from syncd.demo.stops import Interrupted
from syncd.demo.timing import LISTEN_TIMEOUT_S, SHUTDOWN_TIMEOUT_S, TICK_S
from syncd.errors import DemoError


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
                raise Interrupted
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
