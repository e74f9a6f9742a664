"""How every command that needs only the state store opens it: from the configuration, migrated, closed after.

``syncd audit``, ``conflicts``, ``quarantine`` and ``status`` contact no tool and need no credential; they share
this one way in, so a broken configuration or an unreadable store reads the same from each of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from syncd.leasing import Leases
    from syncd.store import Store

WaitOption = Annotated[
    float,
    typer.Option(
        "--wait",
        metavar="SECONDS",
        min=0,
        help="How long to wait for a group another syncd process is writing, before giving up (exit 2).",
    ),
]


@contextmanager
def open_store(config_dir: Path) -> Iterator[Store]:
    """The configured store, migrated; raises ConfigError or StoreUnavailable (the handler says it, exits 2)."""
    from syncd.config import load_config  # noqa: PLC0415 - keeps `syncd --help` fast

    config = load_config(config_dir)
    with _opened(config.instance.store) as store:
        yield store


@contextmanager
def open_leases(config_dir: Path) -> Iterator[Leases]:
    """The configured store, migrated, with this process's group leases (``.store``); all released after.

    A command that writes a group takes its lease through them (``take(group, wait_s=...)``) and writes through
    ``store.fenced(lease)``: one writer per group, whichever process it is.
    """
    from syncd.config import load_config  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.leasing import Leases  # noqa: PLC0415 - keeps `syncd --help` fast

    config = load_config(config_dir)
    with _opened(config.instance.store) as store:
        leases = Leases(store, ttl_s=config.instance.lease_ttl_s)
        try:
            yield leases
        finally:
            leases.close()


@contextmanager
def _opened(url: str) -> Iterator[Store]:
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415 - keeps `syncd --help` fast

    from syncd.store import Store, StoreUnavailable  # noqa: PLC0415 - keeps `syncd --help` fast

    try:
        store = Store(url)
        try:
            store.migrate()
            yield store
        finally:
            store.close()
    except SQLAlchemyError as error:
        # The driver's own message (what failed and where), not SQLAlchemy's statement dump.
        reason = getattr(error, "orig", None) or error
        raise StoreUnavailable(f"cannot read the store: {reason}") from error
