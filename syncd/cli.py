"""The ``syncd`` command.

Machine-readable output goes to standard output (one JSON line for ``sandbox serve``, so a script or test can
read the URLs and credentials); everything meant for a person goes to standard error.
"""

from __future__ import annotations

import concurrent.futures
import json
import signal
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from syncd import __version__
from syncd.cli_audit import audit_app
from syncd.cli_ops import conflicts_app, init_app, quarantine_app, status
from syncd.errors import SyncdError
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
app.add_typer(audit_app, name="audit")
app.add_typer(conflicts_app, name="conflicts")
app.add_typer(quarantine_app, name="quarantine")
app.command("status")(status)
app.add_typer(init_app, name="init")

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
    from sandbox.org import Sandbox  # noqa: PLC0415 - imported here so `syncd --help` stays fast

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


@app.command("schema")
def schema(
    kind: Annotated[
        str | None, typer.Argument(help="syncd.yaml, department.yaml or mapping.yaml (default: all, as one object).")
    ] = None,
) -> None:
    """Print the JSON Schema of syncd's file kinds, for editor completion and CI validation."""
    from syncd.config import schemas  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.mapping import GroupFile  # noqa: PLC0415 - keeps `syncd --help` fast

    every = {**schemas(), "mapping.yaml": GroupFile.model_json_schema(by_alias=True)}
    if kind is not None and kind not in every:
        _stderr.print(f"[red]error:[/] no file kind {escape(kind)!r}; choose one of {', '.join(every)}")
        raise typer.Exit(2)
    sys.stdout.write(json.dumps(every[kind] if kind else every, indent=2) + "\n")


@app.command("check")
def check(
    config_dir: Annotated[Path, typer.Option("--config", help="The configuration directory.")] = Path("config"),
    mappings_dir: Annotated[Path, typer.Option("--mappings", help="The sync-group mappings directory.")] = Path(
        "mappings"
    ),
    online: Annotated[
        bool,
        typer.Option(
            "--online",
            help="Then ask each department's tool: credentials, workspace, statuses, workflow paths and people.",
        ),
    ] = False,
) -> None:
    """Validate the configuration and every mapping (offline); list every problem with file and line."""
    from connectors.factory import CAPABILITIES  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.config import ConfigError, load_config  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.mapping import Group, compile_group  # noqa: PLC0415 - keeps `syncd --help` fast

    problems: list[str] = []
    try:
        config = load_config(config_dir)
    except ConfigError as error:
        problems += [str(each) for each in error.errors]
        config = None
    groups: list[Group] = []
    if config is not None:
        tools = {name: department.connection.tool for name, department in config.departments.items()}
        for path in sorted(mappings_dir.glob("*.yaml")):
            try:
                groups.append(compile_group(path, tools, CAPABILITIES))
            except FileError as error:
                problems.append(str(error))
    if not problems and online:
        # The composition root builds the connectors; syncd.checks only calls describe() on them.
        from connectors.factory import connector_for  # noqa: PLC0415 - keeps `syncd --help` fast
        from syncd.checks import online_problems  # noqa: PLC0415 - keeps `syncd --help` fast

        assert config is not None
        problems = online_problems(config, groups, connector_for, CAPABILITIES)
    if problems:
        for problem in problems:
            _stderr.print(f"[red]error:[/] {escape(problem)}", highlight=False)
        raise typer.Exit(2)
    assert config is not None
    checked = "; every tool answered and matches the mappings" if online else ""
    _stderr.print(f"[green]ok:[/] {len(config.departments)} departments, {len(groups)} sync groups{checked}")


def _load(config_dir: Path, mappings_dir: Path) -> tuple[Any, list[Any]]:
    """Configuration and compiled groups, or exit 2 listing every problem."""
    from connectors.factory import CAPABILITIES  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.config import ConfigError, load_config  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.mapping import compile_group  # noqa: PLC0415 - keeps `syncd --help` fast

    try:
        config = load_config(config_dir)
        tools = {name: department.connection.tool for name, department in config.departments.items()}
        groups = [compile_group(path, tools, CAPABILITIES) for path in sorted(mappings_dir.glob("*.yaml"))]
    except (ConfigError, FileError) as error:
        _stderr.print(f"[red]error:[/] {escape(str(error))}", highlight=False)
        raise typer.Exit(2) from error
    return config, groups


def _passes(config_dir: Path, mappings_dir: Path, *, dry_run: bool) -> list[Any]:
    # The composition root: the one module of syncd that wires connectors to the engine.
    from connectors.factory import connector_for  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.config import config_version  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.engine import Pass  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.store import Store  # noqa: PLC0415 - keeps `syncd --help` fast

    config, groups = _load(config_dir, mappings_dir)
    store = Store(config.instance.store)
    reports = []
    workers = config.instance.apply_workers
    pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="syncd-apply") if workers > 1 else None
    try:
        store.migrate()
        for group in groups:

            def build(members: Iterable[str] = tuple(group.codecs)) -> dict[str, Any]:
                return {member: connector_for(config.departments[member]) for member in members}

            version = config_version(config_dir, mappings_dir)
            run = Pass(group, build(), store, config_version=version, pool=pool, connectors_for_thread=build)
            reports.append(run.run(dry_run=dry_run))
    except SyncdError as error:
        # Credentials, an unreachable or refusing tool, an endpoint that lost its items: say it, no traceback.
        _stderr.print(f"[red]error:[/] {escape(str(error))}", highlight=False)
        raise typer.Exit(2) from error
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
        store.close()
    return reports


