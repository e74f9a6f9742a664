"""``syncd sandbox serve``: the Jira, Trello and Asana emulators on 127.0.0.1, for trying syncd with no account.

The one JSON line on standard output carries each API's URL and credentials, so a script or a test can read them;
what a person reads goes to standard error. The only module of ``syncd/cli/`` that imports the emulators.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from syncd.cli.console import stderr

sandbox_app = typer.Typer(help="Local emulators of Jira, Trello and Asana (no accounts needed).", no_args_is_help=True)


@sandbox_app.command("serve")
def serve(
    seed: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, readable=True, help="Seed file (default: the shipped organisation)."),
    ] = None,
    latency_ms: Annotated[int, typer.Option(min=0, help="Milliseconds added to every API request.")] = 0,
) -> None:
    """Serve the three emulators on 127.0.0.1 and print one JSON line with each API's URL and credentials."""
    from sandbox.org import Sandbox  # noqa: PLC0415 - imported here so `syncd --help` stays fast

    sandbox = Sandbox(seed, latency_ms=latency_ms)  # a broken seed file raises FileError: file, line and fix
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    with sandbox:
        sys.stdout.write(json.dumps(sandbox.credentials()) + "\n")
        sys.stdout.flush()
        stderr.print(
            f"[bold]syncd sandbox[/] serving {sandbox.seed.organisation}: "
            f"Jira {sandbox.jira.url}, Trello {sandbox.trello.url}, Asana {sandbox.asana.url}. Ctrl-C stops."
        )
        while not stop.wait(0.5):
            pass
    stderr.print("syncd sandbox stopped.")
