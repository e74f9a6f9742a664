"""The operators' commands: ``syncd conflicts``, ``syncd quarantine`` and ``syncd status``.

A field held by the ``manual`` rule waits in the conflicts queue until a person chooses which department's value it
takes; an item that kept failing waits in quarantine until a person retries it. Both need only the store (no tool
credential, no tool contacted): a decision or a release is recorded there with its audit event, in one
transaction, and the next pass of the group acts on it. ``syncd status`` sums up every group for a person or a
monitoring script, and its exit code says whether anything waits for a person. Tables and results go to standard
output, errors and notes to standard error; heavy modules are imported inside the commands so ``syncd --help``
stays fast.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

# One way to open the store for every command (config errors and unreadable stores exit 2 alike).
from syncd.cli_audit import open_store

if TYPE_CHECKING:
    from rich.table import Table

    from syncd.store import HeldConflict, Tx

conflicts_app = typer.Typer(
    help="The conflicts the manual rule holds for a person: list them, show one, decide which value wins.",
    no_args_is_help=True,
)
quarantine_app = typer.Typer(
    help="Items held out of passes after failing repeatedly: list them with their error, retry one.",
    no_args_is_help=True,
)

_stderr = Console(stderr=True, soft_wrap=True)  # no hard wraps: ids and errors stay copyable
_SHORT = 40
"""Characters of a value shown in a table; ``syncd conflicts show`` prints it whole."""

ConfigOption = Annotated[Path, typer.Option("--config", help="The configuration directory.")]
ByOption = Annotated[
    str | None,
    typer.Option(
        "--by", metavar="PERSON", help="Who acts, for the audit log (default: $SYNCD_OPERATOR, else your login)."
    ),
]


class StatusFormat(StrEnum):
    """How ``syncd status`` prints: tables for a person, one JSON object for a script or a monitor."""

    table = "table"
    json = "json"


def _fail(message: str) -> NoReturn:
    """One line of error on standard error, exit 2 (the operator asked for something that cannot be done)."""
    _stderr.print(f"[red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(2)


def _operator(by: str | None) -> str:
    """Who acts, so every decision in the audit log names a person; exits 2 rather than record nobody."""
    for candidate in (by, os.environ.get("SYNCD_OPERATOR")):
        if candidate and candidate.strip():
            return candidate.strip()
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (e.g. a container user without a passwd entry)
        _fail("cannot tell who you are: pass --by PERSON or set SYNCD_OPERATOR")


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


def _time(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment is not None else "never"


def _many(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes for what was stored as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _print_table(table: Table) -> None:
    """A table on standard output; into a file or a pager each row stays on one line, whole."""
    from rich.measure import Measurement  # noqa: PLC0415 - keeps `syncd --help` fast

    console = Console()
    if not console.is_terminal:
        console.width = Measurement.get(console, console.options.update_width(10_000), table).maximum
    console.print(table)


def _members(tx: Tx, conflict: HeldConflict) -> list[str]:
    """The departments a conflict can take: the ones that changed the field, then the others holding the item."""
    prefix = f"{conflict.group}/"
    holding = [key.removeprefix(prefix) for key in tx.links(conflict.sync_id) if key.startswith(prefix)]
    return list(dict.fromkeys([*conflict.values, *sorted(holding)]))


def _find(tx: Tx, conflict_id: str) -> HeldConflict:
    """The conflict an id or a unique prefix of it names; exits 2 saying whether none or several match."""
    from sqlalchemy import select  # noqa: PLC0415 - keeps `syncd --help` fast

    from syncd.store.schema import conflicts  # noqa: PLC0415 - keeps `syncd --help` fast

    wanted = conflict_id.strip()
    if not wanted:
        _fail("a conflict id is required: `syncd conflicts list` shows them")
    found = tx.conflict(wanted)
    if found is not None and found.id.startswith(wanted):  # the store matches with LIKE, where _ is a wildcard
        return found
    matching = (
        tx.connection.execute(
            select(conflicts.c.id).where(conflicts.c.id.startswith(wanted, autoescape=True)).order_by(conflicts.c.id)
        )
        .scalars()
        .all()
    )
    if len(matching) > 1:
        shown = ", ".join(matching[:5]) + (", ..." if len(matching) > 5 else "")
        _fail(f"conflict id {wanted!r} is ambiguous: {len(matching)} conflicts start with it ({shown}); type more")
    _fail(f"no conflict {wanted!r}: `syncd conflicts list --all` shows every conflict id")


# ----- syncd conflicts ------------------------------------------------------------------------------------------


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
        _stderr.print("no conflicts" if include_closed else "no open conflicts")
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
            _time(conflict.opened_at),
        )
        # Text cells: a value like "[red]" from a tool is shown as written, never read as Rich markup.
        table.add_row(*(Text(cell) for cell in cells))
    _print_table(table)


@conflicts_app.command("show")
def conflicts_show(
    conflict_id: Annotated[str, typer.Argument(metavar="ID", help="The conflict's id, or a unique prefix of it.")],
    config_dir: ConfigOption = Path("config"),
) -> None:
    """Show one conflict in full: the agreed base value, each department's value and ref, and any decision."""
    with open_store(config_dir) as store, store.transaction() as tx:
        conflict = _find(tx, conflict_id)
        links = tx.links(conflict.sync_id)
    lines = [
        f"conflict  {conflict.id}",
        f"group     {conflict.group}",
        f"item      {conflict.sync_id}",
        f"field     {conflict.field}",
        f"state     {conflict.state}",
        f"opened    {_time(conflict.opened_at)} UTC",
        f"updated   {_time(conflict.updated_at)} UTC",
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
    config_dir: ConfigOption = Path("config"),
) -> None:
    """Decide a held conflict: the field takes DEPARTMENT's value everywhere on the group's next pass (audited)."""
    from syncd.audit import AuditEvent, append  # noqa: PLC0415 - keeps `syncd --help` fast

    with open_store(config_dir) as store, store.transaction() as tx:
        conflict = _find(tx, conflict_id)
        if conflict.state == "closed":
            _fail(
                f"conflict {conflict.id} is closed: {conflict.field} of item {conflict.sync_id} agrees everywhere "
                "again, nothing is left to decide"
            )
        members = _members(tx, conflict)
        if take not in members:
            _fail(
                f"{take!r} does not hold item {conflict.sync_id} in group {conflict.group}: "
                f"--take one of {', '.join(members)}"
            )
        person = _operator(by)
        tx.decide_conflict(conflict.id, take, person)
        append(
            tx,
            AuditEvent(
                "decision",
                group=conflict.group,
                sync_id=conflict.sync_id,
                field=conflict.field,
                origin=take,
                person=person,
                rule="manual",
                outcome="decided",
                message="applied by the next pass",
            ),
        )
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


