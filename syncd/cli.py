"""The ``syncd`` command.

Machine-readable output goes to standard output (one JSON line for ``sandbox serve``, so a script or test can
read the URLs and credentials); everything meant for a person goes to standard error.
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
from rich.console import Console
from rich.markup import escape

from syncd import __version__
from syncd.yamlfile import FileError

app = typer.Typer(
    name="syncd",
    help="Mirror cross-department work items between Jira, Trello and Asana.",
    no_args_is_help=True,
    add_completion=False,
    # Locals in a traceback could hold credentials: never print them.
    pretty_exceptions_show_locals=False,
)
sandbox_app = typer.Typer(help="Local emulators of Jira, Trello and Asana (no accounts needed).", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")

_stderr = Console(stderr=True, soft_wrap=True)  # no hard wraps: paths and URLs stay copyable


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Mirror cross-department work items between Jira, Trello and Asana."""


@sandbox_app.command("serve")
def sandbox_serve(
    seed: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, readable=True, help="Seed file (default: the shipped organisation)."),
    ] = None,
    latency_ms: Annotated[int, typer.Option(min=0, help="Milliseconds added to every API request.")] = 0,
) -> None:
    """Serve the three emulators on 127.0.0.1 and print one JSON line with each API's URL and credentials."""
    from syncd.sandbox.org import Sandbox  # noqa: PLC0415 - imported here so `syncd --help` stays fast

    try:
        sandbox = Sandbox(seed, latency_ms=latency_ms)
    except FileError as exc:
        _stderr.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from exc
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    with sandbox:
        sys.stdout.write(json.dumps(sandbox.credentials()) + "\n")
        sys.stdout.flush()
        _stderr.print(
            f"[bold]syncd sandbox[/] serving {sandbox.seed.organisation}: "
            f"Jira {sandbox.jira.url}, Trello {sandbox.trello.url}, Asana {sandbox.asana.url}. Ctrl-C stops."
        )
        while not stop.wait(0.5):
            pass
    _stderr.print("syncd sandbox stopped.")


def main() -> None:
    """Console-script entry point."""
    app()
