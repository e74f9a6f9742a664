"""The one place the ``syncd`` command turns an outcome into an exit code, and an error into a message.

Commands raise a :class:`syncd.errors.SyncdError` when they cannot do what was asked, and return an
:class:`Outcome` when they did it but a person should look (a failed item, a broken audit chain); they never print
an error or exit themselves (``tests/test_architecture.py`` holds them to it). :class:`Handled`, the root command
group, catches both around every command and subcommand:

::

    raised or returned                       on standard error                              exit
    CheckFailed (syncd check)                error: <problem>, one line per problem         2
    ConfigError, FileError                   error: <path>:<line>: <fix>, then one a line   2
    ScaffoldError, CommandRefused            error: <what is wrong and what to do>          2
    StoreError (Unavailable, DuplicateLink)  error: <message>                               2
    any other SyncdError (ConnectorError,    error: <message>                               2
      SideEmptied, DemoError)
    OSError (a port in use, a file where     error: <the system's message>                  2
      a directory should be)
    an Outcome (or a child's exit code)      nothing: the command showed what it found      that code

Every error exits 2 ("nothing more was done; a person must act"), as scripts and tests have always relied on; 1 is
an outcome, never an error. A closed pipe (``syncd audit | head``) is left to Typer, which exits 1 quietly.
Messages never carry a traceback (whose locals could hold a credential), pass :func:`syncd.redact.redact` (a
tool's text or a quoted store URL may hold one), and go through Rich escaped, so a value like ``[red]`` from a tool
is printed as written.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from syncd.cli.console import stderr
from syncd.errors import CheckFailed, SyncdError
from syncd.redact import redact

if TYPE_CHECKING:
    # Typer vendors Click (constraints.txt pins it): TyperGroup.invoke takes its Context, of which typer's is a kind.
    from typer._click import Context


class Outcome(IntEnum):
    """How a command that ran to its end went, as its exit code: for a script, a cron alert or CI."""

    OK = 0
    ATTENTION = 1
    """Done, but something waits for a person or a later pass (a failed item, an open conflict, a broken chain)."""
    REFUSED = 2
    """Nothing (more) was done: a tool refused syncd's credentials or setup; every error exits with it too."""


def report(error: SyncdError | OSError) -> Outcome:
    """Say what went wrong on standard error, without a traceback; the exit code, per the module's table."""
    problems = error.problems if isinstance(error, CheckFailed) else [str(error)]
    for problem in problems:
        stderr.print(f"[red]error:[/] {escape(redact(problem))}", highlight=False)
    return Outcome.REFUSED


class Handled(TyperGroup):
    """The root group of ``syncd``: every command runs inside its :meth:`invoke`, so its errors end here."""

    def invoke(self, ctx: Context) -> Any:  # noqa: ANN401 - whatever the command returned
        """Run the command; an error becomes its message and exit 2, a returned non-zero Outcome its exit code."""
        try:
            returned = super().invoke(ctx)
        except BrokenPipeError:
            raise  # the reader went away: Typer exits 1 without a word, as for any command line tool
        except (SyncdError, OSError) as error:
            raise typer.Exit(report(error)) from error
        if isinstance(returned, int) and not isinstance(returned, bool) and returned != Outcome.OK:
            raise typer.Exit(int(returned))
        return returned
