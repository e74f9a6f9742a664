"""``syncd init``: skeleton files for a new department or sync group, to fill in and then ``syncd check``.

What is written is :mod:`syncd.scaffold`'s; this is its command line. Paths written go to standard output (one a
line, for a script), the next step to standard error.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from syncd.cli.console import stderr
from syncd.cli.options import ConfigOption, MappingsOption
from syncd.errors import CommandRefused

init_app = typer.Typer(
    help="Write skeleton files for a new department or sync group (never overwrites; check them with syncd check).",
    no_args_is_help=True,
)


class ToolName(StrEnum):
    """The tools a department can work in."""

    jira = "jira"
    trello = "trello"
    asana = "asana"


@init_app.command("department")
def init_department(
    name: Annotated[str, typer.Argument(help="The department's name, e.g. support (the file's name).")],
    tool: Annotated[ToolName, typer.Option("--tool", help="The tool the department works in.")],
    config_dir: ConfigOption = Path("config"),
) -> None:
    """Write config/departments/NAME.yaml (and config/syncd.yaml if missing) for a department."""
    from syncd import scaffold  # noqa: PLC0415 - keeps `syncd --help` fast

    written = scaffold.department(config_dir, name, tool.value)
    for path in written:
        sys.stdout.write(f"{path}\n")
    prefix = "SYNCD_" + name.upper().replace("-", "_")
    stderr.print(
        f"wrote {escape(str(written[-1]))}: fill in the workspace, export {prefix}_* credentials, "
        "then run syncd check --online",
        highlight=False,
    )


@init_app.command("group")
def init_group(
    name: Annotated[str, typer.Argument(help="The group's name, e.g. escalations (the file's name).")],
    members: Annotated[str, typer.Option("--members", help="The departments, comma-separated: engineering,sales.")],
    config_dir: ConfigOption = Path("config"),
    mappings_dir: MappingsOption = Path("mappings"),
) -> None:
    """Write mappings/NAME.yaml for a group of existing departments, with a rule per field to start from."""
    from syncd import scaffold  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.config import load_config  # noqa: PLC0415 - keeps `syncd --help` fast

    names = [member.strip() for member in members.split(",") if member.strip()]
    known = load_config(config_dir).departments
    unknown = [member for member in names if member not in known]
    if unknown:
        raise CommandRefused(
            f"no department {', '.join(unknown)} in {config_dir}/departments: known are {', '.join(sorted(known))}"
        )
    path = scaffold.group(mappings_dir, name, names)
    sys.stdout.write(f"{path}\n")
    stderr.print(f"wrote {escape(str(path))}: map the statuses, then run syncd check --online", highlight=False)
