"""``syncd conflicts``: the fields the ``manual`` rule holds until a person chooses which department's value wins.

List them, show one whole, decide one. Only the store is needed (no credential, no tool contacted): a decision is
recorded there with its audit event in one transaction, and the group's next pass writes it everywhere. Tables and
results go to standard output, notes to standard error; what cannot be done is raised as
:class:`syncd.errors.CommandRefused` for the handler to say.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from syncd.cli.console import print_table, stderr, utc_time
from syncd.cli.options import ByOption, ConfigOption, operator
from syncd.cli.store import WaitOption, open_leases, open_store

conflicts_app = typer.Typer(
    help="The conflicts the manual rule holds for a person: list them, show one, decide which value wins.",
    no_args_is_help=True,
)

_SHORT = 40
"""Characters of a value shown in a table; ``syncd conflicts show`` prints it whole."""


def _value(value: Any, *, short: bool = False) -> str:  # noqa: ANN401 - any canonical (JSON-like) value
    """A canonical value as a person reads it: text as is, nothing as (empty), anything else as JSON."""
    if value is None:
        text = "(empty)"
    elif isinstance(value, str) and value:
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "), default=str)
    if not short:
        return text
    text = " ".join(text.split())  # a multi-line description stays on one table line
    return text if len(text) <= _SHORT else text[: _SHORT - 1] + "…"


@conflicts_app.command("list")
def conflicts_list(
    group: Annotated[str | None, typer.Option(help="Only this sync group.")] = None,
    include_closed: Annotated[
        bool, typer.Option("--all", help="Include closed conflicts (settled or applied).")
    ] = False,
    config_dir: ConfigOption = Path("config"),
) -> None:
    """List the conflicts waiting for a person (and decided ones the next pass applies), oldest first."""
    from rich.table import Table  # noqa: PLC0415 - keeps `syncd --help` fast
    from rich.text import Text  # noqa: PLC0415 - keeps `syncd --help` fast

    states = ("open", "decided", "closed") if include_closed else ("open", "decided")
    with open_store(config_dir) as store, store.transaction() as tx:
        queued = tx.conflicts(group=group, states=states)
    if not queued:
        stderr.print("no conflicts" if include_closed else "no open conflicts")
        return
    departments = list(dict.fromkeys(department for conflict in queued for department in conflict.values))
    table = Table(title="conflicts")
    table.add_column("id", no_wrap=True)
    for heading in ("group", "item", "field", *departments, "state"):
        table.add_column(heading, overflow="fold")
    table.add_column("opened (UTC)", no_wrap=True)
    for conflict in queued:
        values = [
            _value(conflict.values[department], short=True) if department in conflict.values else ""
            for department in departments
        ]
        state = f"{conflict.state}: {conflict.take}" if conflict.take else conflict.state
        cells = (
            conflict.id,
            conflict.group,
            conflict.sync_id,
            conflict.field,
            *values,
            state,
            utc_time(conflict.opened_at),
        )
        # Text cells: a value like "[red]" from a tool is shown as written, never read as Rich markup.
        table.add_row(*(Text(cell) for cell in cells))
    print_table(table)


@conflicts_app.command("show")
def conflicts_show(
    conflict_id: Annotated[str, typer.Argument(metavar="ID", help="The conflict's id, or a unique prefix of it.")],
    config_dir: ConfigOption = Path("config"),
) -> None:
    """Show one conflict in full: the agreed base value, each department's value and ref, and any decision."""
    from syncd.decisions import find_conflict  # noqa: PLC0415 - keeps `syncd --help` fast

    with open_store(config_dir) as store, store.transaction() as tx:
        conflict = find_conflict(tx, conflict_id)
        links = tx.links(conflict.sync_id)
    lines = [
        f"conflict  {conflict.id}",
        f"group     {conflict.group}",
        f"item      {conflict.sync_id}",
        f"field     {conflict.field}",
        f"state     {conflict.state}",
        f"opened    {utc_time(conflict.opened_at)} UTC",
        f"updated   {utc_time(conflict.updated_at)} UTC",
        f"base      {_indented(_value(conflict.base), 10)}",
        "values",
    ]
    # Each department, its ref (where to look in the tool; "-" if the item is gone there) and its value.
    refs = {name: link.ref for name in conflict.values if (link := links.get(f"{conflict.group}/{name}")) is not None}
    width = max((len(name) for name in conflict.values), default=0)
    ref_width = max((len(refs.get(name, "-")) for name in conflict.values), default=0)
    for name, value in conflict.values.items():
        shown = _indented(_value(value), 2 + width + 2 + ref_width + 2)
        lines.append(f"  {name:<{width}}  {refs.get(name, '-'):<{ref_width}}  {shown}")
    if conflict.take is not None:
        lines.append(f"decided   take {conflict.take}, by {conflict.resolved_by or 'unknown'}")
    elif conflict.state == "open":
        lines.append(f"decide    syncd conflicts resolve {conflict.id} --take DEPARTMENT")
    typer.echo("\n".join(lines))


def _indented(text: str, by: int) -> str:
    """Continuation lines of a multi-line value indented under its first line."""
    return text.replace("\n", "\n" + " " * by)


@conflicts_app.command("resolve")
def conflicts_resolve(
    conflict_id: Annotated[str, typer.Argument(metavar="ID", help="The conflict's id, or a unique prefix of it.")],
    take: Annotated[
        str, typer.Option("--take", metavar="DEPARTMENT", help="The department whose value the field takes.")
    ],
    by: ByOption = None,
    wait: WaitOption = 10.0,
    config_dir: ConfigOption = Path("config"),
) -> None:
    """Decide a held conflict: the field takes DEPARTMENT's value everywhere on the group's next pass (audited).

    Recorded under the group's lease (waiting up to --wait for another command to finish), or at once while a
    running daemon holds the group.
    """
    from syncd.decisions import resolve_conflict  # noqa: PLC0415 - keeps `syncd --help` fast

    with open_leases(config_dir) as leases:
        resolved = resolve_conflict(leases, conflict_id, take, operator(by), wait_s=wait)
    conflict, person, members = resolved.conflict, resolved.person, resolved.members
    value = f"value {_value(conflict.values[take])}" if take in conflict.values else "current value"
    others = [member for member in members if member != take]
    lines = [
        f"decided conflict {conflict.id} for {person}: {conflict.field} of item {conflict.sync_id} takes "
        f"{take}'s {value}.",
        f"The next pass of {conflict.group} writes it to {', '.join(others) or 'no other department'} "
        "and closes the conflict.",
    ]
    if conflict.take is not None:
        lines.append(f"This replaces the earlier decision: take {conflict.take}, by {conflict.resolved_by}.")
    typer.echo("\n".join(lines))
