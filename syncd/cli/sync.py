"""``syncd once``, ``syncd plan`` and ``syncd run``: the commands that sync, and the composition root.

This is where syncd's engine meets the tools: the one module that builds connectors (``connectors.factory``) and
hands them to a pass or to the daemon, so nothing under it names a tool. Plans go to standard output, a pass's
summary to standard error; an error reaches :mod:`syncd.cli.handler`. Heavy modules are imported inside the
commands so ``syncd --help`` stays fast.
"""

from __future__ import annotations

import concurrent.futures
import json
import sys
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from syncd.cli.console import stderr
from syncd.cli.handler import Outcome
from syncd.cli.options import ConfigOption, MappingsOption
from syncd.cli.store import WaitOption
from syncd.notices import Outbox


def load(config_dir: Path, mappings_dir: Path) -> tuple[Any, list[Any]]:
    """Configuration and compiled groups; raises ConfigError or FileError naming every problem."""
    from connectors.factory import CAPABILITIES  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.config import load_config  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.mapping import compile_groups  # noqa: PLC0415 - keeps `syncd --help` fast

    config = load_config(config_dir)
    tools = {name: department.connection.tool for name, department in config.departments.items()}
    return config, compile_groups(mappings_dir, tools, CAPABILITIES)


def _passes(config_dir: Path, mappings_dir: Path, *, dry_run: bool, wait_s: float = 0.0) -> list[Any]:
    """One pass over every group; a credential, a refusing tool or an emptied endpoint raises (no traceback).

    Unless ``dry_run``, each group's pass runs under the group's lease, taken (waiting up to ``wait_s`` for another
    process to let go, else LeaseHeld) just before it and released just after, so a daemon running meanwhile
    waits for one group at a time; a group is never written by two processes at once.
    """
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415 - keeps `syncd --help` fast

    from connectors.factory import connector_for  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd import gc_policy  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.cli.store import unavailable  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.config import config_version  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.engine import Pass  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.leasing import Leases  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.store import Store  # noqa: PLC0415 - keeps `syncd --help` fast

    config, groups = load(config_dir, mappings_dir)
    store = Store(config.instance.store, audit_key=config.instance.audit_secret())
    leases = Leases(store, ttl_s=config.instance.lease_ttl_s)
    reports = []
    workers = config.instance.apply_workers
    pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="syncd-apply") if workers > 1 else None
    try:
        try:
            store.migrate()
        except SQLAlchemyError as error:
            raise unavailable(config.instance.store, error) from error
        gc_policy.tune()
        for group in groups:

            def build(members: Iterable[str] = tuple(group.codecs)) -> dict[str, Any]:
                return {member: connector_for(config.departments[member]) for member in members}

            version = config_version(config_dir, mappings_dir)
            try:  # the store may go away or fill up at any write: the lease's, the pass's, the release's
                lease = None if dry_run else leases.take(group.name, wait_s=wait_s)
                try:
                    run = Pass(
                        group,
                        build(),
                        store,
                        config_version=version,
                        pool=pool,
                        connectors_for_thread=build,
                        lease=lease,
                        tenure=None if lease is None else leases.tenure(group.name),
                        mass_change=config.mass_change(group.codecs),
                        outbox=None if dry_run else Outbox(config.routes()),  # `plan` queues no notification
                    )
                    reports.append(run.run(dry_run=dry_run))
                finally:
                    leases.release(group.name)
            except SQLAlchemyError as error:
                raise unavailable(config.instance.store, error, "write to") from error
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
        leases.close()
        store.close()
    return reports