# ----- syncd quarantine -----------------------------------------------------------------------------------------


@quarantine_app.command("list")
def quarantine_list(
    group: Annotated[str | None, typer.Option(help="Only this sync group.")] = None,
    config_dir: ConfigOption = Path("config"),
) -> None:
    """List failing items, oldest failure first: held ones wait for `retry`; retrying ones are tried every pass."""
    from rich.table import Table  # noqa: PLC0415 - keeps `syncd --help` fast
    from rich.text import Text  # noqa: PLC0415 - keeps `syncd --help` fast

    with open_store(config_dir) as store, store.transaction() as tx:
        entries = tx.quarantined(group)
    if not entries:
        _stderr.print("nothing is quarantined")
        return
    table = Table(title="quarantine")
    table.add_column("item", no_wrap=True)
    table.add_column("group", overflow="fold")
    table.add_column("strikes", justify="right")
    table.add_column("state", no_wrap=True)
    table.add_column("last error", overflow="fold")
    table.add_column("first failure (UTC)", no_wrap=True)
    table.add_column("last failure (UTC)", no_wrap=True)
    for entry in entries:
        cells = (
            entry.sync_id,
            entry.group,
            str(entry.strikes),
            "held" if entry.held else "retrying",
            entry.error,
            _time(entry.first_at),
            _time(entry.last_at),
        )
        table.add_row(*(Text(cell) for cell in cells))
    _print_table(table)


@quarantine_app.command("retry")
def quarantine_retry(
    item: Annotated[str, typer.Argument(metavar="ITEM", help="The item's sync_id, as `quarantine list` shows it.")],
    by: ByOption = None,
    config_dir: ConfigOption = Path("config"),
) -> None:
    """Release an item (its strikes reset) so the next pass of its group tries it again (audited)."""
    from syncd.audit import AuditEvent, append  # noqa: PLC0415 - keeps `syncd --help` fast

    with open_store(config_dir) as store, store.transaction() as tx:
        entry = tx.quarantine_entry(item)
        if entry is None:
            _fail(f"item {item!r} is not quarantined: `syncd quarantine list` shows the items that are")
        person = _operator(by)
        tx.release(item)
        append(
            tx,
            AuditEvent(
                "release",
                group=entry.group,
                sync_id=item,
                old={"strikes": entry.strikes, "held": entry.held, "error": entry.error},
                person=person,
                message="retried on the next pass",
            ),
        )
    typer.echo(
        f"released {item} for {person} ({entry.strikes} strikes, last error: {entry.error}); "
        f"the next pass of {entry.group} tries it again."
    )


