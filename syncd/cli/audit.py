"""``syncd audit`` lists and exports the audit log; ``verify`` recomputes its hash chain; ``head`` exports a checkpoint.

Reading the log needs only the store (no credentials, no tool is contacted). Listings, filtered by item, ref, group,
department, person, field, kind and time, go to standard output (a Rich table for a person, JSON Lines or CSV for a
script or a spreadsheet); notes go to standard error, errors to the handler (:mod:`syncd.cli.handler`). Heavy
modules are imported inside the commands so ``syncd --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from dataclasses import fields
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from syncd.cli.console import print_table, stderr, utc_time
from syncd.cli.handler import Outcome
from syncd.cli.store import open_store

if TYPE_CHECKING:
    from collections.abc import Iterable

    from syncd.audit import AuditEvent, AuditFilter, Checkpoint, Recorded

audit_app = typer.Typer(
    help="Review the audit log: list or export its events, verify its hash chain, export its head as a checkpoint."
)

_SHORT = 40
"""Characters of a new value shown in the table; the exports carry it whole."""


class Format(StrEnum):
    """How events are printed: a table to read, JSON Lines to process (lossless), CSV for spreadsheets."""

    table = "table"
    jsonl = "jsonl"
    csv = "csv"


def _instant(value: str) -> datetime:
    """An ISO 8601 date (midnight UTC) or datetime (UTC unless it names its zone), for --since and --until."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO 8601 date or datetime, e.g. 2024-05-01 or 2024-05-01T09:30:00+02:00"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _short(value: Any) -> str:  # noqa: ANN401 - any JSON value of the log
    from syncd.audit_export import flat  # noqa: PLC0415 - keeps `syncd --help` fast

    text = flat(value)
    return text if len(text) <= _SHORT else text[: _SHORT - 1] + "…"


def _who(event: AuditEvent) -> str | None:
    """The person cell: the one person, else each field's (``due: eli@...``), and who decided what a write applies."""
    people = event.people or {}
    named = event.person or "; ".join(f"{name}: {who}" for name, who in sorted(people.items())) or None
    deciders = sorted(set((event.decided_by or {}).values()))
    if not deciders:
        return named
    decided = f"decided by {', '.join(deciders)}"
    return f"{named}; {decided}" if named else decided


def _print_table(recorded: list[Recorded]) -> None:
    from rich.table import Table  # noqa: PLC0415 - keeps `syncd --help` fast
    from rich.text import Text  # noqa: PLC0415 - keeps `syncd --help` fast

    table = Table(title="audit log")
    table.add_column("seq", justify="right", no_wrap=True)
    table.add_column("time (UTC)", no_wrap=True)
    for heading in ("kind", "group", "item", "endpoint", "field", "new", "origin", "person", "rule", "outcome"):
        table.add_column(heading, overflow="fold")  # folded, not cut: an id or an e-mail stays whole
    table.add_column("message", overflow="fold")
    for each in recorded:
        event = each.event
        cells = (
            str(each.seq),
            utc_time(event.at),
            event.kind,
            event.group,
            event.sync_id,
            event.endpoint,
            event.field,
            _short(event.new),
            event.origin,
            _who(event),
            event.rule,
            event.outcome,
            event.message,
        )
        # Text cells: a value like "[red]" from a tool is shown as written, never read as Rich markup.
        table.add_row(*(Text(cell or "") for cell in cells))
    print_table(table)
    if not recorded:
        stderr.print("no audit event matches")


@audit_app.callback(invoke_without_command=True)
def audit_list(
    ctx: typer.Context,
    *,
    item: Annotated[str | None, typer.Option("--item", help="Only this item (its sync_id).")] = None,
    ref: Annotated[str | None, typer.Option(help="Only events naming this ref (ENG-12, a card id, a gid).")] = None,
    group: Annotated[str | None, typer.Option(help="Only this sync group.")] = None,
    department: Annotated[
        str | None, typer.Option(help="Only events written to this department or propagating its change.")
    ] = None,
    person: Annotated[
        str | None,
        typer.Option(help="Only events naming this person (e-mail, any case): their change, or their decision."),
    ] = None,
    field: Annotated[str | None, typer.Option(help="Only events about this canonical field.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only this kind: write, create, archive, conflict, ...")] = None,
    since: Annotated[
        datetime | None,
        typer.Option(parser=_instant, metavar="WHEN", help="From this ISO 8601 date or time (inclusive; UTC default)."),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option(parser=_instant, metavar="WHEN", help="Before this ISO 8601 date or time (exclusive)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the newest N (still printed oldest first).")] = None,
    output_format: Annotated[
        Format, typer.Option("--format", help="table to read, jsonl to process (lossless), csv for spreadsheets.")
    ] = Format.table,
    config_dir: Annotated[Path, typer.Option("--config", help="The configuration directory.")] = Path("config"),
) -> None:
    """List audit events matching every filter given, oldest first (all of them without filters).

    Every filter is applied by the database; the JSON Lines and CSV exports are streamed (never all in memory).
    """
    if ctx.invoked_subcommand is not None:
        return
    from syncd.audit import AuditFilter, export, query  # noqa: PLC0415 - keeps `syncd --help` fast

    filters = AuditFilter(item, ref, group, department, person, field, kind, since, until)
    with open_store(config_dir, keyed=False) as store:
        if output_format is Format.table or limit is not None:
            # A table is read by a person (and sized to its widest cell); --limit reads the newest N only.
            chosen: Iterable[Recorded] = query(store, **_arguments(filters), limit=limit)
        else:
            chosen = export(store, filters)
        if output_format is Format.table:
            _print_table(list(chosen))
        elif output_format is Format.jsonl:
            from syncd.audit_export import jsonl  # noqa: PLC0415 - keeps `syncd --help` fast

            sys.stdout.writelines(jsonl(chosen))
        else:
            from syncd.audit_export import csv_lines  # noqa: PLC0415 - keeps `syncd --help` fast

            sys.stdout.writelines(csv_lines(chosen))


