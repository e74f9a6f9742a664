"""``syncd guard``: mass changes held for a person (many archives, unlinks or recreates toward one endpoint).

List them, show one whole, confirm or reject one. Only the store is needed (no credential, no tool contacted): a
decision is recorded with its audit event (naming who decided) in one transaction (under the group's lease, or at
once while a running daemon holds the group), and the group's next pass applies it: ``confirm`` lets the held
steps through for exactly the guard's items; ``reject`` keeps the mirrors as they are and undoes the cause where
it can (see :func:`syncd.guard.rejected` and docs/engine.md, "Mass changes").
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from syncd.cli.console import print_table, stderr, utc_time
from syncd.cli.options import ByOption, ConfigOption, operator
from syncd.cli.store import WaitOption, open_leases, open_store

if TYPE_CHECKING:
    from syncd.store.guards import Guard

guard_app = typer.Typer(
    help="Mass changes held for a person: list them, show one, confirm (apply) or reject (keep the mirrors).",
    no_args_is_help=True,
)


class GuardFormat(StrEnum):
    """How ``syncd guard list`` prints: a table for a person, JSON for a script."""

    table = "table"
    json = "json"


def as_json(guard: Guard) -> dict[str, Any]:
    """A guard as ``--format json`` and ``syncd status`` give it."""
    return {
        "id": guard.id,
        "group": guard.group,
        "endpoint": guard.endpoint,
        "sources": guard.sources,
        "state": guard.state,
        "items": len(guard.items),
        "open": len(guard.open),
        "linked": guard.linked,
        "reason": guard.reason,
        "created_at": guard.created_at.isoformat(),
        "decided_by": guard.decided_by,
        "decided_at": guard.decided_at.isoformat() if guard.decided_at else None,
        "settled_at": guard.settled_at.isoformat() if guard.settled_at else None,
    }


@guard_app.command("list")
def guard_list(
    group: Annotated[str | None, typer.Option(help="Only this sync group.")] = None,
    include_settled: Annotated[
        bool, typer.Option("--all", help="Include settled guards (decided and applied).")
    ] = False,
    output_format: Annotated[GuardFormat, typer.Option("--format", help="table to read, json for scripts.")] = (
        GuardFormat.table
    ),
    config_dir: ConfigOption = Path("config"),
) -> None:
    """List the held mass changes, pending ones first (then decided ones the next pass applies)."""
    from rich.table import Table  # noqa: PLC0415 - keeps `syncd --help` fast
    from rich.text import Text  # noqa: PLC0415 - keeps `syncd --help` fast

    from syncd.store import guards  # noqa: PLC0415 - keeps `syncd --help` fast

    with open_store(config_dir, keyed=False) as store, store.transaction() as tx:
        found = guards.listing(tx, group, settled=include_settled)
    if output_format is GuardFormat.json:
        sys.stdout.write(json.dumps([as_json(guard) for guard in found], ensure_ascii=False) + "\n")
        return
    if not found:
        stderr.print("no guards" if include_settled else "no mass change is held")
        return
    table = Table(title="guards")
    table.add_column("id", no_wrap=True)
    for heading in ("group", "endpoint", "from", "items", "state", "reason"):
        table.add_column(heading, overflow="fold")
    table.add_column("held since (UTC)", no_wrap=True)
    for guard in found:
        state = guard.state if guard.decided_by is None else f"{guard.state} by {guard.decided_by}"
        if guard.settled_at is not None:
            state += " (applied)"
        cells = (guard.id, guard.group, guard.endpoint, ", ".join(guard.sources), str(len(guard.items)), state)
        table.add_row(*(Text(cell) for cell in cells), Text(guard.reason), utc_time(guard.created_at))
    print_table(table)


@guard_app.command("show")
def guard_show(
    guard_id: Annotated[str, typer.Argument(metavar="ID", help="The guard's id, or a unique prefix of it.")],
    config_dir: ConfigOption = Path("config"),
) -> None:
    """Show one guard in full: every item, its title and refs, and what would be done to it."""
    from syncd.decisions import find_guard  # noqa: PLC0415 - keeps `syncd --help` fast

    with open_store(config_dir, keyed=False) as store, store.transaction() as tx:
        guard = find_guard(tx, guard_id)
    lines = [
        f"guard     {guard.id}",
        f"group     {guard.group}",
        f"endpoint  {guard.endpoint} ({guard.linked} linked items)",
        f"from      {', '.join(guard.sources)}",
        f"state     {guard.state}" + (f" by {guard.decided_by}" if guard.decided_by else ""),
        f"held      {utc_time(guard.created_at)} UTC",
        f"why       {guard.reason}",
        f"items     {len(guard.items)} ({len(guard.open)} not applied yet)",
    ]
    for sync_id, detail in sorted(guard.items.items(), key=lambda each: str(each[1].get("title") or "")):
        title = detail.get("title") or "(no title)"
        lines.append(
            f"  {sync_id}  {detail['what']} {guard.endpoint} {detail.get('ref') or '-'}  "
            f"({detail['source']} {detail.get('source_ref') or '-'}: {detail.get('reason')})  {title}"
        )
    if guard.state == "pending":
        lines += [
            f"decide    syncd guard confirm {guard.id}   (the next pass applies these steps)",
            f"          syncd guard reject {guard.id}    (the mirrors at {guard.endpoint} stay as they are; "
            "archives and deletions are undone at their source, recreates unlinked for good)",
        ]
    typer.echo("\n".join(lines))


def _decide(guard_id: str, state: str, by: str | None, wait: float, config_dir: Path) -> Guard:
    """Record a person's decision on a pending guard with its audit event (see :mod:`syncd.decisions`)."""
    from syncd.decisions import decide_guard  # noqa: PLC0415 - keeps `syncd --help` fast

    person = operator(by)
    with open_leases(config_dir) as leases:
        return decide_guard(leases, guard_id, state, person, wait_s=wait)


