"""The ``syncd`` command: one module per command family, one error handler.

==============  =============================================================================================
module          owns
==============  =============================================================================================
``sync``        ``once``, ``plan``, ``run``: the composition root, where connectors are built for the engine
``check``       ``check`` (offline, ``--online``) and ``schema``
``audit``       ``audit`` (list, export) and ``audit verify``
``conflicts``   ``conflicts list|show|resolve``
``quarantine``  ``quarantine list|retry``
``guard``       ``guard list|show|confirm|reject``: mass changes held for a person
``status``      ``status``
``web``         ``web``: the web page for a store alone (the daemon serves it too)
``scaffold``    ``init department|group``
``sandbox``     ``sandbox serve`` (the only module here that imports the emulators)
``demo``        ``demo``
``handler``     THE error handler: every error to a message and exit 2, a returned :class:`Outcome` to its code
``console``     standard error's console and how tables are printed; ``options`` the shared options;
                ``store`` how the store-only commands open the store
==============  =============================================================================================

Machine-readable output goes to standard output (tables, JSON, the sandbox's one JSON line, paths written);
everything meant for a person goes to standard error. Commands import heavy modules inside themselves so
``syncd --help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from syncd import __version__
from syncd.cli import check, demo, status, sync, web
from syncd.cli.audit import audit_app
from syncd.cli.conflicts import conflicts_app
from syncd.cli.guard import guard_app
from syncd.cli.handler import Handled
from syncd.cli.quarantine import quarantine_app
from syncd.cli.sandbox import sandbox_app
from syncd.cli.scaffold import init_app

app = typer.Typer(
    name="syncd",
    cls=Handled,
    help="Mirror cross-department work items between Jira, Trello and Asana.",
    no_args_is_help=True,
    add_completion=False,
    # Locals in a traceback could hold credentials: never print them.
    pretty_exceptions_show_locals=False,
)
app.add_typer(sandbox_app, name="sandbox")
app.command("schema")(check.schema)
app.command("check")(check.check)
app.command("once")(sync.once)
app.command("plan")(sync.plan)
app.command("run")(sync.run)
app.command("web")(web.web)
app.command("demo")(demo.demo)
app.add_typer(audit_app, name="audit")
app.add_typer(conflicts_app, name="conflicts")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(guard_app, name="guard")
app.command("status")(status.status)
app.add_typer(init_app, name="init")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit  # not an error: an eager option ends the command line here, the way Click does it


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Mirror cross-department work items between Jira, Trello and Asana."""


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