def once(
    config_dir: ConfigOption = Path("config"),
    mappings_dir: MappingsOption = Path("mappings"),
    wait: WaitOption = 10.0,
) -> Outcome:
    """Run one pass over every sync group; exit 1 if something waits (a failed item, an unread tool, a guard).

    Exit 2 if refused. A held mass change (`syncd guard list`) waits for a person's decision.

    An item that failed and a tool that did not answer are retried on the next pass; a tool that refused syncd's
    credentials or configuration (exit 2) needs a person, and so does a group another process kept writing for
    longer than ``--wait`` (exit 2, naming it).
    """
    from syncd.redact import redact  # noqa: PLC0415 - keeps `syncd --help` fast

    reports = _passes(config_dir, mappings_dir, dry_run=False, wait_s=wait)
    for report in reports:
        stderr.print(
            f"{report.group}: {len(report.plans)} items, {report.writes} writes, "
            f"{len(report.problems)} values not mapped, {len(report.failures)} failed"
        )
        for member, error in sorted(report.down.items()):
            stderr.print(f"  [red]not read[/] {member}: {escape(redact(error))}", highlight=False)
        for sync_id, failure in report.failures.items():
            stderr.print(f"  [red]failed[/] {sync_id}: {escape(redact(failure))}", highlight=False)
        if report.held:
            stderr.print(
                f"  [yellow]held[/] {len(report.held)} items of a mass change, waiting for a person: "
                f"guards {', '.join(report.guards)} (syncd guard show ID, then syncd guard confirm|reject ID)",
                highlight=False,
            )
        for sync_id, member, refusal in report.refused:
            stderr.print(
                f"  [yellow]left out[/] {sync_id} {refusal.field} in {member}: {escape(redact(refusal.message))}",
                highlight=False,
            )
    if any(report.fatal for report in reports):
        return Outcome.REFUSED
    if not all(report.ok for report in reports):
        return Outcome.ATTENTION
    return Outcome.OK


DESTRUCTIVE = frozenset({"archive", "delete", "unlink", "create"})
"""Step kinds a guard holds (a create only as a recreate, which is what a guard names at that endpoint)."""


class PlanFormat(StrEnum):
    """How ``syncd plan`` prints: a line per step for a person, one JSON document for a script."""

    table = "table"
    json = "json"


def _step_json(step: Any, held: dict[str, Any] | None) -> dict[str, Any]:  # noqa: ANN401 - a plan's step
    """One planned step as ``syncd plan --format json`` gives it, with the guard that would hold it (or None)."""
    return {
        "kind": step.kind,
        "endpoint": step.endpoint,
        "ref": getattr(step, "ref", None),
        "values": dict(getattr(step, "values", None) or {}),
        "reason": step.reason,
        "held": held,
    }


def _holding(report: Any) -> dict[tuple[str, str], dict[str, Any]]:  # noqa: ANN401 - a PassReport
    """(item, endpoint) -> the guard that would hold the item's destructive step there, as the output names it."""
    return {
        (sync_id, hold.endpoint): {"guard": hold.guard, "state": "pending" if hold.guard else "new", "why": hold.why}
        for hold in report.holds
        for sync_id in hold.items
    }


def _held_note(held: dict[str, Any] | None, waits: bool) -> str:
    """What the table adds to a step's line when the guard holds it."""
    if held is not None and held["guard"] is not None:
        return f"  [held by pending guard {held['guard']}: syncd guard show {held['guard']}]"
    if held is not None:
        return f"  [would be held by a new guard: {held['why']}]"
    return "  [waits: a mass change holds this item]" if waits else ""