@app.command("once")
def once(
    config_dir: Annotated[Path, typer.Option("--config", help="The configuration directory.")] = Path("config"),
    mappings_dir: Annotated[Path, typer.Option("--mappings", help="The sync-group mappings directory.")] = Path(
        "mappings"
    ),
) -> None:
    """Run one pass over every sync group; exit 1 if an item failed or a tool could not be read, 2 if refused.

    An item that failed and a tool that did not answer are retried on the next pass; a tool that refused syncd's
    credentials or configuration (exit 2) needs a person.
    """
    reports = _passes(config_dir, mappings_dir, dry_run=False)
    for report in reports:
        _stderr.print(
            f"{report.group}: {len(report.plans)} items, {report.writes} writes, "
            f"{len(report.problems)} values not mapped, {len(report.failures)} failed"
        )
        for member, error in sorted(report.down.items()):
            _stderr.print(f"  [red]not read[/] {member}: {escape(error)}", highlight=False)
        for sync_id, failure in report.failures.items():
            _stderr.print(f"  [red]failed[/] {sync_id}: {escape(failure)}", highlight=False)
        for sync_id, member, refusal in report.refused:
            _stderr.print(
                f"  [yellow]left out[/] {sync_id} {refusal.field} in {member}: {escape(refusal.message)}",
                highlight=False,
            )
    if any(report.fatal for report in reports):
        raise typer.Exit(2)
    if not all(report.ok for report in reports):
        raise typer.Exit(1)


@app.command("plan")
def plan_command(
    config_dir: Annotated[Path, typer.Option("--config", help="The configuration directory.")] = Path("config"),
    mappings_dir: Annotated[Path, typer.Option("--mappings", help="The sync-group mappings directory.")] = Path(
        "mappings"
    ),
) -> None:
    """Show what one pass would write where, and why, without writing anything."""
    for report in _passes(config_dir, mappings_dir, dry_run=True):
        for decided in report.plans:
            for step in decided.steps:
                detail = getattr(step, "values", None)
                sys.stdout.write(
                    f"{report.group} {decided.sync_id} {type(step).__name__.lower()} {step.endpoint}"
                    f"{' ' + json.dumps(detail, sort_keys=True, default=str) if detail else ''}  # {step.reason}\n"
                )
            for conflict in decided.conflicts:
                sys.stdout.write(
                    f"{report.group} {decided.sync_id} conflict {conflict.field} rule={conflict.rule} "
                    f"winner={conflict.winner} values={json.dumps(conflict.values, sort_keys=True, default=str)}\n"
                )


@app.command("run")
def run_command(
    config_dir: Annotated[Path, typer.Option("--config", help="The configuration directory.")] = Path("config"),
    mappings_dir: Annotated[Path, typer.Option("--mappings", help="The sync-group mappings directory.")] = Path(
        "mappings"
    ),
) -> None:
    """Run the daemon: poll, take webhooks, serve /healthz /readyz /metrics; SIGTERM drains, SIGHUP reloads."""
    import os  # noqa: PLC0415 - keeps `syncd --help` fast

    from connectors.factory import CAPABILITIES, connector_for, observe_requests  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd import daemon  # noqa: PLC0415 - keeps `syncd --help` fast

    def listening(url: str) -> None:
        sys.stdout.write(json.dumps({"listen": url}) + "\n")
        sys.stdout.flush()

    try:
        code = daemon.run(
            config_dir,
            mappings_dir,
            connector_for=connector_for,
            capabilities=CAPABILITIES,
            observe_requests=observe_requests,
            on_listening=listening,
        )
    except (SyncdError, OSError) as error:
        # A broken configuration (every file:line problem), a missing credential, a port in use: no traceback.
        _stderr.print(f"[red]error:[/] {escape(str(error))}", highlight=False)
        raise typer.Exit(2) from error
    if code != 0:
        # Passes still running past the shutdown timeout would hold the interpreter at exit: leave now.
        sys.stderr.flush()
        os._exit(code)


@app.command("demo")
def demo_command(
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
) -> None:
    """Watch syncd work with no account anywhere: the sandbox organisation, the daemon, people's edits, conflicts.

    Starts the Jira, Trello and Asana emulators, runs `syncd run` against them, plays scripted edits that make each
    conflict rule decide once (a lead resolves the held one) and shows each tool's copy of the item side by side
    with the audit log. Ctrl-C or SIGTERM stops everything.
    """
    from syncd import demo  # noqa: PLC0415 - keeps `syncd --help` fast

    try:
        code = demo.run(duration_s=duration, latency_ms=latency_ms, config_dir=config_dir, mappings_dir=mappings_dir)
    except (SyncdError, OSError) as error:
        # A broken configuration (every file:line problem), a daemon that would not start: no traceback.
        _stderr.print(f"[red]error:[/] {escape(str(error))}", highlight=False)
        raise typer.Exit(2) from error
    raise typer.Exit(code)


def main() -> None:
    """Console-script entry point."""
    app()