@guard_app.command("confirm")
def guard_confirm(
    guard_id: Annotated[str, typer.Argument(metavar="ID", help="The guard's id, or a unique prefix of it.")],
    by: ByOption = None,
    wait: WaitOption = 10.0,
    config_dir: ConfigOption = Path("config"),
) -> None:
    """Let a held mass change through: the group's next pass applies the held steps to exactly these items."""
    guard = _decide(guard_id, "confirmed", by, wait, config_dir)
    typer.echo(
        f"confirmed guard {guard.id}: the next pass of {guard.group} applies the {len(guard.items)} held changes "
        f"at {guard.endpoint}."
    )


@guard_app.command("reject")
def guard_reject(
    guard_id: Annotated[str, typer.Argument(metavar="ID", help="The guard's id, or a unique prefix of it.")],
    by: ByOption = None,
    wait: WaitOption = 10.0,
    config_dir: ConfigOption = Path("config"),
) -> None:
    """Refuse a held mass change: the mirrors at the endpoint stay, and its cause is undone where it happened.

    Items archived at the source are restored there (reopened, back in the project, out of the archive status);
    items deleted there are made again; recreates refused are unlinked there for good. All audited, naming you.
    """
    guard = _decide(guard_id, "rejected", by, wait, config_dir)
    typer.echo(
        f"rejected guard {guard.id}: the {len(guard.items)} mirrors at {guard.endpoint} stay as they are; the next "
        f"pass of {guard.group} undoes at {', '.join(guard.sources)} what caused them (see `syncd guard show`)."
    )
    stuck = sorted({str(d["source"]) for d in guard.items.values() if d.get("restorable") is False})
    if stuck:
        count = sum(1 for d in guard.items.values() if d.get("restorable") is False)
        typer.echo(
            f"cannot restore {count} items archived at {', '.join(stuck)}: the mapping gives no status to move them "
            f"back to; they stay archived there, and their mirrors at {guard.endpoint} stay as they are."
        )
