"""How every command that needs only the state store opens it: from the configuration, migrated, closed after.

``syncd audit``, ``conflicts``, ``quarantine`` and ``status`` contact no tool and need no credential; they share
this one way in, so a broken configuration or an unreadable store reads the same from each of them. ``once``,
``plan`` and ``run`` open the store themselves but say a database error the same way, through
:func:`unavailable`: one line naming the store (its password masked), never SQLAlchemy's traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sqlalchemy.exc import SQLAlchemyError

    from syncd.errors import StoreUnavailable
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


def unavailable(url: str, error: SQLAlchemyError, doing: str = "open") -> StoreUnavailable:
    """The database error as one line: the driver's reason (not the statement dump) and the URL, password masked."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415 - keeps `syncd --help` fast
    from sqlalchemy.exc import ArgumentError  # noqa: PLC0415 - keeps `syncd --help` fast

    from syncd.errors import StoreUnavailable  # noqa: PLC0415 - keeps `syncd --help` fast

    reason = str(getattr(error, "orig", None) or error)
    try:
        parsed = make_url(url)
        shown, password = parsed.render_as_string(hide_password=True), parsed.password
    except ArgumentError:
        shown, password = "(the configured store)", None
    if password:
        reason = reason.replace(str(password), "***")
    reason = "; ".join(line.strip() for line in reason.splitlines() if line.strip())
    return StoreUnavailable(f"cannot {doing} the store {shown}: {reason}")


@contextmanager
def open_store(config_dir: Path, *, keyed: bool = True) -> Iterator[Store]:
    """The configured store, migrated; raises ConfigError or StoreUnavailable (the handler says it, exits 2).

    ``keyed``: with the audit key (a configured key that cannot be read is an error), for commands that append
    audit events or verify them; a read-only listing needs no secret.
    """
    from syncd.config import load_config  # noqa: PLC0415 - keeps `syncd --help` fast

    config = load_config(config_dir)
    with _opened(config.instance.store, config.instance.audit_secret() if keyed else None) as store:
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
    with _opened(config.instance.store, config.instance.audit_secret()) as store:
        leases = Leases(store, ttl_s=config.instance.lease_ttl_s)
        try:
            yield leases
        finally:
            leases.close()


@contextmanager
def _opened(url: str, audit_key: bytes | None) -> Iterator[Store]:
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415 - keeps `syncd --help` fast

    from syncd.store import Store  # noqa: PLC0415 - keeps `syncd --help` fast

    store = Store(url, audit_key=audit_key)
    try:
        try:
            store.migrate()
        except SQLAlchemyError as error:
            raise unavailable(url, error) from error
        try:
            yield store
        except SQLAlchemyError as error:
            raise unavailable(url, error, "read") from error
    finally:
        store.close()
