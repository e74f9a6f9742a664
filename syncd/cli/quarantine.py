"""``syncd quarantine``: items held out of passes after failing again and again, until a person retries them.

Only the store is needed (no credential, no tool contacted): a release is recorded there with its audit event in
one transaction, and the group's next pass tries the item again. ``retry`` writes the group's state, so it takes
the group's lease first (waiting ``--wait`` seconds for a pass in another process to finish).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from syncd.cli.console import print_table, stderr, utc_time
from syncd.cli.options import ByOption, ConfigOption, operator
from syncd.cli.store import WaitOption, open_leases, open_store

quarantine_app = typer.Typer(
    help="Items held out of passes after failing repeatedly: list them with their error, retry one.",
    no_args_is_help=True,
)


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
        stderr.print("nothing is quarantined")
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
            utc_time(entry.first_at),
            utc_time(entry.last_at),
        )
        table.add_row(*(Text(cell) for cell in cells))
    print_table(table)


@quarantine_app.command("retry")
def quarantine_retry(
    item: Annotated[str, typer.Argument(metavar="ITEM", help="The item's sync_id, as `quarantine list` shows it.")],
    by: ByOption = None,
    wait: WaitOption = 10.0,
    config_dir: ConfigOption = Path("config"),
) -> None:
    """Release an item (its strikes reset) so the next pass of its group tries it again (audited)."""
    from syncd.decisions import retry_item  # noqa: PLC0415 - keeps `syncd --help` fast

    person = operator(by)
    with open_leases(config_dir) as leases:
        entry = retry_item(leases, item, person, wait_s=wait)
    typer.echo(
        f"released {item} for {person} ({entry.strikes} strikes, last error: {entry.error}); "
        f"the next pass of {entry.group} tries it again."
    )
