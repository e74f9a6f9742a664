"""``syncd status``: every sync group summed up for a person or a monitoring script.

Items, endpoints and their last pass, failing items, queued conflicts, values a tool refused, the audit log's
length, every daemon replica and which one owns each group: all read from the store (no credential, no tool
contacted). Its exit code says whether anything waits for a person (:attr:`Outcome.ATTENTION`), so cron can alert
on it.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from syncd.cli.console import print_table, stderr, utc_time
from syncd.cli.handler import Outcome
from syncd.cli.options import ConfigOption
from syncd.cli.store import open_store
from syncd.store.times import aware

if TYPE_CHECKING:
    from syncd.store import Tx


class StatusFormat(StrEnum):
    """How ``syncd status`` prints: tables for a person, one JSON object for a script or a monitor."""

    table = "table"
    json = "json"


def _many(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _group_status() -> dict[str, Any]:
    return {
        "items": 0,
        "endpoints": {},
        "quarantined": 0,
        "retrying": 0,
        "conflicts": {"open": 0, "decided": 0},
        "refused": [],
        "owner": None,
    }


def _replicas(tx: Tx, groups: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every replica in the registry (live or recently gone), and each group's lease holder and fencing token."""
    from syncd.store import leases as lease_rows  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.store import replicas as registry  # noqa: PLC0415 - keeps `syncd --help` fast

    now = lease_rows.now(tx.connection)
    found = registry.registry(tx.connection)
    for lease in lease_rows.holders(tx.connection):
        groups.setdefault(lease.group, _group_status())["owner"] = {
            "replica": lease.holder if lease.live(now) else None,
            "token": lease.token,
            "since": lease.acquired_at.astimezone(UTC).isoformat() if lease.live(now) else None,
        }
    return [
        {
            "replica": each.replica_id,
            "host": each.host,
            "pid": each.pid,
            "started": each.started_at.astimezone(UTC).isoformat(),
            "last_seen": each.seen_at.astimezone(UTC).isoformat(),
            "live": each.live(now),
        }
        for each in found
    ]


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
        notifications,
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
        endpoint(key)["last_pass"] = aware(moment).astimezone(UTC).isoformat()
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
    from syncd.cli.guard import as_json  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.store import guards  # noqa: PLC0415 - keeps `syncd --help` fast

    held = [as_json(guard) for guard in guards.active(tx) if guard.state == "pending"]
    unsent = select(
        notifications.c.target, func.count(), func.max(notifications.c.attempts), func.max(notifications.c.error)
    ).where(notifications.c.sent_at.is_(None))
    waiting = [
        {"target": target, "unsent": count, "attempts": attempts, "error": error}
        for target, count, attempts, error in execute(unsent.group_by(notifications.c.target).order_by("target"))
    ]
    audit_events = execute(select(audit_head.c.seq).where(audit_head.c.id == 1)).scalar() or 0
    replicas = _replicas(tx, groups)
    ordered = {name: groups[name] for name in sorted(groups)}
    for each in ordered.values():
        each["endpoints"] = dict(sorted(each["endpoints"].items()))
    quarantined = sum(each["quarantined"] for each in ordered.values())
    open_conflicts = sum(each["conflicts"]["open"] for each in ordered.values())
    unreadable = sum(1 for each in ordered.values() for place in each["endpoints"].values() if place["failing"])
    return {
        "ok": quarantined == 0 and open_conflicts == 0 and unreadable == 0 and not held,
        "quarantined": quarantined,
        "open_conflicts": open_conflicts,
        "failing_endpoints": unreadable,
        "refused_values": sum(len(each["refused"]) for each in ordered.values()),
        "guards": held,
        "notifications": waiting,
        "audit_events": audit_events,
        "replicas": replicas,
        "groups": ordered,
    }


def _print_status(summary: dict[str, Any]) -> None:
    from rich.table import Table  # noqa: PLC0415 - keeps `syncd --help` fast
    from rich.text import Text  # noqa: PLC0415 - keeps `syncd --help` fast

    groups = Table(title="sync groups")
    groups.add_column("group", overflow="fold")
    for heading in ("items", "quarantined", "retrying", "open conflicts", "decided conflicts"):
        groups.add_column(heading, justify="right")
    groups.add_column("owner", overflow="fold")
    groups.add_column("token", justify="right")
    endpoints = Table(title="endpoints")
    for heading in ("group", "endpoint"):
        endpoints.add_column(heading, overflow="fold")
    endpoints.add_column("links", justify="right")
    endpoints.add_column("last pass (UTC)", no_wrap=True)
    endpoints.add_column("failing", overflow="fold")
    for name, each in summary["groups"].items():
        counts = (each["items"], each["quarantined"], each["retrying"], *each["conflicts"].values())
        owner = each["owner"] or {}
        token = str(owner["token"]) if owner else ""
        groups.add_row(Text(name), *(str(count) for count in counts), Text(owner.get("replica") or "-"), token)
        for member, place in each["endpoints"].items():
            last = datetime.fromisoformat(place["last_pass"]) if place["last_pass"] else None
            failing = place["failing"]
            why = f"since {utc_time(datetime.fromisoformat(failing['since']))}: {failing['error']}" if failing else ""
            endpoints.add_row(Text(name), Text(member), str(place["links"]), utc_time(last), Text(why))
    print_table(groups)
    print_table(endpoints)
    _print_others(summary)
    _print_notifications(summary)
    typer.echo(f"audit log: {summary['audit_events']} events")