def plan(
    config_dir: ConfigOption = Path("config"),
    mappings_dir: MappingsOption = Path("mappings"),
    output_format: Annotated[
        PlanFormat, typer.Option("--format", help="table: a line per step; json: one document for scripts.")
    ] = PlanFormat.table,
) -> None:
    """Show what one pass would write where, and why, without writing anything.

    Steps a mass-change guard would hold are marked: by the pending guard that already holds them, or by the new
    guard the pass would open (with why); the other steps of such an item wait with it.
    """
    reports = _passes(config_dir, mappings_dir, dry_run=True)
    if output_format is PlanFormat.json:
        sys.stdout.write(json.dumps({"groups": [_plan_json(report) for report in reports]}, default=str) + "\n")
        return
    for report in reports:
        holding = _holding(report)
        waiting = {sync_id for sync_id, _ in holding}
        for decided in report.plans:
            for step in decided.steps:
                detail = getattr(step, "values", None)
                held = holding.get((decided.sync_id, step.endpoint)) if step.kind in DESTRUCTIVE else None
                sys.stdout.write(
                    f"{report.group} {decided.sync_id} {type(step).__name__.lower()} {step.endpoint}"
                    f"{' ' + json.dumps(detail, sort_keys=True, default=str) if detail else ''}  # {step.reason}"
                    f"{_held_note(held, decided.sync_id in waiting)}\n"
                )
            for conflict in decided.conflicts:
                sys.stdout.write(
                    f"{report.group} {decided.sync_id} conflict {conflict.field} rule={conflict.rule} "
                    f"winner={conflict.winner} values={json.dumps(conflict.values, sort_keys=True, default=str)}\n"
                )
        for hold in report.holds:
            state = f"pending {hold.guard}" if hold.guard else "new"
            sys.stdout.write(
                f"{report.group} guard {state} {hold.endpoint} would hold {len(hold.items)} items  # {hold.why}\n"
            )


def _plan_json(report: Any) -> dict[str, Any]:  # noqa: ANN401 - a PassReport
    """One group's dry run as ``syncd plan --format json`` gives it."""
    holding = _holding(report)
    waiting = {sync_id for sync_id, _ in holding}
    return {
        "group": report.group,
        "items": [
            {
                "sync_id": decided.sync_id,
                "waits": decided.sync_id in waiting,
                "steps": [
                    _step_json(
                        step, holding.get((decided.sync_id, step.endpoint)) if step.kind in DESTRUCTIVE else None
                    )
                    for step in decided.steps
                ],
                "conflicts": [
                    {"field": c.field, "rule": c.rule, "winner": c.winner, "values": dict(c.values)}
                    for c in decided.conflicts
                ],
            }
            for decided in report.plans
            if decided.steps or decided.conflicts
        ],
        "guards": [
            {
                "id": hold.guard,
                "state": "pending" if hold.guard else "new",
                "endpoint": hold.endpoint,
                "items": dict(hold.items),
                "why": hold.why,
            }
            for hold in report.holds
        ],
    }


def run(config_dir: ConfigOption = Path("config"), mappings_dir: MappingsOption = Path("mappings")) -> None:
    """Run the daemon: poll, take webhooks, serve /healthz /readyz /metrics; SIGTERM drains, SIGHUP reloads."""
    import os  # noqa: PLC0415 - keeps `syncd --help` fast

    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415 - keeps `syncd --help` fast

    from connectors.factory import (  # noqa: PLC0415 - keeps `syncd --help` fast
        CAPABILITIES,
        connector_for,
        observe_requests,
        share_budgets,
    )
    from syncd import daemon  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.cli.store import unavailable  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.config import load_config  # noqa: PLC0415 - keeps `syncd --help` fast

    def listening(url: str) -> None:
        sys.stdout.write(json.dumps({"listen": url}) + "\n")
        sys.stdout.flush()

    # A broken configuration (every file:line problem), a missing credential, a port in use: raised to the handler.
    try:
        code = daemon.run(
            config_dir,
            mappings_dir,
            connector_for=connector_for,
            capabilities=CAPABILITIES,
            observe_requests=observe_requests,
            share_budgets=share_budgets,
            on_listening=listening,
        )
    except SQLAlchemyError as error:  # the store cannot be migrated at start (passes report their own)
        raise unavailable(load_config(config_dir).instance.store, error) from error
    if code != 0:
        # Passes still running past the shutdown timeout would hold the interpreter at exit: leave now, without
        # unwinding to the handler (a returned code would wait for those threads).
        sys.stderr.flush()
        os._exit(code)