# ----- syncd status ---------------------------------------------------------------------------------------------


def _group_status() -> dict[str, Any]:
    return {
        "items": 0,
        "endpoints": {},
        "quarantined": 0,
        "retrying": 0,
        "conflicts": {"open": 0, "decided": 0},
        "refused": [],
    }


def _status(tx: Tx) -> dict[str, Any]:
    """Counts per group from the store: items, links and last pass per endpoint, failing items, queued conflicts.

    A group is every one the store knows of (items, cursors, failures or queued conflicts), so nothing that needs a
    person is left out because its group has no item yet.
    """
    from sqlalchemy import func, select  # noqa: PLC0415 - keeps `syncd --help` fast

    from syncd.store.schema import (  # noqa: PLC0415 - keeps `syncd --help` fast
        audit_head,
        conflicts,
        cursors,
        items,
        links,
        quarantine,
    )

    groups: dict[str, dict[str, Any]] = {}

    def endpoint(key: str) -> dict[str, Any]:
        group, _, member = key.rpartition("/")  # keys are "group/member"
        found: dict[str, Any] = groups.setdefault(group, _group_status())["endpoints"]
        place: dict[str, Any] = found.setdefault(member, {"links": 0, "last_pass": None, "failing": None})
        return place

    execute = tx.connection.execute
    for name, count in execute(select(items.c.group_name, func.count()).group_by(items.c.group_name)):
        groups.setdefault(name, _group_status())["items"] = count
    for key, count in execute(select(links.c.endpoint, func.count()).group_by(links.c.endpoint)):
        endpoint(key)["links"] = count
    for key, moment in execute(select(cursors.c.endpoint, cursors.c.updated_at)):
        endpoint(key)["last_pass"] = _aware(moment).astimezone(UTC).isoformat()
    failing = select(quarantine.c.group_name, quarantine.c.held, func.count())
    for name, held, count in execute(failing.group_by(quarantine.c.group_name, quarantine.c.held)):
        groups.setdefault(name, _group_status())["quarantined" if held else "retrying"] += count
    queued = select(conflicts.c.group_name, conflicts.c.state, func.count()).where(
        conflicts.c.state.in_(("open", "decided"))
    )
    for name, state, count in execute(queued.group_by(conflicts.c.group_name, conflicts.c.state)):
        groups.setdefault(name, _group_status())["conflicts"][state] += count
    for key, (since, error) in tx.failing_endpoints().items():
        endpoint(key)["failing"] = {"since": since.astimezone(UTC).isoformat(), "error": error}
    for name in list(groups):
        for sync_id, key, refusal in tx.refused_in(name):
            groups[name]["refused"].append(
                {
                    "item": sync_id,
                    "endpoint": key.rpartition("/")[2],
                    "field": refusal.field,
                    "value": refusal.value,
                    "since": refusal.at.astimezone(UTC).isoformat(),
                    "message": refusal.message,
                }
            )
    audit_events = execute(select(audit_head.c.seq).where(audit_head.c.id == 1)).scalar() or 0
    ordered = {name: groups[name] for name in sorted(groups)}
    for each in ordered.values():
        each["endpoints"] = dict(sorted(each["endpoints"].items()))
    quarantined = sum(each["quarantined"] for each in ordered.values())
    open_conflicts = sum(each["conflicts"]["open"] for each in ordered.values())
    unreadable = sum(1 for each in ordered.values() for place in each["endpoints"].values() if place["failing"])
    return {
        "ok": quarantined == 0 and open_conflicts == 0 and unreadable == 0,
        "quarantined": quarantined,
        "open_conflicts": open_conflicts,
        "failing_endpoints": unreadable,
        "refused_values": sum(len(each["refused"]) for each in ordered.values()),
        "audit_events": audit_events,
        "groups": ordered,
    }