def _arguments(filters: AuditFilter) -> dict[str, Any]:
    """The filters as :func:`syncd.audit.query`'s keyword arguments."""
    return {each.name: getattr(filters, each.name) for each in fields(filters)}


def _config_dir(ctx: typer.Context, config_dir: Path | None) -> Path:
    """``syncd audit --config DIR verify`` says it before the subcommand."""
    if config_dir is not None:
        return config_dir
    return ctx.parent.params["config_dir"] if ctx.parent is not None else Path("config")


def _checkpoints(value: str) -> list[Checkpoint]:
    """``--checkpoint``: one JSON object, or a file of them, one a line (``syncd audit head >> FILE``, log lines).

    Checked before the store is opened, so a mistyped checkpoint is a usage error (exit 2), not a verdict.
    """
    from syncd.audit import Checkpoint  # noqa: PLC0415 - keeps `syncd --help` fast

    if value.lstrip().startswith("{"):
        lines, where = [value], "the checkpoint"
    else:
        try:
            lines, where = Path(value).read_text(encoding="utf-8").splitlines(), value
        except OSError as error:
            raise typer.BadParameter(f"cannot read {value}: {error.strerror}") from None
    found = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            parsed = json.loads(line)
            seq, digest = parsed["seq"], parsed["hash"]
        except (ValueError, TypeError, KeyError):
            seq = digest = None
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0 or not isinstance(digest, str):
            raise typer.BadParameter(f'{where}, line {number}: not a checkpoint like {{"seq": 12, "hash": "..."}}')
        found.append(Checkpoint(seq, digest))
    if not found:
        raise typer.BadParameter(f"{where} holds no checkpoint")
    return found


@audit_app.command("head")
def audit_head(
    ctx: typer.Context,
    config_dir: Annotated[
        Path | None, typer.Option("--config", help="The configuration directory (default: config).")
    ] = None,
) -> Outcome:
    """Print the chain's head as one JSON line, a checkpoint to keep where the database's admins cannot edit it."""
    from syncd.audit import head  # noqa: PLC0415 - keeps `syncd --help` fast

    with open_store(_config_dir(ctx, config_dir), keyed=False) as store:
        checkpoint = head(store)
    if checkpoint is None:
        stderr.print("[red]audit chain broken:[/] its head (the audit_head row) was deleted", highlight=False)
        return Outcome.ATTENTION
    typer.echo(checkpoint.to_json())
    return Outcome.OK


@audit_app.command("reindex")
def audit_reindex(
    ctx: typer.Context,
    config_dir: Annotated[
        Path | None, typer.Option("--config", help="The configuration directory (default: config).")
    ] = None,
) -> Outcome:
    """Rebuild the index the filters use (audit_terms) from the events, after `verify` found it edited."""
    from syncd.audit import reindex  # noqa: PLC0415 - keeps `syncd --help` fast

    with open_store(_config_dir(ctx, config_dir), keyed=False) as store:
        written = reindex(store)
    typer.echo(f"audit index rebuilt: {written} entries")
    return Outcome.OK


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    config_dir: Annotated[
        Path | None, typer.Option("--config", help="The configuration directory (default: config).")
    ] = None,
    checkpoint: Annotated[
        list[str] | None,
        typer.Option(
            metavar="FILE_OR_JSON",
            help="A checkpoint from `syncd audit head` (or a file of them, one a line) the chain must still hold: "
            "finds events cut from the end with the head moved back. Repeatable.",
        ),
    ] = None,
) -> Outcome:
    """Recompute the hash chain; exit 1 naming the first event edited, deleted, inserted, reordered or unreadable."""
    from syncd.audit import verify  # noqa: PLC0415 - keeps `syncd --help` fast

    checkpoints = [each for given in checkpoint or [] for each in _checkpoints(given)]
    with open_store(_config_dir(ctx, config_dir)) as store:
        result = verify(store, checkpoints)
    if not result.ok:
        # A finding, not an error: the verification worked and this is what it found.
        where = f" at event {result.first_bad_seq}" if result.first_bad_seq is not None else ""
        broken = "audit index wrong" if result.in_index else "audit chain broken"
        stderr.print(f"[red]{broken}[/]{where}: {escape(result.reason or '')}", highlight=False)
        return Outcome.ATTENTION
    if result.unchecked:
        stderr.print(
            f"[red]cannot verify[/] {result.unchecked} keyed events without the audit key: "
            "configure audit_key as it was when they were written",
            highlight=False,
        )
        return Outcome.REFUSED
    if result.unkeyed:
        stderr.print(
            f"[yellow]warning:[/] {result.unkeyed} events are unkeyed: an edit by someone with database write access "
            "can be re-chained; set audit_key, and keep checkpoints (`syncd audit head`) outside the database",
            highlight=False,
        )
    if not result.checkpoints and result.events:
        stderr.print(
            "note: no checkpoint given: events cut from the end with the head moved back cannot be told apart "
            "from a shorter log (--checkpoint)",
            highlight=False,
        )
    count = result.checkpoints
    held = f", {count} checkpoint{'' if count == 1 else 's'} held" if count else ""
    typer.echo(f"audit chain ok: {result.events} events{held}")
    return Outcome.OK
