"""``syncd demo``: watch syncd work against the sandbox organisation, with no account anywhere.

The demo itself (emulators, a daemon, scripted edits, the live view) is :mod:`syncd.demo`; this is its command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def demo(
    duration: Annotated[
        float | None,
        typer.Option(
            "--duration",
            min=1,
            metavar="SECONDS",
            help="Stop after this many seconds (earlier once everything converged), print a summary and exit 0 "
            "only if everything converged: for scripts and CI (default: run until Ctrl-C).",
        ),
    ] = None,
    latency_ms: Annotated[
        int,
        typer.Option(
            min=0,
            metavar="MS",
            help="Milliseconds the sandbox adds to every API request (the real services answer in 20 to 200 ms).",
        ),
    ] = 20,
    config_dir: Annotated[
        Path | None, typer.Option("--config", help="The configuration to run (default: the repository's config/).")
    ] = None,
    mappings_dir: Annotated[
        Path | None, typer.Option("--mappings", help="The sync-group mappings (default: the repository's mappings/).")
    ] = None,
) -> int:
    """Watch syncd work with no account anywhere: the sandbox organisation, the daemon, people's edits, conflicts.

    Starts the Jira, Trello and Asana emulators, runs `syncd run` against them, plays scripted edits that make each
    conflict rule decide once (a lead resolves the held one) and shows each tool's copy of the item side by side
    with the audit log. Ctrl-C or SIGTERM stops everything.
    """
    from syncd import demo as scenario  # noqa: PLC0415 - keeps `syncd --help` fast

    # A broken configuration or a daemon that would not start raises DemoError: the handler says it, exit 2.
    return scenario.run(duration_s=duration, latency_ms=latency_ms, config_dir=config_dir, mappings_dir=mappings_dir)