def _print_status(summary: dict[str, Any]) -> None:
    from rich.table import Table  # noqa: PLC0415 - keeps `syncd --help` fast
    from rich.text import Text  # noqa: PLC0415 - keeps `syncd --help` fast

    groups = Table(title="sync groups")
    groups.add_column("group", overflow="fold")
    for heading in ("items", "quarantined", "retrying", "open conflicts", "decided conflicts"):
        groups.add_column(heading, justify="right")
    endpoints = Table(title="endpoints")
    for heading in ("group", "endpoint"):
        endpoints.add_column(heading, overflow="fold")
    endpoints.add_column("links", justify="right")
    endpoints.add_column("last pass (UTC)", no_wrap=True)
    endpoints.add_column("failing", overflow="fold")
    for name, each in summary["groups"].items():
        counts = (each["items"], each["quarantined"], each["retrying"], *each["conflicts"].values())
        groups.add_row(Text(name), *(str(count) for count in counts))
        for member, place in each["endpoints"].items():
            last = datetime.fromisoformat(place["last_pass"]) if place["last_pass"] else None
            failing = place["failing"]
            why = f"since {_time(datetime.fromisoformat(failing['since']))}: {failing['error']}" if failing else ""
            endpoints.add_row(Text(name), Text(member), str(place["links"]), _time(last), Text(why))
    _print_table(groups)
    _print_table(endpoints)
    if summary["refused_values"]:
        refused = Table(title="values a tool refused (left out there; tried again once they change)")
        for heading in ("group", "item", "endpoint", "field", "value", "since (UTC)", "tool's message"):
            refused.add_column(heading, overflow="fold")
        for name, each in summary["groups"].items():
            for row in each["refused"]:
                value = json.dumps(row["value"], ensure_ascii=False, default=str)
                shown = value if len(value) <= 40 else value[:39] + "…"
                since = _time(datetime.fromisoformat(row["since"]))
                cells = (name, row["item"], row["endpoint"], row["field"], shown, since, row["message"])
                refused.add_row(*(Text(cell) for cell in cells))
        _print_table(refused)
    typer.echo(f"audit log: {summary['audit_events']} events")


def status(
    output_format: Annotated[
        StatusFormat, typer.Option("--format", help="table to read, json (one object) for scripts and monitoring.")
    ] = StatusFormat.table,
    config_dir: ConfigOption = Path("config"),
) -> None:
    """Sum up every sync group: items, endpoints, failing items, queued conflicts, values a tool refused.

    A refused value is left out for that tool only and the rest of its item syncs, so it does not fail the status.
    Exit 0: all clear; 1: an item is quarantined, a conflict is open or an endpoint's tool cannot be read (for cron
    alerts); 2: config or store unreadable.
    """
    with open_store(config_dir) as store, store.transaction() as tx:
        summary = _status(tx)
    if output_format is StatusFormat.json:
        sys.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")
    else:
        _print_status(summary)
    if not summary["ok"]:
        failing = summary["failing_endpoints"]
        _stderr.print(
            f"attention: {_many(summary['quarantined'], 'item')} quarantined (syncd quarantine list), "
            f"{_many(summary['open_conflicts'], 'conflict')} open (syncd conflicts list)"
            + (f", {_many(failing, 'endpoint')} failing (see the endpoints table)" if failing else ""),
            highlight=False,
        )
        raise typer.Exit(1)


# ----- syncd init ------------------------------------------------------------------------------------------

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

    try:
        written = scaffold.department(config_dir, name, tool.value)
    except scaffold.ScaffoldError as error:
        _fail(str(error))
    for path in written:
        sys.stdout.write(f"{path}\n")
    prefix = "SYNCD_" + name.upper().replace("-", "_")
    _stderr.print(
        f"wrote {escape(str(written[-1]))}: fill in the workspace, export {prefix}_* credentials, "
        "then run syncd check --online",
        highlight=False,
    )


@init_app.command("group")
def init_group(
    name: Annotated[str, typer.Argument(help="The group's name, e.g. escalations (the file's name).")],
    members: Annotated[str, typer.Option("--members", help="The departments, comma-separated: engineering,sales.")],
    config_dir: ConfigOption = Path("config"),
    mappings_dir: Annotated[Path, typer.Option("--mappings", help="The sync-group mappings directory.")] = Path(
        "mappings"
    ),
) -> None:
    """Write mappings/NAME.yaml for a group of existing departments, with a rule per field to start from."""
    from syncd import scaffold  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.config import ConfigError, load_config  # noqa: PLC0415 - keeps `syncd --help` fast

    names = [member.strip() for member in members.split(",") if member.strip()]
    try:
        known = load_config(config_dir).departments
    except ConfigError as error:
        _fail(str(error))
    unknown = [member for member in names if member not in known]
    if unknown:
        _fail(f"no department {', '.join(unknown)} in {config_dir}/departments: known are {', '.join(sorted(known))}")
    try:
        path = scaffold.group(mappings_dir, name, names)
    except scaffold.ScaffoldError as error:
        _fail(str(error))
    sys.stdout.write(f"{path}\n")
    _stderr.print(f"wrote {escape(str(path))}: map the statuses, then run syncd check --online", highlight=False)
