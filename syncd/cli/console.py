"""Where the ``syncd`` command writes: results on standard output, everything meant for a person on standard error.

One console for standard error, shared by every command, so notes and the handler's error lines look alike and
never wrap; tables go to standard output, whole, so a script or a pager gets each row on one line.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from rich.table import Table

stderr = Console(stderr=True, soft_wrap=True)  # no hard wraps: paths, ids and URLs stay copyable


def print_table(table: Table) -> None:
    """A table on standard output; into a file or a pager each row stays on one line, whole."""
    from rich.measure import Measurement  # noqa: PLC0415 - keeps `syncd --help` fast

    console = Console()
    if not console.is_terminal:
        console.width = Measurement.get(console, console.options.update_width(10_000), table).maximum
    console.print(table)


def utc_time(moment: datetime | None) -> str:
    """A stored moment as a person reads it in a table: UTC to the second, or ``never``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment is not None else "never"