def _print_others(summary: dict[str, Any]) -> None:
    """The tables printed only when there is something in them: replicas, refused values, held mass changes."""
    from rich.table import Table  # noqa: PLC0415 - keeps `syncd --help` fast
    from rich.text import Text  # noqa: PLC0415 - keeps `syncd --help` fast

    if summary["replicas"]:
        replicas = Table(title="daemon replicas")
        for heading in ("replica", "host", "pid", "started (UTC)", "last seen (UTC)", "live"):
            replicas.add_column(heading, overflow="fold")
        for row in summary["replicas"]:
            started = utc_time(datetime.fromisoformat(row["started"]))
            seen = utc_time(datetime.fromisoformat(row["last_seen"]))
            live = "yes" if row["live"] else "no"
            replicas.add_row(Text(row["replica"]), Text(row["host"]), str(row["pid"]), started, seen, live)
        print_table(replicas)
    if summary["refused_values"]:
        refused = Table(title="values a tool refused (left out there; tried again once they change)")
        for heading in ("group", "item", "endpoint", "field", "value", "since (UTC)", "tool's message"):
            refused.add_column(heading, overflow="fold")
        for name, each in summary["groups"].items():
            for row in each["refused"]:
                value = json.dumps(row["value"], ensure_ascii=False, default=str)
                shown = value if len(value) <= 40 else value[:39] + "…"
                since = utc_time(datetime.fromisoformat(row["since"]))
                cells = (name, row["item"], row["endpoint"], row["field"], shown, since, row["message"])
                refused.add_row(*(Text(cell) for cell in cells))
        print_table(refused)
    if summary["guards"]:
        held = Table(title="mass changes held for a person (syncd guard show ID, then confirm or reject)")
        for heading in ("guard", "group", "endpoint", "from", "items", "why"):
            held.add_column(heading, overflow="fold")
        for guard in summary["guards"]:
            row = (guard["id"], guard["group"], guard["endpoint"], ", ".join(guard["sources"]), str(guard["items"]))
            held.add_row(*(Text(cell) for cell in row), Text(guard["reason"]))
        print_table(held)


def _print_notifications(summary: dict[str, Any]) -> None:
    """Notifications not delivered yet, per target, when there are any (a target that fails keeps them)."""
    from rich.table import Table  # noqa: PLC0415 - keeps `syncd --help` fast
    from rich.text import Text  # noqa: PLC0415 - keeps `syncd --help` fast

    if not summary["notifications"]:
        return
    waiting = Table(title="notifications not delivered yet (docs/notifications.md)")
    for heading in ("target", "unsent", "failed rounds", "error"):
        waiting.add_column(heading, overflow="fold")
    for row in summary["notifications"]:
        cells = (row["target"], str(row["unsent"]), str(row["attempts"]), row["error"] or "")
        waiting.add_row(*(Text(cell) for cell in cells))
    print_table(waiting)


def status(
    output_format: Annotated[
        StatusFormat, typer.Option("--format", help="table to read, json (one object) for scripts and monitoring.")
    ] = StatusFormat.table,
    config_dir: ConfigOption = Path("config"),
) -> Outcome:
    """Sum up every sync group: items, endpoints, failing items, queued conflicts, values a tool refused, owners.

    Also every daemon replica (live or gone within a day) and which one holds each group's lease, with its fencing
    token.

    A refused value is left out for that tool only and the rest of its item syncs, so it does not fail the status.
    Exit 0: all clear; 1: an item is quarantined, a conflict is open, an endpoint's tool cannot be read or a mass
    change is held for a person (for cron alerts); 2: config or store unreadable.
    """
    with open_store(config_dir) as store, store.transaction() as tx:
        summary = _status(tx)
    if output_format is StatusFormat.json:
        sys.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")
    else:
        _print_status(summary)
    if not summary["ok"]:
        failing = summary["failing_endpoints"]
        stderr.print(
            f"attention: {_many(summary['quarantined'], 'item')} quarantined (syncd quarantine list), "
            f"{_many(summary['open_conflicts'], 'conflict')} open (syncd conflicts list)"
            + (f", {_many(failing, 'endpoint')} failing (see the endpoints table)" if failing else "")
            + "".join(
                f", guard {guard['id']} holds {_many(guard['items'], 'item')} at {guard['group']}/{guard['endpoint']}"
                f" (syncd guard show {guard['id']})"
                for guard in summary["guards"]
            ),
            highlight=False,
        )
        return Outcome.ATTENTION
    return Outcome.OK
